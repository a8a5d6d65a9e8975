// Command notify shows errmon's extension points for alerts: a custom
// Notifier (a webhook that POSTs each alert as JSON), a Ticketing
// implementation (tickets appended to a JSON-lines file), and, when an SMTP
// server is configured, email through github.com/errmon/errmon/mail, all at
// once.
//
//	go run ./examples/notify                  # runs the demo and exits
//	go run ./examples/notify -serve           # then keeps serving on -addr
//	go run ./examples/notify -webhook https://hooks.example.com/errmon
//
// Without -webhook, the program starts its own webhook receiver on
// 127.0.0.1 and prints what it gets. The demo sends a failing request
// several times (one alert and one ticket: the error is new), resolves the
// error as the dashboard would, sends it again (one more alert and ticket:
// a regression), and prints a summary. No SMTP server is needed.
//
// Email is optional, configured from the environment:
//
//	SMTP_HOST       SMTP server; email is off when empty
//	SMTP_PORT       default 587 (465 with SMTP_SSL=true)
//	SMTP_USERNAME   login, when the server wants one
//	SMTP_PASSWORD
//	SMTP_SSL        true for implicit TLS (SMTPS); else STARTTLS when offered
//	APP_ERROR_RECIPIENT_EMAIL, APP_ERROR_EMAIL_SENDER, APP_ERROR_SUBJECT_PREFIX,
//	APP_ERROR_BASE_URL and the other APP_ERROR_* keys: see errmon.ConfigFromEnv
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/glebarez/sqlite" // pure Go: no C compiler needed
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
)

func main() {
	webhook := flag.String("webhook", "", "URL to POST alerts to as JSON (default: a receiver started by this program)")
	dir := flag.String("dir", "", "directory for the SQLite file and tickets.jsonl (default: a new temporary directory)")
	serve := flag.Bool("serve", false, "after the demo, keep serving on -addr until Ctrl-C")
	addr := flag.String("addr", "127.0.0.1:8081", "address for -serve")
	flag.Parse()
	if err := run(*webhook, *dir, *serve, *addr); err != nil {
		log.Fatal(err)
	}
}

// Alert is the JSON body the webhook receives.
type Alert struct {
	Reason    string    `json:"reason"`
	Subject   string    `json:"subject"`
	Hash      string    `json:"hash"`
	Exception string    `json:"exception"`
	Message   string    `json:"message"`
	Method    string    `json:"method,omitempty"`
	Path      string    `json:"path,omitempty"`
	Count     int64     `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Link      string    `json:"link,omitempty"`
	Text      string    `json:"text"`
}

// Webhook is an errmon.Notifier that POSTs each alert as JSON.
type Webhook struct {
	URL    string
	Client *http.Client
}

// Notify implements errmon.Notifier. It honours ctx (errmon bounds it by
// Config.NotifyTimeout). A 4xx answer is permanent: errmon does not retry
// it; anything else that fails is retried with backoff.
func (w *Webhook) Notify(ctx context.Context, n *errmon.Notification) error {
	a := Alert{Reason: string(n.Reason), Subject: n.Subject, Link: n.Link, Text: n.Text}
	if r := n.Error; r != nil {
		a.Hash, a.Exception, a.Message = r.Hash, r.ExceptionName, r.Message
		a.Method, a.Path, a.Count, a.FirstSeen, a.LastSeen = r.Method, r.Path, r.Count, r.CreatedOn, r.LastSeen
	}
	body, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("webhook: encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w: %w", errmon.ErrPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := w.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: post %s: %w", w.URL, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("webhook: %s answered %s: %w", w.URL, resp.Status, errmon.ErrPermanent)
	}
	return fmt.Errorf("webhook: %s answered %s", w.URL, resp.Status)
}

// Fanout sends each alert to several notifiers. It fails only when all of
// them fail (errmon then retries the alert); a receiver that fails while
// another succeeds is logged, not retried, so no receiver sees an alert
// twice.
type Fanout []errmon.Notifier

// Notify implements errmon.Notifier.
func (f Fanout) Notify(ctx context.Context, n *errmon.Notification) error {
	var errs []error
	for _, x := range f {
		if err := x.Notify(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == len(f) {
		return errors.Join(errs...)
	}
	for _, err := range errs {
		log.Printf("alert %s: one receiver failed: %v", n.Error.Hash[:12], err)
	}
	return nil
}

// FileTickets is an errmon.Ticketing that appends one JSON line per ticket
// to a file: a stand-in for a call to an issue tracker's API.
type FileTickets struct {
	Path string
	mu   sync.Mutex
}

// Ticket is one line of the tickets file.
type Ticket struct {
	Title    string    `json:"title"`
	Hash     string    `json:"hash"`
	Count    int64     `json:"count"`
	Reopened bool      `json:"reopened"`
	Raised   time.Time `json:"raised"`
}

// RaiseTicket implements errmon.Ticketing.
func (t *FileTickets) RaiseTicket(_ context.Context, rec *errmon.ErrorRecord) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.OpenFile(t.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("tickets: %w", err)
	}
	line, _ := json.Marshal(Ticket{
		Title:    rec.ExceptionName + ": " + rec.Message,
		Hash:     rec.Hash,
		Count:    rec.Count,
		Reopened: rec.Regressions > 0,
		Raised:   time.Now().UTC(),
	})
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("tickets: write %s: %w", t.Path, err)
	}
	log.Printf("ticket raised in %s for %s", t.Path, rec.Hash[:12])
	return f.Close()
}

// mailFromEnv returns a mail.Notifier when SMTP_HOST is set.
func mailFromEnv() (*mail.Notifier, string, error) {
	host := os.Getenv("SMTP_HOST")
	if host == "" {
		return nil, "", nil
	}
	cfg := mail.Config{Host: host, Username: os.Getenv("SMTP_USERNAME"), Password: os.Getenv("SMTP_PASSWORD")}
	if p := os.Getenv("SMTP_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, "", fmt.Errorf("SMTP_PORT: %q is not a port number", p)
		}
		cfg.Port = n
	}
	if s := os.Getenv("SMTP_SSL"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, "", fmt.Errorf("SMTP_SSL: %q is not true or false", s)
		}
		cfg.SSL = b
	}
	where := host
	if cfg.Port != 0 {
		where += ":" + strconv.Itoa(cfg.Port)
	}
	return mail.New(cfg), where, nil
}

// receiver is the demo's own webhook endpoint: it prints what it gets.
func receiver() (*httptest.Server, *int) {
	var mu sync.Mutex
	got := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got++
		mu.Unlock()
		fmt.Printf("\n[webhook] %s alert: %s\n          count %d, link %s\n", a.Reason, a.Subject, a.Count, orNone(a.Link))
		w.WriteHeader(http.StatusNoContent)
	}))
	return srv, &got
}

func orNone(s string) string {
	if s == "" {
		return "(none: set APP_ERROR_BASE_URL)"
	}
	return s
}

func run(webhookURL, dir string, serve bool, addr string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "errmon-notify-")
		if err != nil {
			return err
		}
		dir = d
	}
	dbPath := filepath.Join(dir, "errors.db")
	db, err := gorm.Open(sqlite.Open(dbPath+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)"),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		return fmt.Errorf("open %s: %w", dbPath, err)
	}

	var received *int
	if webhookURL == "" {
		srv, n := receiver()
		defer srv.Close()
		webhookURL, received = srv.URL, n
	}
	notifiers := Fanout{&Webhook{URL: webhookURL, Client: &http.Client{}}}
	mailer, mailAddr, err := mailFromEnv()
	if err != nil {
		return err
	}
	if mailer != nil {
		notifiers = append(notifiers, mailer)
	}

	cfg, err := errmon.ConfigFromEnv()
	if err != nil {
		return err
	}
	cfg.DB = db
	cfg.Output = io.Discard // the demo prints its own story
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg.SendNotification = true
	cfg.Notifier = notifiers
	cfg.Ticketing = &FileTickets{Path: filepath.Join(dir, "tickets.jsonl")}
	if len(cfg.RecipientEmail) == 0 {
		cfg.RecipientEmail = []string{"team@example.com"}
	}
	if cfg.EmailSender == "" {
		cfg.EmailSender = "errmon@example.com"
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = "notify-demo"
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + addr
	}
	cfg.NotifyTimeout = 10 * time.Second
	// gin runs in release mode below, where the dashboard's default is
	// closed: open it to requests made on this machine.
	cfg.ViewPermission = errmon.LocalOnly
	m, err := errmon.New(cfg)
	if err != nil {
		return err
	}
	defer m.Close()

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	m.InitApp(r)
	r.POST("/checkout", func(c *gin.Context) {
		var order struct {
			Items int    `json:"items"`
			Card  string `json:"card_secret"`
		}
		_ = c.ShouldBindJSON(&order)
		panic(fmt.Sprintf("payment gateway timeout for an order of %d items", order.Items))
	})

	fmt.Printf("errmon notify demo: database %s\nwebhook %s", dbPath, webhookURL)
	if mailer != nil {
		fmt.Printf(", email via %s to %s", mailAddr, strings.Join(cfg.RecipientEmail, ", "))
	} else {
		fmt.Print(" (email off: set SMTP_HOST to send it too)")
	}
	fmt.Println()

	checkout := func(times int) {
		for i := 0; i < times; i++ {
			req := httptest.NewRequest(http.MethodPost, "/checkout", strings.NewReader(`{"items":3,"card_secret":"4111-1111"}`))
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if i == 0 {
				fmt.Printf("POST /checkout -> %d (x%d)\n", w.Code, times)
			}
		}
	}
	flush := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return m.Flush(ctx)
	}

	fmt.Println("\n1. a new error, 20 times: one alert, one ticket")
	checkout(20)
	if err := flush(); err != nil {
		return err
	}
	fmt.Println("\n2. the same error again, 20 times: nothing (it is still open)")
	checkout(20)
	if err := flush(); err != nil {
		return err
	}
	fmt.Println("\n3. resolved on the dashboard, then it happens again: a regression alert and ticket")
	if err := db.Model(&errmon.ErrorRecord{}).Where("resolved = ?", false).Update("resolved", true).Error; err != nil {
		return fmt.Errorf("resolve: %w", err)
	}
	checkout(1)
	if err := flush(); err != nil {
		return err
	}

	s := m.Stats()
	fmt.Printf("\nsummary: %d occurrences stored, %d alerts sent, %d failed", s.Stored, s.AlertsSent, s.AlertsFailed)
	if received != nil {
		fmt.Printf(", %d received by the webhook", *received)
	}
	fmt.Printf("\ntickets: %s\n", cfg.Ticketing.(*FileTickets).Path)

	if !serve {
		return m.Close()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Printf("\nserving on http://%s: curl -X POST http://%s/checkout ; dashboard http://%s%s/\n",
		ln.Addr(), ln.Addr(), ln.Addr(), cfg.URLPrefix)
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return m.Close()
}
