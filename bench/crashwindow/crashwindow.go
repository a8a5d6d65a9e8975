// Package crashwindow measures what a SIGKILL costs errmon: a child process
// records a storm of distinct and repeated errors at a known rate through
// errmon's middleware into a database, and tells its parent through a pipe
// each event it has recorded; the parent kills it with SIGKILL at a random
// moment, opens the database, and compares the stored counts with what
// was recorded. The loss is reported in milliseconds of events (lost
// events / rate): errmon promises at most FlushInterval of them.
//
// cmd/crashwindow runs it from the command line; TestCrashWindow (in the
// bench smoke) runs a short version.
package crashwindow

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/errmon/errmon"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// ChildEnv, when set in a process's environment, makes it the child: the
// value is the storm's spec (see Spec.env).
const ChildEnv = "ERRMON_CRASHWINDOW_CHILD"

// Spec is one storm.
type Spec struct {
	DB       string        // "sqlite" or "postgres"
	DSN      string        // the SQLite file or the PostgreSQL DSN (with its search_path)
	Rate     int           // events per second
	Duration time.Duration // how long the child records (it is killed before the end)
	Pool     int           // repeated errors: every other event is one of Pool errors, in turn; the others are each new
	Interval time.Duration // errmon's FlushInterval
}

func (s Spec) env() string {
	return strings.Join([]string{s.DB, strconv.Itoa(s.Rate), s.Duration.String(), strconv.Itoa(s.Pool), s.Interval.String(), s.DSN}, "|")
}

func parseSpec(v string) (Spec, error) {
	f := strings.SplitN(v, "|", 6)
	if len(f) != 6 {
		return Spec{}, fmt.Errorf("bad %s %q", ChildEnv, v)
	}
	rate, err1 := strconv.Atoi(f[1])
	dur, err2 := time.ParseDuration(f[2])
	pool, err3 := strconv.Atoi(f[3])
	interval, err4 := time.ParseDuration(f[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Spec{}, err
	}
	return Spec{DB: f[0], Rate: rate, Duration: dur, Pool: pool, Interval: interval, DSN: f[5]}, nil
}

// message is the error of event i: even events are each a new error, odd
// ones go round the pool of repeated errors. Letters only, so that no
// fingerprint normalizer merges two of them.
func message(i, pool int) string {
	if i%2 == 0 {
		return "new failure " + word(i/2)
	}
	return "repeated failure " + word((i/2)%pool)
}

func word(i int) string {
	const abc = "ghijklmnopqrstuvwxyz"
	b := []byte("gggggg")
	for p := len(b) - 1; p >= 0; p-- {
		b[p] = abc[i%len(abc)]
		i /= len(abc)
	}
	return string(b)
}

func quiet() *gorm.Config { return &gorm.Config{Logger: logger.Default.LogMode(logger.Silent)} }

func open(db, dsn string) (*gorm.DB, error) {
	if db == "postgres" {
		return gorm.Open(postgres.Open(dsn), quiet())
	}
	return gorm.Open(sqlite.Open(dsn), quiet())
}

// body is a JSON request body of about 2 KB.
var body = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"customer":{"name":"Ada Lovelace","email":"ada@example.com"},"items":[`)
	for i := range 16 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"sku":"SKU-%05d","title":"Analytical engine part %d","qty":%d}`, i*7919, i, i%5+1)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}()

// ChildMain is the child: it records the storm of the spec in ChildEnv
// and writes, after each event, the event's number and a newline to out
// (a pipe to the parent), until it is killed or the storm ends.
func ChildMain(out io.Writer) error {
	spec, err := parseSpec(os.Getenv(ChildEnv))
	if err != nil {
		return err
	}
	db, err := open(spec.DB, spec.DSN)
	if err != nil {
		return err
	}
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.FlushInterval = spec.Interval
	cfg.MaxPending = 1 << 20
	m, err := errmon.New(cfg)
	if err != nil {
		return err
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(m.Middleware())
	r.POST("/api/orders/:n", func(c *gin.Context) {
		var v map[string]any
		_ = c.ShouldBindJSON(&v)
		n, _ := strconv.Atoi(c.Param("n"))
		m.Record(c, errors.New(message(n, spec.Pool)))
		c.Status(http.StatusInternalServerError)
	})
	if _, err := io.WriteString(out, "ready\n"); err != nil {
		return err
	}
	start := time.Now()
	total := int(float64(spec.Rate) * spec.Duration.Seconds())
	var line []byte
	for i := 0; i < total; {
		due := int(float64(spec.Rate) * time.Since(start).Seconds())
		if i >= due {
			time.Sleep(time.Millisecond)
			continue
		}
		for ; i < min(due, total); i++ {
			req := httptest.NewRequest(http.MethodPost, "/api/orders/"+strconv.Itoa(i), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "crashwindow/1.0")
			r.ServeHTTP(httptest.NewRecorder(), req)
			line = strconv.AppendInt(line[:0], int64(i), 10)
			line = append(line, '\n')
			if _, err := out.Write(line); err != nil {
				return err
			}
		}
	}
	return m.Close()
}

// Run is one storm killed at a random moment.
type Run struct {
	KilledAt time.Duration // after the storm started
	Recorded int           // events the child said it recorded
	Stored   int64         // occurrences in the database afterwards
	Lost     int64         // Recorded - Stored (at least 0)
	Rate     float64       // events per second the child achieved until the kill
	LostMS   float64       // Lost / Rate, in milliseconds
	Over     int           // errors stored more often than recorded (double counting: must be 0)
}

// Measure starts exe (with args) as the child of spec, kills it with
// SIGKILL after a random time in [killFrom, killTo) of storm, and counts
// what was stored.
func Measure(ctx context.Context, exe string, args []string, spec Spec, killFrom, killTo time.Duration) (Run, error) {
	var run Run
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Env = append(os.Environ(), ChildEnv+"="+spec.env())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return run, err
	}
	if err := cmd.Start(); err != nil {
		return run, err
	}
	lines := make(chan string, 1<<16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	select {
	case l, ok := <-lines:
		if !ok || l != "ready" {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return run, fmt.Errorf("child did not start (%q): %s", l, tail(stderr.String()))
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return run, errors.New("child did not start within a minute")
	}
	start := time.Now()
	run.KilledAt = killFrom + time.Duration(mrand.Int64N(int64(killTo-killFrom)))
	recorded := -1
	timer := time.NewTimer(run.KilledAt)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				return run, fmt.Errorf("child ended before it was killed: %s", tail(stderr.String()))
			}
			if n, err := strconv.Atoi(l); err == nil {
				recorded = max(recorded, n)
			}
		case <-timer.C:
			break wait
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		return run, err
	}
	run.KilledAt = time.Since(start)
	for l := range lines { // what the child wrote before it died
		if n, err := strconv.Atoi(l); err == nil {
			recorded = max(recorded, n)
		}
	}
	_ = cmd.Wait()
	run.Recorded = recorded + 1

	db, err := open(spec.DB, spec.DSN)
	if err != nil {
		return run, err
	}
	defer func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	}()
	var rows []struct {
		Message string
		Count   int64
	}
	if err := db.Table("app_errors").Select("message, count").Scan(&rows).Error; err != nil {
		return run, fmt.Errorf("read counts: %w", err)
	}
	want := map[string]int64{}
	for i := range run.Recorded {
		want[message(i, spec.Pool)]++
	}
	for _, r := range rows {
		run.Stored += r.Count
		// The event being recorded when the child died may be stored
		// without the parent hearing of it: one more is allowed.
		next := int64(0)
		if message(run.Recorded, spec.Pool) == r.Message {
			next = 1
		}
		if r.Count > want[r.Message]+next {
			run.Over++
		}
	}
	run.Lost = max(0, int64(run.Recorded)-run.Stored)
	// The rate the child achieved (a loaded machine may hold it below the
	// spec's): events recorded over the storm's time until the kill.
	run.Rate = float64(run.Recorded) / run.KilledAt.Seconds()
	run.LostMS = float64(run.Lost) / run.Rate * 1000
	return run, nil
}

func tail(s string) string {
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// NewSQLite returns the DSN of a fresh SQLite file in dir, in WAL mode.
func NewSQLite(dir string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return filepath.Join(dir, "crash-"+hex.EncodeToString(b[:])+".db") + "?_journal_mode=WAL&_busy_timeout=10000"
}

// NewPostgresSchema creates a schema on the server of base and returns a
// DSN using it, and a function dropping it.
func NewPostgresSchema(base string) (string, func(), error) {
	admin, err := gorm.Open(postgres.Open(base), quiet())
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "errmon_crash_" + hex.EncodeToString(b[:])
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		return "", nil, err
	}
	drop := func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if s, err := admin.DB(); err == nil {
			s.Close()
		}
	}
	dsn := base + " search_path=" + schema
	if strings.Contains(base, "://") {
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		dsn = base + sep + "search_path=" + schema
	}
	return dsn, drop, nil
}

// Summary is the loss over several runs, in milliseconds of events.
type Summary struct {
	Runs            int
	MeanMS, MaxMS   float64
	MedianMS        float64
	DoubleCounted   int // errors stored more often than recorded, over all runs
	MaxLostFraction float64
}

// Summarize adds up runs.
func Summarize(runs []Run) Summary {
	s := Summary{Runs: len(runs)}
	var ms []float64
	for _, r := range runs {
		ms = append(ms, r.LostMS)
		s.MeanMS += r.LostMS
		s.MaxMS = math.Max(s.MaxMS, r.LostMS)
		s.DoubleCounted += r.Over
		if r.Recorded > 0 {
			s.MaxLostFraction = math.Max(s.MaxLostFraction, float64(r.Lost)/float64(r.Recorded))
		}
	}
	if len(runs) > 0 {
		s.MeanMS /= float64(len(runs))
		slices.Sort(ms)
		s.MedianMS = ms[len(ms)/2]
	}
	return s
}
