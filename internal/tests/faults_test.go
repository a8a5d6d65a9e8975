package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Fault tests: the database stopped in the middle of a load and started
// again, a database that hangs on a table lock, a database that rejects
// writes, many monitors writing overlapping errors into one schema, a
// network partition, and extension points that panic. They cause each
// fault for real. The classification of write failures is unit-tested in
// the root (faults_test.go).

// ---------------------------------------------------------------------------
// helpers

// hzFlushUntilStored retries Flush until it reports everything stored: the
// first attempts after a database comes back may still meet broken pooled
// connections.
func hzFlushUntilStored(t testing.TB, m *errmon.Monitor) {
	t.Helper()
	var err, lastErr error
	for attempt := 0; attempt < 60; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = m.Flush(ctx)
		cancel()
		if err == nil {
			if attempt > 0 {
				t.Logf("stored after %d failed Flush attempts (last: %v)", attempt, lastErr)
			}
			return
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("Flush never stored everything: %v (stats %+v)", err, m.Stats())
}

// hzCounts returns message -> count of every stored error.
func hzCounts(t testing.TB, db *gorm.DB) map[string]int64 {
	t.Helper()
	var rows []errmon.ErrorRecord
	if err := db.Find(&rows).Error; err != nil {
		t.Fatalf("read app_errors: %v", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		if _, dup := out[r.Message]; dup {
			t.Errorf("two rows for message %q", r.Message)
		}
		out[r.Message] += r.Count
	}
	return out
}

func hzSameCounts(t testing.TB, got, want map[string]int64) {
	t.Helper()
	keys := map[string]bool{}
	for k := range got {
		keys[k] = true
	}
	for k := range want {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if got[k] != want[k] {
			t.Errorf("count of %q = %d, want %d", k, got[k], want[k])
		}
	}
}

// pgCluster is a throwaway PostgreSQL server of the test's own, which the
// test may stop and start at will (the shared server must never be stopped).
type pgCluster struct {
	bin, dir, data string
	port           int
	asPostgres     bool
}

// hzStartCluster initdb's and starts a private cluster on a free port. It
// skips when the server binaries are missing, unless ERRMON_REQUIRE_PG=1.
func hzStartCluster(t *testing.T) *pgCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("throwaway PostgreSQL cluster skipped in -short mode")
	}
	bin := os.Getenv("ERRMON_PG_BIN")
	if bin == "" {
		matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		sort.Strings(matches)
		if len(matches) > 0 {
			bin = filepath.Dir(matches[len(matches)-1])
		}
	}
	if bin == "" {
		if os.Getenv("ERRMON_REQUIRE_PG") == "1" {
			t.Fatal("ERRMON_REQUIRE_PG=1 but no PostgreSQL server binaries: set ERRMON_PG_BIN or apt-get install postgresql")
		}
		t.Skip("no PostgreSQL server binaries (set ERRMON_PG_BIN or apt-get install postgresql): fault test skipped")
	}
	dir, err := os.MkdirTemp("/tmp", "errmon-pg-")
	if err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{bin: bin, dir: dir, data: filepath.Join(dir, "data"), asPostgres: os.Geteuid() == 0}
	if c.asPostgres { // initdb refuses root
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			t.Skipf("running as root without a postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = c.pgctl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if out, err := c.run("initdb", "-D", c.data, "-A", "trust", "-U", "postgres", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	c.start(t)
	return c
}

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asPostgres {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func (c *pgCluster) pgctl(args ...string) error {
	base := []string{"-D", c.data, "-l", filepath.Join(c.dir, "server.log")}
	out, err := c.run("pg_ctl", append(base, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *pgCluster) start(t testing.TB) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.dir)
	if err := c.pgctl("-o", opts, "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		t.Fatalf("%v\nserver log:\n%s", err, log)
	}
}

// stop stops the server: "immediate" kills it as a crash would, "fast"
// disconnects every client and shuts down cleanly.
func (c *pgCluster) stop(t testing.TB, mode string) {
	t.Helper()
	if err := c.pgctl("-w", "-t", "60", "stop", "-m", mode); err != nil {
		t.Fatal(err)
	}
}

func (c *pgCluster) dsn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable connect_timeout=5", c.port)
}

func (c *pgCluster) open(t testing.TB) *gorm.DB {
	t.Helper()
	db, err := gorm.Open(postgres.Open(c.dsn()), quietGorm())
	if err != nil {
		t.Fatalf("open throwaway postgres: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return db
}

// hzFaultRouter answers /ok with 200, /err/:kind with a 500 carrying the
// error "fault <kind>", and /panic with a panic.
func hzFaultRouter(t testing.TB, m *errmon.Monitor) *gin.Engine {
	hzReleaseMode(t)
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	r.GET("/err/:kind", func(c *gin.Context) {
		_ = c.AbortWithError(http.StatusInternalServerError, errors.New("fault "+c.Param("kind")))
	})
	r.GET("/panic", func(c *gin.Context) { panic("fault panic") })
	return r
}

var hzKinds = []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}

// hzLoad sends requests through r from several goroutines until stopped,
// checking every status, and counts what it expects to be stored.
type hzLoad struct {
	sent     atomic.Int64
	stop     atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	want     map[string]int64
	badCodes atomic.Int64
}

func hzStartLoad(r http.Handler, workers int) *hzLoad {
	l := &hzLoad{want: map[string]int64{}}
	for w := 0; w < workers; w++ {
		l.wg.Add(1)
		go func(w int) {
			defer l.wg.Done()
			local := map[string]int64{}
			for i := 0; !l.stop.Load(); i++ {
				var path, msg string
				code := http.StatusInternalServerError
				switch i % 4 {
				case 0:
					path, code = "/ok", http.StatusOK
				case 1, 2:
					k := hzKinds[(i+w)%len(hzKinds)]
					path, msg = "/err/"+k, "fault "+k
				case 3:
					path, msg = "/panic", "fault panic"
				}
				rec := httptest.NewRecorder()
				r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != code {
					l.badCodes.Add(1)
				}
				if msg != "" {
					local[msg]++
				}
				l.sent.Add(1)
			}
			l.mu.Lock()
			for k, n := range local {
				l.want[k] += n
			}
			l.mu.Unlock()
		}(w)
	}
	return l
}

// waitSent waits until n more requests have been answered.
func (l *hzLoad) waitSent(t testing.TB, n int64) {
	t.Helper()
	target := l.sent.Load() + n
	deadline := time.Now().Add(2 * time.Minute)
	for l.sent.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("requests stalled: %d answered, waiting for %d", l.sent.Load(), target)
		}
		time.Sleep(time.Millisecond)
	}
}

func (l *hzLoad) finish() map[string]int64 {
	l.stop.Store(true)
	l.wg.Wait()
	return l.want
}

// ---------------------------------------------------------------------------
// PostgreSQL stopped in the middle of a load

func TestFaultPostgresRestartMidLoad(t *testing.T) {
	for _, mode := range []string{"immediate", "fast"} {
		t.Run(mode, func(t *testing.T) {
			pg := hzStartCluster(t)
			db := pg.open(t)
			var logs syncBuffer
			cfg := hzConfig(db, &logs)
			cfg.MaxPending = 100
			m := hzNew(t, cfg)
			defer m.Close()
			r := hzFaultRouter(t, m)

			load := hzStartLoad(r, 4)
			load.waitSent(t, 300) // stored normally
			pg.stop(t, mode)
			load.waitSent(t, 600) // answered while the database is down

			// While it is down, Flush says what is kept, and nothing is lost.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := m.Flush(ctx)
			cancel()
			if err == nil {
				t.Errorf("Flush with the database down returned nil")
			} else if !strings.Contains(err.Error(), "not stored") {
				t.Errorf("Flush error does not say what was not stored: %v", err)
			}
			if st := m.Stats(); st.Pending == 0 || st.FailedFlushes == 0 {
				t.Errorf("outage not seen: stats %+v", st)
			}
			load.waitSent(t, 300)

			pg.start(t)
			load.waitSent(t, 300) // stored again
			want := load.finish()
			if n := load.badCodes.Load(); n != 0 {
				t.Errorf("%d requests got another status than without the outage", n)
			}
			hzFlushUntilStored(t, m)

			hzSameCounts(t, hzCounts(t, db), want)
			var total int64
			for _, n := range want {
				total += n
			}
			st := m.Stats()
			if st.Dropped != 0 || st.Pending != 0 || st.Recorded != total || st.Stored != total {
				t.Errorf("stats %+v, want %d recorded and stored, none dropped or pending", st, total)
			}
			logText := logs.String()
			if !strings.Contains(logText, "could not store errors") || !strings.Contains(logText, "storing errors again") {
				t.Errorf("outage and recovery not logged:\n%s", logText)
			}
			// The failure log is rate-limited: one line per failureLogEvery,
			// not one per flush.
			if n := strings.Count(logText, "could not store errors"); int64(n) > 3 {
				t.Errorf("failure logged %d times (%d failed flushes): not rate-limited", n, st.FailedFlushes)
			}
			t.Logf("mode %s: %d occurrences, %d failed flushes, stored exactly after restart", mode, total, st.FailedFlushes)
		})
	}
}

// The pending set is bounded during an outage: distinct errors beyond
// MaxPending are dropped and counted, occurrences of those held still count
// exactly.
func TestFaultOutageBoundedByMaxPending(t *testing.T) {
	pg := hzStartCluster(t)
	db := pg.open(t)
	var logs syncBuffer
	cfg := hzConfig(db, &logs)
	cfg.MaxPending = 5
	m := hzNew(t, cfg)
	defer m.Close()
	pg.stop(t, "immediate")
	for i := 0; i < 3; i++ {
		for _, k := range hzKinds { // 8 kinds, room for 5
			m.Record(nil, errors.New("bounded "+k))
		}
	}
	st := m.Stats()
	if st.PendingErrors > 5 {
		t.Errorf("%d distinct errors held, MaxPending is 5", st.PendingErrors)
	}
	if st.Dropped != 3*3 {
		t.Errorf("dropped %d occurrences, want 9 (3 errors × 3)", st.Dropped)
	}
	pg.start(t)
	hzFlushUntilStored(t, m)
	got := hzCounts(t, db)
	var total int64
	for _, n := range got {
		if n != 3 {
			t.Errorf("a held error was stored with count %d, want 3: %v", n, got)
		}
		total += n
	}
	if len(got) != 5 || total != 15 {
		t.Errorf("stored %d errors, %d occurrences; want 5 and 15", len(got), total)
	}
}

// Close during an outage returns within CloseTimeout and its error says
// what was not stored.
func TestFaultCloseDuringOutage(t *testing.T) {
	pg := hzStartCluster(t)
	db := pg.open(t)
	var logs syncBuffer
	cfg := hzConfig(db, &logs)
	cfg.CloseTimeout = 500 * time.Millisecond
	m := hzNew(t, cfg)
	m.Record(nil, errors.New("before the outage"))
	hzFlushUntilStored(t, m)
	pg.stop(t, "immediate")
	for i := 0; i < 7; i++ {
		m.Record(nil, errors.New("during the outage"))
	}
	m.Record(nil, errors.New("another one during the outage"))
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(time.Minute): // a hang, not a latency check
		t.Fatal("Close hung with the database down")
	}
	if err == nil {
		t.Fatal("Close during an outage returned nil")
	}
	if !strings.Contains(err.Error(), "8 occurrences of 2 errors not stored") {
		t.Errorf("Close error does not report what was lost: %v", err)
	}
	if !strings.Contains(logs.String(), "closed with errors not stored") {
		t.Errorf("loss not logged:\n%s", logs.String())
	}
	if err := m.Flush(context.Background()); !errors.Is(err, errmon.ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
}

// ---------------------------------------------------------------------------
// A slow database: a table lock held by another connection

func TestFaultTableLockNeverBlocksRequests(t *testing.T) {
	tdb := openPostgres(t)
	var logs syncBuffer
	cfg := hzConfig(tdb.DB, &logs)
	m := hzNew(t, cfg)
	defer m.Close()
	r := hzFaultRouter(t, m)
	// The table exists and the writer works.
	m.Record(nil, errors.New("fault warmup"))
	hzFlushUntilStored(t, m)

	locker, err := gorm.Open(postgres.Open(tdb.DSN), quietGorm())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if s, err := locker.DB(); err == nil {
			s.Close()
		}
	}()
	tx := locker.Begin()
	if err := tx.Exec("LOCK TABLE app_errors IN ACCESS EXCLUSIVE MODE").Error; err != nil {
		t.Fatalf("lock: %v", err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			tx.Rollback()
		}
	}
	defer release()

	// The writer is stuck behind the lock...
	m.Record(nil, errors.New("fault warmup"))
	hzAwaitLockWaiter(t, locker)
	// ...and every request is still answered while the lock is held.
	load := hzStartLoad(r, 4)
	load.waitSent(t, 2000)
	want := load.finish()
	if n := load.badCodes.Load(); n != 0 {
		t.Errorf("%d requests got a wrong status while the table was locked", n)
	}
	// Flush cannot finish while the lock is held; it returns with its ctx.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := m.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush under a held lock = %v, want a deadline error", err)
	}
	cancel()
	release()
	hzFlushUntilStored(t, m)
	want["fault warmup"] = 2
	hzSameCounts(t, hzCounts(t, tdb.DB), want)
	if st := m.Stats(); st.Dropped != 0 {
		t.Errorf("dropped %d occurrences", st.Dropped)
	}
}

// The same on SQLite: another connection holds the database's write lock
// (BEGIN EXCLUSIVE); requests are all answered, and once the lock is gone
// the counts are exact.
func TestFaultSQLiteWriteLockNeverBlocksRequests(t *testing.T) {
	tdb := openSQLite(t)
	var logs syncBuffer
	m := hzNew(t, hzConfig(tdb.DB, &logs))
	defer m.Close()
	r := hzFaultRouter(t, m)
	m.Record(nil, errors.New("fault warmup"))
	hzFlushUntilStored(t, m)
	sqlDB, err := tdb.DB.DB()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sqlDB.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("lock: %v", err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
				t.Errorf("unlock: %v", err)
			}
		}
	}
	defer unlock()
	load := hzStartLoad(r, 4)
	load.waitSent(t, 2000)
	want := load.finish()
	if n := load.badCodes.Load(); n != 0 {
		t.Errorf("%d requests got a wrong status while the database was locked", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	if err := m.Flush(ctx); err == nil {
		t.Error("Flush succeeded while another connection held the write lock: the test tests nothing")
	}
	cancel()
	unlock()
	hzFlushUntilStored(t, m)
	want["fault warmup"] = 1
	hzSameCounts(t, hzCounts(t, tdb.DB), want)
}

// ---------------------------------------------------------------------------
// A database that rejects every write, then recovers (every database)

func TestFaultDatabaseRejectsWritesThenRecovers(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs syncBuffer
		m := hzNew(t, hzConfig(tdb.DB, &logs))
		defer m.Close()
		r := hzFaultRouter(t, m)
		if err := tdb.DB.Exec("ALTER TABLE app_errors RENAME TO app_errors_away").Error; err != nil {
			t.Fatal(err)
		}
		load := hzStartLoad(r, 2)
		load.waitSent(t, 500)
		want := load.finish()
		if n := load.badCodes.Load(); n != 0 {
			t.Errorf("%d requests got a wrong status while the database rejected writes", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := m.Flush(ctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "kept in memory") {
			t.Errorf("Flush with writes rejected = %v, want a kept-in-memory error", err)
		}
		if err := tdb.DB.Exec("ALTER TABLE app_errors_away RENAME TO app_errors").Error; err != nil {
			t.Fatal(err)
		}
		hzFlushUntilStored(t, m)
		hzSameCounts(t, hzCounts(t, tdb.DB), want)
	})
}

// One error the database keeps rejecting (a trigger refuses it) is given
// up after a few tries and counted as dropped; the others are stored.
func TestFaultPoisonErrorGivenUp(t *testing.T) {
	tdb := openPostgres(t)
	var logs syncBuffer
	cfg := hzConfig(tdb.DB, &logs)
	cfg.FlushInterval = time.Hour // only Flush writes: one try per round
	m := hzNew(t, cfg)
	defer m.Close()
	for _, q := range []string{
		`CREATE FUNCTION errmon_poison() RETURNS trigger AS $$
		 BEGIN IF NEW.message LIKE '%poison%' THEN RAISE EXCEPTION 'poisoned value' USING ERRCODE = '22000'; END IF; RETURN NEW; END
		 $$ LANGUAGE plpgsql`,
		`CREATE TRIGGER errmon_poison BEFORE INSERT OR UPDATE ON app_errors FOR EACH ROW EXECUTE FUNCTION errmon_poison()`,
	} {
		if err := tdb.DB.Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int64{}
	for round := 0; round < maxWriteFailures; round++ {
		m.Record(nil, errors.New("poison pill"))
		m.Record(nil, errors.New("healthy one"))
		m.Record(nil, errors.New("healthy two"))
		want["healthy one"]++
		want["healthy two"]++
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = m.Flush(ctx)
		cancel()
	}
	if err := m.Flush(context.Background()); err != nil {
		t.Errorf("Flush after giving up = %v, want nil", err)
	}
	hzSameCounts(t, hzCounts(t, tdb.DB), want)
	st := m.Stats()
	if st.Dropped != maxWriteFailures || st.Pending != 0 {
		t.Errorf("stats %+v: want the %d poison occurrences counted as dropped and nothing pending", st, maxWriteFailures)
	}
	if !strings.Contains(logs.String(), "giving up on storing an error") {
		t.Errorf("giving up not logged:\n%s", logs.String())
	}
}

// ---------------------------------------------------------------------------
// Many monitors and many goroutines on one PostgreSQL schema

type hzCountingNotifier struct {
	mu    sync.Mutex
	notes map[string][]string // hash -> reasons
}

func (n *hzCountingNotifier) Notify(_ context.Context, note *errmon.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.notes == nil {
		n.notes = map[string][]string{}
	}
	n.notes[note.Error.Hash] = append(n.notes[note.Error.Hash], string(note.Reason))
	return nil
}

func TestFaultManyMonitorsOverlappingErrors(t *testing.T) {
	tdb := openPostgres(t)
	const monitors, goroutines, perG = 4, 8, 150
	var logs syncBuffer
	notifier := &hzCountingNotifier{}
	var ms []*errmon.Monitor
	var routers []*gin.Engine
	for i := 0; i < monitors; i++ {
		db := tdb.DB
		if i > 0 { // each monitor with its own pool, as separate instances have
			var err error
			db, err = gorm.Open(postgres.Open(tdb.DSN), quietGorm())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if s, err := db.DB(); err == nil {
					s.Close()
				}
			})
		}
		cfg := hzConfig(db, &logs)
		cfg.FlushInterval = time.Millisecond // as many concurrent upserts as possible
		cfg.DigestThreshold = -1             // one alert per new error, counted below
		cfg.SendNotification = true
		cfg.Notifier = notifier
		cfg.RecipientEmail = []string{"team@example.com"}
		cfg.EmailSender = "errmon@example.com"
		m := hzNew(t, cfg)
		ms = append(ms, m)
		routers = append(routers, hzFaultRouter(t, m))
	}
	want := map[string]int64{}
	var wantMu sync.Mutex
	var wg sync.WaitGroup
	var bad atomic.Int64
	for i := range ms {
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(i, g int) {
				defer wg.Done()
				local := map[string]int64{}
				for n := 0; n < perG; n++ {
					k := hzKinds[(n*7+g)%len(hzKinds)]
					switch n % 3 {
					case 0: // by hand, outside a request
						ms[i].Record(nil, errors.New("overlap "+k))
						local["overlap "+k]++
					case 1:
						rec := httptest.NewRecorder()
						routers[i].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/err/"+k, nil))
						if rec.Code != http.StatusInternalServerError {
							bad.Add(1)
						}
						local["fault "+k]++
					case 2:
						rec := httptest.NewRecorder()
						routers[i].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/panic", nil))
						if rec.Code != http.StatusInternalServerError {
							bad.Add(1)
						}
						local["fault panic"]++
					}
				}
				wantMu.Lock()
				for k, n := range local {
					want[k] += n
				}
				wantMu.Unlock()
			}(i, g)
		}
	}
	wg.Wait()
	for _, m := range ms {
		hzFlushUntilStored(t, m)
	}
	for _, m := range ms {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	if n := bad.Load(); n != 0 {
		t.Errorf("%d requests answered with a wrong status", n)
	}
	got := hzCounts(t, tdb.DB)
	hzSameCounts(t, got, want)
	var rows int64
	tdb.DB.Model(&errmon.ErrorRecord{}).Count(&rows)
	if int(rows) != len(want) {
		t.Errorf("%d rows for %d fingerprints", rows, len(want))
	}
	// The hourly chart adds up to the counts.
	var hourly, total int64
	tdb.DB.Raw("SELECT COALESCE(SUM(count),0) FROM app_error_hourly").Scan(&hourly)
	for _, n := range want {
		total += n
	}
	if hourly != total {
		t.Errorf("hourly counts sum to %d, want %d", hourly, total)
	}
	var maxSamples int64
	tdb.DB.Raw("SELECT COALESCE(MAX(c),0) FROM (SELECT count(*) AS c FROM app_error_occurrences GROUP BY hash) s").Scan(&maxSamples)
	if maxSamples > store.OccurrenceHistory {
		t.Errorf("%d samples kept for one error, want at most %d", maxSamples, store.OccurrenceHistory)
	}
	// One alert per new error, whichever monitor created it.
	notifier.mu.Lock()
	defer notifier.mu.Unlock()
	if len(notifier.notes) != len(want) {
		t.Errorf("alerts for %d errors, want %d", len(notifier.notes), len(want))
	}
	for hash, reasons := range notifier.notes {
		if len(reasons) != 1 || reasons[0] != string(errmon.ReasonNew) {
			t.Errorf("error %s alerted %v, want exactly one %q", hash, reasons, errmon.ReasonNew)
		}
	}
	// No deadlock, no failed write: nothing logged at error level.
	if text := logs.String(); strings.Contains(text, "level=ERROR") || strings.Contains(text, "level=WARN") {
		t.Errorf("errors logged under concurrent load:\n%s", text)
	}
	t.Logf("%d monitors × %d goroutines: %d occurrences of %d errors, exact", monitors, goroutines, total, len(want))
}

// ---------------------------------------------------------------------------
// Extension points that panic never escape to the host

type hzPanickingBuilder struct{}

func (hzPanickingBuilder) BuildContext(*gin.Context, func(string) (bool, string)) map[string]any {
	panic("builder exploded password=hunter2-builder")
}

type hzPanickingNotifier struct{ calls atomic.Int64 }

func (n *hzPanickingNotifier) Notify(context.Context, *errmon.Notification) error {
	n.calls.Add(1)
	panic("notifier exploded")
}

type hzPanickingTicketing struct{ calls atomic.Int64 }

func (n *hzPanickingTicketing) RaiseTicket(context.Context, *errmon.ErrorRecord) error {
	n.calls.Add(1)
	panic("ticketing exploded")
}

type hzPanickingWriter struct{}

func (hzPanickingWriter) Write([]byte) (int, error) { panic("output writer exploded") }

func TestFaultPanickingExtensionsNeverEscape(t *testing.T) {
	cases := []struct {
		name string
		set  func(*errmon.Config)
		// what the stored error's request data must show
		contextHas string
	}{
		{"ContextBuilder", func(c *errmon.Config) { c.ContextBuilder = hzPanickingBuilder{} }, "ContextBuilder panicked"},
		{"Notifier", func(c *errmon.Config) {
			c.SendNotification = true
			c.Notifier = &hzPanickingNotifier{}
			c.RecipientEmail = []string{"team@example.com"}
			c.EmailSender = "errmon@example.com"
		}, `"method":"GET"`},
		{"Ticketing", func(c *errmon.Config) { c.Ticketing = &hzPanickingTicketing{} }, `"method":"GET"`},
		{"Fingerprint", func(c *errmon.Config) {
			c.Fingerprint = func(*errmon.Occurrence) string { panic("fingerprint exploded") }
		}, `"method":"GET"`},
		{"RecoveryHandler", func(c *errmon.Config) {
			c.RecoveryHandler = func(*gin.Context, any) { panic("recovery handler exploded") }
		}, `"method":"GET"`},
		{"Output", func(c *errmon.Config) { c.Output = hzPanickingWriter{} }, `"method":"GET"`},
	}
	hzReleaseMode(t) // restored once the parallel subtests are done
	for _, kind := range dbKinds {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				t.Parallel() // the Notifier and Ticketing cases wait out delivery retries
				tdb := openTestDB(t, kind)
				var logs syncBuffer
				cfg := hzConfig(tdb.DB, &logs)
				tc.set(&cfg)
				m := hzNew(t, cfg)
				r := hzFaultRouter(t, m)
				for _, path := range []string{"/panic", "/err/extension"} {
					rec := httptest.NewRecorder()
					escaped := func() (p any) {
						defer func() { p = recover() }()
						r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
						return nil
					}()
					if escaped != nil {
						m.Close()
						t.Fatalf("%s: panic escaped to the host: %v", path, escaped)
					}
					if rec.Code != http.StatusInternalServerError {
						t.Errorf("%s: status %d, want 500", path, rec.Code)
					}
				}
				m.Record(nil, errors.New("fault by hand"))
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				if err := m.Flush(ctx); err != nil {
					t.Errorf("Flush: %v", err)
				}
				cancel()
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				var rows []errmon.ErrorRecord
				tdb.DB.Order("message").Find(&rows)
				got := map[string]errmon.ErrorRecord{}
				for _, row := range rows {
					got[row.Message] = row
				}
				for _, msg := range []string{"fault panic", "fault extension", "fault by hand"} {
					row, ok := got[msg]
					if !ok {
						t.Errorf("%q not recorded; rows: %v", msg, rows)
						continue
					}
					if row.Count != 1 {
						t.Errorf("%q count %d, want 1", msg, row.Count)
					}
					if msg != "fault by hand" && !strings.Contains(row.RequestData, tc.contextHas) {
						t.Errorf("%q request data %s, want it to contain %s", msg, row.RequestData, tc.contextHas)
					}
					if strings.Contains(row.RequestData, "hunter2") {
						t.Errorf("secret from a panic message stored: %s", row.RequestData)
					}
				}
				if n, ok := cfg.Notifier.(*hzPanickingNotifier); ok {
					if n.calls.Load() == 0 {
						t.Error("the notifier was never called")
					}
					if !strings.Contains(logs.String(), "could not deliver alert") {
						t.Errorf("notifier panic not logged:\n%s", logs.String())
					}
				}
				if tk, ok := cfg.Ticketing.(*hzPanickingTicketing); ok {
					if tk.calls.Load() == 0 {
						t.Error("the ticketing was never called")
					}
					if !strings.Contains(logs.String(), "could not deliver ticket") {
						t.Errorf("ticketing panic not logged:\n%s", logs.String())
					}
				}
				if strings.Contains(logs.String(), "hunter2") {
					t.Errorf("secret from a panic message logged:\n%s", logs.String())
				}
			})
		}
	}
}

// hzAwaitLockWaiter waits (up to 6 s) until a session waits for a lock on
// app_errors, the writer stuck behind a held table lock; without it a lock
// test would test nothing.
func hzAwaitLockWaiter(t *testing.T, locker *gorm.DB) {
	t.Helper()
	var waiting int64
	for i := 0; i < 600 && waiting == 0; i++ {
		locker.Raw(`SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'app_errors'::regclass`).Scan(&waiting)
		time.Sleep(10 * time.Millisecond)
	}
	if waiting == 0 {
		t.Fatal("the writer never waited on the lock: the test does not test anything")
	}
}

// ---------------------------------------------------------------------------
// A network partition: the database neither answers nor refuses (faultProxy)

func TestFaultNetworkPartition(t *testing.T) {
	tdb := openPostgres(t) // creates the schema on the shared server
	var schema string
	tdb.DB.Raw("SELECT current_schema()").Scan(&schema)
	proxy := startFaultProxy(t, pgAddr(pgDSN(t)))
	host, port, _ := net.SplitHostPort(proxy.addr())
	var user, dbname string
	tdb.DB.Raw("SELECT current_user").Scan(&user)
	tdb.DB.Raw("SELECT current_database()").Scan(&dbname)
	dsn := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable search_path=%s connect_timeout=3", host, port, user, dbname, schema)
	db, err := gorm.Open(postgres.Open(dsn), quietGorm())
	if err != nil {
		t.Fatalf("open through the proxy: %v", err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	var logs syncBuffer
	cfg := hzConfig(db, &logs)
	cfg.CloseTimeout = 300 * time.Millisecond
	m := hzNew(t, cfg)
	r := hzFaultRouter(t, m)
	m.Record(nil, errors.New("fault warmup"))
	hzFlushUntilStored(t, m)

	proxy.partition()
	load := hzStartLoad(r, 4)
	load.waitSent(t, 2000)
	want := load.finish()
	if n := load.badCodes.Load(); n != 0 {
		t.Errorf("%d requests got a wrong status during the partition", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	if err := m.Flush(ctx); err == nil {
		t.Error("Flush succeeded during a partition: the test tests nothing")
	}
	cancel()
	proxy.heal()
	hzFlushUntilStored(t, m)
	want["fault warmup"] = 1
	hzSameCounts(t, hzCounts(t, tdb.DB), want)

	// Close during a partition returns (CloseTimeout, then the pending
	// write is cancelled) and reports what it could not store.
	proxy.partition()
	for i := 0; i < 5; i++ {
		m.Record(nil, errors.New("fault partitioned"))
	}
	err = hzClose(t, m)
	if err == nil || !strings.Contains(err.Error(), "5 occurrences of 1 errors not stored") {
		t.Errorf("Close during a partition = %v, want it to report 5 occurrences not stored", err)
	}
	proxy.heal()
}
