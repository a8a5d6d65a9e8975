package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	"github.com/gin-gonic/gin"
	"gopkg.in/gomail.v2"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Tests of the alert policy and its delivery, through a real SMTP
// conversation: the in-process go-smtp server of smtp_test.go receives
// what the monitor sends through gomail, and the messages are taken apart
// with net/mail and mime/multipart (ntParse). mail_test.go runs the same
// kind of scenarios with mail.Notifier. What compose and alertContext make
// of a stored row is tested white-box in the root (notify_test.go there).

// ntGomail is a Notifier that sends each alert with gomail's own Dialer.
// Unlike mail.Notifier it cannot honour its context: against a server that
// hangs it blocks until the connection closes, which the monitor must
// survive.
type ntGomail struct {
	addr  string
	calls atomic.Int64
}

func (g *ntGomail) Notify(_ context.Context, n *errmon.Notification) error {
	g.calls.Add(1)
	host, port, err := net.SplitHostPort(g.addr)
	if err != nil {
		return err
	}
	p, _ := strconv.Atoi(port)
	msg := gomail.NewMessage()
	msg.SetHeader("From", n.From)
	msg.SetHeader("To", append([]string(nil), n.To...)...)
	msg.SetHeader("Subject", n.Subject)
	msg.SetHeader("X-Errmon-Reason", string(n.Reason))
	msg.SetHeader("X-Errmon-Hash", n.Error.Hash)
	// Threading as mail.Notifier does it.
	if n.MessageID != "" {
		msg.SetHeader("Message-Id", n.MessageID)
	}
	if n.ThreadID != "" && n.ThreadID != n.MessageID {
		msg.SetHeader("In-Reply-To", n.ThreadID)
		msg.SetHeader("References", n.ThreadID)
	}
	msg.SetBody("text/plain", n.Text)
	msg.AddAlternative("text/html", n.HTML)
	return gomail.NewDialer(host, p, "", "").DialAndSend(msg)
}

// ntParsed is a message taken apart: headers, and each part decoded.
type ntParsed struct {
	Header  netmail.Header
	Subject string
	Text    string
	HTML    string
	Raw     string
}

func ntParse(t testing.TB, raw string) ntParsed {
	t.Helper()
	m := ntReadMessage(t, raw)
	if m.Type != "multipart/alternative" {
		t.Fatalf("Content-Type %q, want multipart/alternative", m.Header.Get("Content-Type"))
	}
	for pt := range m.Parts {
		if pt != "text/plain" && pt != "text/html" {
			t.Errorf("unexpected part %q", pt)
		}
	}
	p := ntParsed{Header: m.Header, Subject: m.subject(t), Text: m.Parts["text/plain"], HTML: m.Parts["text/html"], Raw: raw}
	if p.Text == "" || p.HTML == "" {
		t.Fatalf("want both parts; text %q html %q", p.Text, p.HTML)
	}
	return p
}

// ntMonitor is newTestMonitor with alerts sent through notifier (none
// when nil) to two recipients, from errmon@example.com, with the subject
// prefix "shop" and links to https://shop.example.com. It returns the
// monitor and its log.
func ntMonitor(t testing.TB, db *gorm.DB, notifier errmon.Notifier, tweak func(*errmon.Config)) (*testMonitor, *syncBuffer) {
	t.Helper()
	tm := newTestMonitor(t, db, func(cfg *errmon.Config) {
		cfg.SendNotification = notifier != nil
		cfg.Notifier = notifier
		cfg.RecipientEmail = []string{"team@example.com", "oncall@example.com"}
		cfg.EmailSender = "errmon@example.com"
		cfg.SubjectPrefix = "shop"
		cfg.BaseURL = "https://shop.example.com"
		cfg.NotifyTimeout = 2 * time.Second
		if tweak != nil {
			tweak(cfg)
		}
	})
	return tm, tm.logs
}

// Defaults of errmon's Config that the alerts show: what masked values
// become (MaskWith), and how many new errors of one window are announced
// one by one before the rest wait for a digest (DigestThreshold).
const (
	ntMaskWith        = "**************"
	ntDigestThreshold = 10
)

// ntLetters spells i without digits or hex, so that each i fingerprints
// apart (the message normalizer replaces numbers).
func ntLetters(i int) string {
	const abc = "ghijklmnopqrstuvwxyz"
	b := []byte("gggg")
	for p := len(b) - 1; p >= 0; p-- {
		b[p] = abc[i%len(abc)]
		i /= len(abc)
	}
	return string(b)
}

// Secrets sent with every request of ntRouter; none may reach a mail.
const (
	ntQuerySecret  = "qry-pw-1x7"
	ntBodySecret   = "json-pw-2y8"
	ntBearerSecret = "bearer-tok-3z9"
)

func ntLoginFailed(c *gin.Context) {
	var body map[string]any
	_ = c.ShouldBindJSON(&body)
	panic(fmt.Sprintf("login failed for %v", body["user"]))
}

func ntRouter(m *testMonitor) *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	r.Use(m.Middleware())
	r.POST("/api/login", ntLoginFailed)
	r.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "fine") })
	return r
}

// ntHit sends the failing login request n times and checks each answer.
func ntHit(t testing.TB, r http.Handler, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		req := httptest.NewRequest(http.MethodPost, "/api/login?lang=en&password="+ntQuerySecret,
			strings.NewReader(`{"user":"bob","password":"`+ntBodySecret+`","profile":{"client_secret":"`+ntBodySecret+`"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+ntBearerSecret)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("request %d: status %d, want 500", i, w.Code)
		}
	}
}

func ntOnlyRecord(t testing.TB, db *gorm.DB) errmon.ErrorRecord {
	t.Helper()
	var recs []errmon.ErrorRecord
	if err := db.Find(&recs).Error; err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Fatalf("%d stored errors, want 1", len(recs))
	}
	return recs[0]
}

func ntResolve(t testing.TB, db *gorm.DB, hash string) {
	t.Helper()
	if err := db.Model(&errmon.ErrorRecord{}).Where("hash = ?", hash).Update("resolved", true).Error; err != nil {
		t.Fatal(err)
	}
}

// TestNotifyEmailPolicy: one mail for a new error hit 50 times, with the
// expected headers, both parts, the link and no secret; one more after
// resolve and recur; nothing for further repeats.
func TestNotifyEmailPolicy(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv := ntStartSMTP(t, nil)
		m, logs := ntMonitor(t, tdb.DB, &ntGomail{addr: srv.Addr()}, nil)
		r := ntRouter(m)

		ntHit(t, r, 50)
		m.flush(t)
		mails := srv.received()
		if len(mails) != 1 {
			t.Fatalf("%d mails for a new error hit 50 times, want 1", len(mails))
		}
		rec := ntOnlyRecord(t, tdb.DB)
		if rec.Count != 50 {
			t.Errorf("count %d, want 50", rec.Count)
		}
		got := mails[0]
		if got.From != "errmon@example.com" || strings.Join(got.To, ",") != "team@example.com,oncall@example.com" {
			t.Errorf("envelope from %q to %v", got.From, got.To)
		}
		p := ntParse(t, got.Raw)
		if from := p.Header.Get("From"); from != "errmon@example.com" {
			t.Errorf("From = %q", from)
		}
		if to := p.Header.Get("To"); !strings.Contains(to, "team@example.com") || !strings.Contains(to, "oncall@example.com") {
			t.Errorf("To = %q", to)
		}
		wantSubject := "[shop] [New] [POST] /api/login " + rec.ExceptionName + ": login failed for bob"
		if p.Subject != wantSubject {
			t.Errorf("Subject = %q, want %q", p.Subject, wantSubject)
		}
		if reason := p.Header.Get("X-Errmon-Reason"); reason != string(errmon.ReasonNew) {
			t.Errorf("reason %q, want %q", reason, errmon.ReasonNew)
		}
		link := "https://shop.example.com/dev/error/" + rec.Hash
		for name, body := range map[string]string{"text": p.Text, "html": p.HTML} {
			for _, want := range []string{"A new error", link, "login failed for bob", "ntLoginFailed", "Count", "First seen", "Last seen", ntMaskWith, `"url": "/api/login?lang=en&password=`} {
				if name == "html" && strings.HasPrefix(want, `"url"`) {
					want = "&#34;url&#34;: &#34;/api/login?lang=en&amp;password="
				}
				if !strings.Contains(body, want) {
					t.Errorf("%s part lacks %q:\n%s", name, want, body)
				}
			}
		}
		if !strings.Contains(p.HTML, `<a href="`+link+`"`) {
			t.Errorf("html part has no link to %s", link)
		}
		if strings.Contains(p.Text, "&#34;") || strings.Contains(p.Text, "&lt;") {
			t.Errorf("text part is HTML-escaped:\n%s", p.Text)
		}
		for _, secret := range []string{ntQuerySecret, ntBodySecret, ntBearerSecret} {
			for name, s := range map[string]string{"raw message": got.Raw, "text": p.Text, "html": p.HTML, "log": logs.String()} {
				if strings.Contains(s, secret) {
					t.Errorf("secret %q in the %s", secret, name)
				}
			}
		}

		// Resolve, recur: one regression mail.
		ntResolve(t, tdb.DB, rec.Hash)
		ntHit(t, r, 5)
		m.flush(t)
		mails = srv.received()
		if len(mails) != 2 {
			t.Fatalf("%d mails after resolve and recur, want 2", len(mails))
		}
		p = ntParse(t, mails[1].Raw)
		if reason := p.Header.Get("X-Errmon-Reason"); reason != string(errmon.ReasonRegression) {
			t.Errorf("second mail's reason %q, want %q", reason, errmon.ReasonRegression)
		}
		if !strings.Contains(p.Text, "A resolved error happened again") || !strings.Contains(p.Text, "Count:      55") {
			t.Errorf("regression mail:\n%s", p.Text)
		}
		if want := strings.Replace(wantSubject, "[New]", "[Regression]", 1); p.Subject != want {
			t.Errorf("Subject = %q, want %q", p.Subject, want)
		}

		// Repeats of the open error: nothing more.
		ntHit(t, r, 20)
		m.flush(t)
		if n := len(srv.received()); n != 2 {
			t.Fatalf("%d mails after repeats of an open error, want 2", n)
		}
		if rec := ntOnlyRecord(t, tdb.DB); rec.Count != 75 || rec.Resolved {
			t.Errorf("count %d resolved %v, want 75 false", rec.Count, rec.Resolved)
		}
		if s := m.Stats(); s.AlertsSent != 2 || s.AlertsFailed != 0 {
			t.Errorf("stats %+v, want 2 sent, 0 failed", s)
		}
	})
}

// TestNotifyDisabled: SendNotification false sends nothing, whatever
// happens.
func TestNotifyDisabled(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv := ntStartSMTP(t, nil)
		n := &ntGomail{addr: srv.Addr()}
		m, _ := ntMonitor(t, tdb.DB, n, func(c *errmon.Config) {
			c.SendNotification = false
			c.NotifyThresholds = []int64{10}
			c.NotifyEvery = time.Nanosecond
		})
		r := ntRouter(m)
		ntHit(t, r, 30)
		m.flush(t)
		ntResolve(t, tdb.DB, ntOnlyRecord(t, tdb.DB).Hash)
		ntHit(t, r, 3)
		m.flush(t)
		if got := len(srv.received()); got != 0 || n.calls.Load() != 0 {
			t.Fatalf("%d mails, %d Notify calls with SendNotification false; want none", got, n.calls.Load())
		}
	})
}

// TestNotifyThresholds: an open error re-alerts once at each threshold it
// reaches, however its occurrences are batched.
func TestNotifyThresholds(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		n := &ntRecorder{}
		m, _ := ntMonitor(t, tdb.DB, n, func(c *errmon.Config) { c.NotifyThresholds = []int64{100, 10, 1000} })
		boom := errors.New("threshold boom")
		steps := []struct {
			record int
			want   []string
		}{
			{5, []string{"new"}},
			{4, []string{"new"}},                              // 9
			{1, []string{"new", "threshold"}},                 // 10
			{85, []string{"new", "threshold"}},                // 95
			{2000, []string{"new", "threshold", "threshold"}}, // 2095: 100 and 1000 in one write, one alert
			{10, []string{"new", "threshold", "threshold"}},   // 2105
		}
		total := 0
		for i, s := range steps {
			for j := 0; j < s.record; j++ {
				m.Record(nil, boom)
			}
			total += s.record
			m.flush(t)
			if got := n.reasons(); strings.Join(got, ",") != strings.Join(s.want, ",") {
				t.Fatalf("step %d (count %d): alerts %v, want %v", i, total, got, s.want)
			}
			if i == 2 && !strings.Contains(n.last().Text, "passed 10 occurrences; 10 now") {
				t.Errorf("threshold alert text:\n%s", n.last().Text)
			}
			if i == 4 && !strings.Contains(n.last().Text, "passed 1000 occurrences; 2095 now") {
				t.Errorf("threshold alert names the highest threshold crossed:\n%s", n.last().Text)
			}
		}
		if rec := ntOnlyRecord(t, tdb.DB); rec.Count != int64(total) {
			t.Errorf("count %d, want %d", rec.Count, total)
		}
		// Recorded outside a request: no method or path in the subject.
		if s := n.last().Subject; s != "[shop] [Escalating: 1000 occurrences] *errors.errorString: threshold boom" {
			t.Errorf("subject %q", s)
		}
	})
}

// TestNotifyEvery: with NotifyEvery, an open error that keeps occurring is
// re-announced once per interval, decided in the database.
func TestNotifyEvery(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		n := &ntRecorder{}
		m, _ := ntMonitor(t, tdb.DB, n, func(c *errmon.Config) { c.NotifyEvery = time.Hour })
		boom := errors.New("ongoing boom")
		m.Record(nil, boom)
		m.flush(t)
		m.Record(nil, boom)
		m.flush(t)
		if got := n.reasons(); strings.Join(got, ",") != "new" {
			t.Fatalf("alerts %v, want [new]: the interval starts at the first alert", got)
		}
		rec := ntOnlyRecord(t, tdb.DB)
		if rec.LastNotifiedAt == nil {
			t.Fatal("last_notified_at not set by the first alert")
		}
		// The interval has passed.
		if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("hash = ?", rec.Hash).
			Update("last_notified_at", store.DBTime(time.Now().Add(-2*time.Hour))).Error; err != nil {
			t.Fatal(err)
		}
		m.Record(nil, boom)
		m.flush(t)
		m.Record(nil, boom)
		m.flush(t)
		if got := n.reasons(); strings.Join(got, ",") != "new,ongoing" {
			t.Fatalf("alerts %v, want [new ongoing]", got)
		}
		if !strings.Contains(n.last().Text, "keeps happening") || !strings.Contains(n.last().Text, "Count:      3") {
			t.Errorf("ongoing alert:\n%s", n.last().Text)
		}
	})
}

// ntTicketing counts tickets per hash; it can fail or panic.
type ntTicketing struct {
	mu    sync.Mutex
	calls map[string]int
	fail  error
	panic bool
}

func (k *ntTicketing) RaiseTicket(_ context.Context, rec *errmon.ErrorRecord) error {
	k.mu.Lock()
	if k.calls == nil {
		k.calls = map[string]int{}
	}
	k.calls[rec.Hash]++
	k.mu.Unlock()
	if k.panic {
		panic("ticketing exploded")
	}
	return k.fail
}

func (k *ntTicketing) count(hash string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.calls[hash]
}

// ntPanicky is a Notifier that panics.
type ntPanicky struct{ calls atomic.Int64 }

func (p *ntPanicky) Notify(context.Context, *errmon.Notification) error {
	p.calls.Add(1)
	panic("notifier exploded")
}

// TestNotifyTicketing: a ticket for each new error and each regression,
// never for repeats; failing and panicking Ticketing and Notifier are
// logged with the hash and never escape.
func TestNotifyTicketing(t *testing.T) {
	cases := []struct {
		name     string
		fail     error // what the Ticketing returns
		panic    bool  // whether it panics
		notifier func(*ntSMTP) errmon.Notifier
		wantMail bool
		wantLog  []string
	}{
		{"works", nil, false, func(s *ntSMTP) errmon.Notifier { return &ntGomail{addr: s.Addr()} }, true, nil},
		{"ticketing fails", fmt.Errorf("tracker down: %w", errmon.ErrPermanent), false,
			func(s *ntSMTP) errmon.Notifier { return &ntGomail{addr: s.Addr()} }, true, []string{"could not deliver ticket", "tracker down"}},
		{"ticketing and notifier panic", nil, true,
			func(*ntSMTP) errmon.Notifier { return &ntPanicky{} }, false,
			[]string{"could not deliver ticket", "ticketing exploded", "could not deliver alert", "notifier exploded"}},
		{"ticketing without notifications", nil, false, nil, false, nil},
	}
	eachDB(t, func(t *testing.T, tdb testDB) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tdb.DB.Exec("DELETE FROM app_errors")
				srv := ntStartSMTP(t, nil)
				var notifier errmon.Notifier
				if tc.notifier != nil {
					notifier = tc.notifier(srv)
				}
				ticket := &ntTicketing{fail: tc.fail, panic: tc.panic}
				m, logs := ntMonitor(t, tdb.DB, notifier, func(c *errmon.Config) { c.Ticketing = ticket })
				r := ntRouter(m)
				ntHit(t, r, 30)
				m.flush(t)
				h := ntOnlyRecord(t, tdb.DB).Hash
				if got := ticket.count(h); got != 1 {
					t.Fatalf("%d tickets for a new error, want 1", got)
				}
				ntHit(t, r, 10)
				m.flush(t)
				ntResolve(t, tdb.DB, h)
				ntHit(t, r, 10)
				m.flush(t)
				if got := ticket.count(h); got != 2 {
					t.Fatalf("%d tickets after a regression, want 2", got)
				}
				wantMails := 0
				if tc.wantMail {
					wantMails = 2
				}
				if got := len(srv.received()); got != wantMails {
					t.Errorf("%d mails, want %d", got, wantMails)
				}
				for _, want := range tc.wantLog {
					if !strings.Contains(logs.String(), want) {
						t.Errorf("log lacks %q:\n%s", want, logs.String())
					}
				}
				if len(tc.wantLog) > 0 && !strings.Contains(logs.String(), "hash="+h) {
					t.Errorf("log does not name the hash %s:\n%s", h, logs.String())
				}
				// The host is unharmed.
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ok", nil))
				if w.Code != http.StatusOK {
					t.Errorf("GET /ok: %d", w.Code)
				}
			})
		}
	})
}

// TestNotifyFaultySMTP: a server that refuses, hangs or answers 5xx never
// changes a response, Flush returns within its context, and the failure
// is logged with the error's hash.
func TestNotifyFaultySMTP(t *testing.T) {
	cases := []struct {
		name string
		addr func(t *testing.T) string
	}{
		{"refused", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			return addr
		}},
		{"hangs", func(t *testing.T) string { return ntHangingServer(t) }},
		{"5xx", func(t *testing.T) string {
			return ntStartSMTP(t, &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 0, 0}, Message: "no thanks"}).Addr()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tdb := openSQLite(t)
			n := &ntGomail{addr: tc.addr(t)}
			m, logs := ntMonitor(t, tdb.DB, n, func(c *errmon.Config) { c.NotifyTimeout = 200 * time.Millisecond })
			r := ntRouter(m)
			ntHit(t, r, 10)
			for i := 0; i < 10; i++ {
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ok", nil))
				if w.Code != http.StatusOK || w.Body.String() != "fine" {
					t.Fatalf("GET /ok: %d %q", w.Code, w.Body.String())
				}
			}
			// The error is stored; the alert is still being tried: a Flush
			// with a short deadline returns when the deadline passes.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			err := m.Flush(ctx)
			cancel()
			if tc.name != "5xx" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Flush with a short deadline = %v, want DeadlineExceeded", err)
			}
			h := ntOnlyRecord(t, tdb.DB).Hash
			// Wait for the retries to end, then read the log.
			m.flush(t)
			if s := m.Stats(); s.AlertsFailed != 1 || s.AlertsSent != 0 {
				t.Errorf("stats %+v, want 1 failed alert", s)
			}
			if !strings.Contains(logs.String(), "could not deliver alert") || !strings.Contains(logs.String(), "hash="+h) {
				t.Errorf("log does not report the failed alert for %s:\n%s", h, logs.String())
			}
			if n.calls.Load() < 1 {
				t.Errorf("notifier never called")
			}
			// Requests are still fine after the failures.
			ntHit(t, r, 1)
		})
	}
}

// TestNotifyCloseWithHangingSMTP: Close returns even while an alert is
// stuck on a server that never answers, with a Notifier that ignores its
// context.
func TestNotifyCloseWithHangingSMTP(t *testing.T) {
	tdb := openSQLite(t)
	m, logs := ntMonitor(t, tdb.DB, &ntGomail{addr: ntHangingServer(t)}, func(c *errmon.Config) {
		c.NotifyTimeout = time.Hour
		c.CloseTimeout = 200 * time.Millisecond
	})
	ntHit(t, ntRouter(m), 3)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := m.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Flush = %v, want DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a generous bound: a hang, not a timing
		t.Fatal("Close hung on a hanging SMTP server")
	}
	h := ntOnlyRecord(t, tdb.DB).Hash
	if !strings.Contains(logs.String(), "hash="+h) {
		t.Errorf("the undelivered alert is not logged with its hash:\n%s", logs.String())
	}
}

const (
	ntEnvHelper = "ERRMON_NOTIFY_HELPER"
	ntEnvDSN    = "ERRMON_NOTIFY_DSN"
	ntEnvSMTP   = "ERRMON_NOTIFY_SMTP"
)

// ntMailTicketing raises a ticket by mail, so the parent can count them.
type ntMailTicketing struct{ addr string }

func (k ntMailTicketing) RaiseTicket(ctx context.Context, rec *errmon.ErrorRecord) error {
	g := &ntGomail{addr: k.addr}
	return g.Notify(ctx, &errmon.Notification{
		From: "tickets@example.com", To: []string{"tracker@example.com"},
		Subject: "TICKET " + rec.Hash, Text: "ticket", HTML: "<p>ticket</p>", Error: rec, Reason: "ticket",
	})
}

// TestNotifyHelperProcess is not a test: it is a child process of
// TestNotifyMultiProcessOneMail.
func TestNotifyHelperProcess(t *testing.T) {
	if os.Getenv(ntEnvHelper) != "1" {
		t.Skip("helper process for TestNotifyMultiProcessOneMail")
	}
	db, err := gorm.Open(postgres.Open(os.Getenv(ntEnvDSN)), quietGorm())
	if err != nil {
		t.Fatal(err)
	}
	addr := os.Getenv(ntEnvSMTP)
	m, _ := ntMonitor(t, db, &ntGomail{addr: addr}, func(c *errmon.Config) {
		c.Ticketing = ntMailTicketing{addr: addr}
		c.FlushInterval = time.Millisecond
	})
	r := ntRouter(m)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	ntHit(t, r, 20)
	m.flush(t)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNotifyMultiProcessOneMail(t *testing.T) {
	tdb := openPostgres(t)
	// Create the tables once, as a deploy would, before the processes start.
	if err := store.New(tdb.DB).Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := ntStartSMTP(t, nil)
	const procs = 4
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
		buf   *bytes.Buffer
	}
	var children []child
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), ntEnvHelper+"=1", ntEnvDSN+"="+tdb.DSN, ntEnvSMTP+"="+srv.Addr())
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		errBuf := &bytes.Buffer{}
		cmd.Stderr = errBuf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		children = append(children, child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout), buf: errBuf})
	}
	// Wait until every process is ready, then start them at once.
	for i, c := range children {
		for {
			line, err := c.out.ReadString('\n')
			if err != nil {
				t.Fatalf("child %d: %v\n%s", i, err, c.buf)
			}
			if strings.TrimSpace(line) == "ready" {
				break
			}
		}
	}
	for _, c := range children {
		io.WriteString(c.stdin, "go\n")
	}
	for i, c := range children {
		rest, _ := io.ReadAll(c.out)
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s%s", i, err, rest, c.buf)
		}
	}
	rec := ntOnlyRecord(t, tdb.DB)
	if rec.Count != procs*20 {
		t.Errorf("count %d, want %d", rec.Count, procs*20)
	}
	var alerts, tickets int
	for _, mail := range srv.received() {
		p := ntParse(t, mail.Raw)
		switch {
		case p.Subject == "TICKET "+rec.Hash:
			tickets++
		case errmon.Reason(p.Header.Get("X-Errmon-Reason")) == errmon.ReasonNew:
			alerts++
		default:
			t.Errorf("unexpected mail %q", p.Subject)
		}
	}
	if alerts != 1 || tickets != 1 {
		t.Fatalf("%d alert mails and %d tickets from %d processes, want 1 and 1", alerts, tickets, procs)
	}
}

// TestNotifyAlertShapes: through a real SMTP conversation, the four
// reasons of one error: each subject says why, the rest of it is stable;
// every mail carries the thread of the first (whose Message-ID it is) and
// a Message-ID of its own; the threshold alert's headline and count agree;
// the HTML part is made for phones and folds library frames; the request
// is a table.
func TestNotifyAlertShapes(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv := ntStartSMTP(t, nil)
		m, _ := ntMonitor(t, tdb.DB, &ntGomail{addr: srv.Addr()}, func(c *errmon.Config) {
			c.NotifyThresholds = []int64{10}
			c.NotifyEvery = time.Hour
		})
		r := ntRouter(m)
		ntHit(t, r, 5) // new
		m.flush(t)
		ntHit(t, r, 30) // 35: passed 10
		m.flush(t)
		rec := ntOnlyRecord(t, tdb.DB)
		ntResolve(t, tdb.DB, rec.Hash)
		ntHit(t, r, 1) // regression, 36
		m.flush(t)
		if err := tdb.DB.Model(&errmon.ErrorRecord{}).Where("hash = ?", rec.Hash).
			Update("last_notified_at", store.DBTime(time.Now().Add(-2*time.Hour))).Error; err != nil {
			t.Fatal(err)
		}
		ntHit(t, r, 1) // ongoing, 37
		m.flush(t)
		mails := srv.received()
		if len(mails) != 4 {
			t.Fatalf("%d mails, want 4 (new, threshold, regression, ongoing)", len(mails))
		}
		rest := "[POST] /api/login " + rec.ExceptionName + ": login failed for bob"
		wants := []struct {
			reason                   errmon.Reason
			subject, headline, count string
		}{
			{errmon.ReasonNew, "[shop] [New] " + rest, "A new error", "Count:      5\n"},
			{errmon.ReasonThreshold, "[shop] [Escalating: 10 occurrences] " + rest, "An open error passed 10 occurrences; 35 now", "Count:      35\n"},
			{errmon.ReasonRegression, "[shop] [Regression] " + rest, "A resolved error happened again", "Count:      36\n"},
			{errmon.ReasonOngoing, "[shop] [Ongoing] " + rest, "An open error keeps happening", "Count:      37\n"},
		}
		thread := "<errmon." + rec.Hash + "@example.com>"
		ids := map[string]bool{}
		link := "https://shop.example.com/dev/error/" + rec.Hash
		for i, w := range wants {
			p := ntParse(t, mails[i].Raw)
			if got := p.Header.Get("X-Errmon-Reason"); errmon.Reason(got) != w.reason {
				t.Errorf("mail %d: reason %q, want %q", i, got, w.reason)
			}
			if p.Subject != w.subject {
				t.Errorf("mail %d: subject %q, want %q", i, p.Subject, w.subject)
			}
			if !strings.HasPrefix(p.Text, w.headline+": ") || !strings.Contains(p.Text, w.count) {
				t.Errorf("mail %d: headline or count wrong, want %q and %q:\n%s", i, w.headline, w.count, p.Text)
			}
			id := p.Header.Get("Message-Id")
			if ids[id] || !strings.HasPrefix(id, "<errmon.") || !strings.HasSuffix(id, "@example.com>") {
				t.Errorf("mail %d: Message-Id %q repeated or malformed", i, id)
			}
			ids[id] = true
			if i == 0 {
				if id != thread || p.Header.Get("In-Reply-To") != "" || p.Header.Get("References") != "" {
					t.Errorf("first mail: Message-Id %q (want %q), In-Reply-To %q, References %q",
						id, thread, p.Header.Get("In-Reply-To"), p.Header.Get("References"))
				}
			} else if p.Header.Get("In-Reply-To") != thread || p.Header.Get("References") != thread {
				t.Errorf("mail %d: In-Reply-To %q, References %q, want both %q", i, p.Header.Get("In-Reply-To"), p.Header.Get("References"), thread)
			}
			// The HTML part: for phones, titled, in English, with a button.
			for _, want := range []string{`<html lang="en">`, `<meta name="viewport" content="width=device-width,initial-scale=1">`,
				"<title>" + strings.SplitN(w.subject, " [POST]", 2)[0] + " [POST] /api/login", `<a href="` + link + `" style="display:inline-block`} {
				if !strings.Contains(p.HTML, want) {
					t.Errorf("mail %d: html part lacks %q:\n%s", i, want, p.HTML)
				}
			}
			// Frames: the application's shown, the libraries' counted.
			for name, body := range map[string]string{"text": p.Text, "html": p.HTML} {
				if !strings.Contains(body, "tests.ntLoginFailed") || !strings.Contains(body, "notify_test.go:") {
					t.Errorf("mail %d: %s part does not show the handler's frame:\n%s", i, name, body)
				}
				for _, lib := range []string{"gin-gonic/gin.(*Context).Next", "runtime/panic.go", "errmon.(*Monitor)"} {
					if strings.Contains(body, lib) {
						t.Errorf("mail %d: %s part shows the library frame %q", i, name, lib)
					}
				}
				if !regexp.MustCompile(`\+ \d+ library frames?`).MatchString(body) {
					t.Errorf("mail %d: %s part does not count the library frames:\n%s", i, name, body)
				}
				// The request table.
				for _, want := range []string{"Method", "POST", "Route", "/api/login", "Client IP", "Content-Type", "application/json",
					"/api/login?lang=en&password=" + ntMaskWith} {
					if name == "html" {
						want = strings.ReplaceAll(want, "&", "&amp;")
					}
					if !strings.Contains(body, want) {
						t.Errorf("mail %d: %s part lacks %q", i, name, want)
					}
				}
			}
			if !regexp.MustCompile(`(?m)^  Client IP:\s+\S+$`).MatchString(p.Text) {
				t.Errorf("mail %d: no request table in the text part:\n%s", i, p.Text)
			}
		}
	})
}

// TestNotifyDigest: a burst of new errors past DigestThreshold gives
// DigestThreshold mails and one digest listing the rest, each linked;
// regressions are never held back; the digest waits for its window's end
// or for Flush, and Close delivers one still waiting.
func TestNotifyDigest(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		srv := ntStartSMTP(t, nil)
		m, _ := ntMonitor(t, tdb.DB, &ntGomail{addr: srv.Addr()}, nil) // DigestThreshold 10, one minute
		const burst = 37
		for i := 0; i < burst; i++ {
			m.Record(nil, errors.New("burst "+ntLetters(i)))
		}
		m.flush(t) // the digest goes at Flush rather than at the end of the window
		var recs []errmon.ErrorRecord
		if err := tdb.DB.Find(&recs).Error; err != nil {
			t.Fatal(err)
		}
		if len(recs) != burst {
			t.Fatalf("%d errors stored, want %d", len(recs), burst)
		}
		all := map[string]bool{}
		for _, r := range recs {
			all[r.Hash] = true
		}
		mails := srv.received()
		if len(mails) != ntDigestThreshold+1 {
			t.Fatalf("%d mails for a burst of %d new errors, want %d and a digest", len(mails), burst, ntDigestThreshold)
		}
		seen := map[string]bool{}
		var digest ntParsed
		for _, mail := range mails {
			p := ntParse(t, mail.Raw)
			switch errmon.Reason(p.Header.Get("X-Errmon-Reason")) {
			case errmon.ReasonNew:
				h := p.Header.Get("X-Errmon-Hash")
				if seen[h] || !all[h] {
					t.Errorf("single alert for %s repeated or unknown", h)
				}
				seen[h] = true
			case errmon.ReasonDigest:
				digest = p
			default:
				t.Errorf("unexpected mail %q", p.Subject)
			}
		}
		want := fmt.Sprintf("[shop] [Digest] %d new errors", burst-ntDigestThreshold)
		if digest.Subject != want {
			t.Fatalf("digest subject %q, want %q", digest.Subject, want)
		}
		for _, body := range []string{digest.Text, digest.HTML} {
			for h := range all {
				link := "https://shop.example.com/dev/error/" + h
				if listed := strings.Contains(body, link); listed == seen[h] {
					t.Errorf("error %s: announced alone %v, listed in the digest %v; want exactly one", h, seen[h], listed)
				}
			}
			if !strings.Contains(body, "[New] *errors.errorString: burst") {
				t.Errorf("the digest does not name its errors:\n%s", body)
			}
		}
		if !strings.Contains(digest.HTML, `<meta name="viewport"`) || !strings.Contains(digest.HTML, `<a href="https://shop.example.com/dev/error/"`) {
			t.Errorf("digest html:\n%s", digest.HTML)
		}
		if s := m.Stats(); s.AlertsSent != burst || s.AlertsFailed != 0 {
			t.Errorf("stats %+v, want the %d alerts counted as sent", s, burst)
		}

		// Still in the same window: new errors are held back, a regression
		// is not.
		ntResolve(t, tdb.DB, recs[0].Hash)
		m.Record(nil, errors.New(recs[0].Message))
		m.Record(nil, errors.New("burst again"))
		m.flush(t)
		mails = srv.received()[len(mails):]
		reasons := map[errmon.Reason]string{}
		for _, mail := range mails {
			p := ntParse(t, mail.Raw)
			reasons[errmon.Reason(p.Header.Get("X-Errmon-Reason"))] = p.Subject
		}
		if len(mails) != 2 || reasons[errmon.ReasonRegression] == "" || reasons[errmon.ReasonDigest] != "[shop] [Digest] 1 new error" {
			t.Errorf("after the burst: %v, want one regression and a digest of the one new error", reasons)
		}
	})
}

// TestNotifyDigestWindow: without a Flush, the digest goes when its window
// ends; Close delivers one that is still waiting.
func TestNotifyDigestWindow(t *testing.T) {
	tdb := openSQLite(t)
	for _, tc := range []struct {
		name   string
		window time.Duration
	}{{"window ends", time.Second}, {"Close", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) {
			tdb.DB.Exec("DELETE FROM app_errors")
			n := &ntRecorder{}
			m, _ := ntMonitor(t, tdb.DB, n, func(c *errmon.Config) {
				c.DigestThreshold = 2
				c.DigestWindow = tc.window
				c.FlushInterval = 10 * time.Millisecond
			})
			for i := 0; i < 5; i++ {
				m.Record(nil, errors.New("window "+ntLetters(i)+" "+tc.name))
			}
			count := func() int { n.mu.Lock(); defer n.mu.Unlock(); return len(n.notes) }
			deadline := time.Now().Add(30 * time.Second)
			for count() < 2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if tc.name == "Close" {
				if err := m.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			}
			for count() < 3 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := n.reasons(); strings.Join(got, ",") != "new,new,digest" {
				t.Fatalf("alerts %v, want [new new digest]", got)
			}
			d := n.last()
			if d.DigestTotal != 3 || len(d.Digest) != 3 || d.Error == nil || d.Error.Hash != d.Digest[0].Hash || d.Subject != "[shop] [Digest] 3 new errors" {
				t.Errorf("digest %d listed of %d, error %v, subject %q", len(d.Digest), d.DigestTotal, d.Error, d.Subject)
			}
			for _, it := range d.Digest {
				if it.Link != "https://shop.example.com/dev/error/"+it.Hash || !strings.HasPrefix(it.Subject, "[New] ") || it.Count != 1 {
					t.Errorf("digest item %+v", it)
				}
			}
		})
	}
}
