package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
	"gorm.io/gorm"
)

// Tests of mail.Notifier's SMTP conversations against the server of
// smtp_test.go (with smtp_extra_test.go's TLS, AUTH, refusals and stalls)
// and against servers that hang at each step, with no goroutine left
// behind; and end to end, a gin service whose monitor mails through a
// mail.Notifier. The message a Notifier builds and the address it dials
// are tested white-box in mail/ (mail_test.go there).

// mlSampleNote is an alert as errmon hands it to a Notifier.
func mlSampleNote() *errmon.Notification {
	return &errmon.Notification{
		From:    "errmon@example.com",
		To:      []string{"team@example.com", "oncall@example.com"},
		Subject: "[shop] [GET] /items/7 runtime.boundsError: index out of range [7] with length 3",
		Text:    "A new error: runtime.boundsError\nDetails: https://shop.example.com/dev/error/abc\n",
		HTML:    "<p><b>runtime.boundsError</b> <a href=\"https://shop.example.com/dev/error/abc\">open</a></p>",
		Error:   &errmon.ErrorRecord{Hash: "abc123"},
		Reason:  errmon.ReasonNew,
	}
}

// mlHanging is ntHangingServer's host and port.
func mlHanging(t *testing.T) (string, int) { return ntHostPort(t, ntHangingServer(t)) }

// mlClosed is a host and port where nothing listens.
func mlClosed(t *testing.T) (string, int) { return ntHostPort(t, ntClosedAddr(t)) }

func TestNotifierSendsMultipart(t *testing.T) {
	srv := ntStartSMTPWith(t, nil)
	n := mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second})
	if err := n.Notify(context.Background(), mlSampleNote()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	got := msgs[0]
	if got.From != "errmon@example.com" {
		t.Errorf("MAIL FROM = %q", got.From)
	}
	if strings.Join(got.To, ",") != "team@example.com,oncall@example.com" {
		t.Errorf("RCPT TO = %v", got.To)
	}
	p := ntReadMessage(t, got.Raw)
	want := mlSampleNote()
	if s := p.subject(t); s != want.Subject {
		t.Errorf("Subject = %q, want %q", s, want.Subject)
	}
	if f := p.Header.Get("From"); f != "errmon@example.com" {
		t.Errorf("From = %q", f)
	}
	if to, err := p.Header.AddressList("To"); err != nil || len(to) != 2 {
		t.Errorf("To = %v (%v)", to, err)
	}
	for _, h := range []string{"Date", "Message-Id"} {
		if p.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	if h := p.Header.Get("Auto-Submitted"); h != "auto-generated" {
		t.Errorf("Auto-Submitted = %q", h)
	}
	if h := p.Header.Get("X-Errmon-Hash"); h != "abc123" {
		t.Errorf("X-Errmon-Hash = %q", h)
	}
	if mt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); mt != "multipart/alternative" {
		t.Errorf("Content-Type = %q, want multipart/alternative", mt)
	}
	if p.Parts["text/plain"] != want.Text {
		t.Errorf("text part = %q, want %q", p.Parts["text/plain"], want.Text)
	}
	if p.Parts["text/html"] != want.HTML {
		t.Errorf("html part = %q, want %q", p.Parts["text/html"], want.HTML)
	}
	if got.TLS || got.User != "" {
		t.Errorf("plain server: TLS=%v user=%q", got.TLS, got.User)
	}
}

func TestNotifierTLSAndAuth(t *testing.T) {
	serverTLS, clientTLS := ntTestCert(t)
	tests := []struct {
		name     string
		implicit bool
		opts     []ntSMTPOpt
		cfg      mail.Config
		wantTLS  bool
		wantUser string
		wantErr  bool
	}{
		{name: "STARTTLS offered is used", opts: []ntSMTPOpt{ntWithStartTLS(serverTLS)},
			cfg: mail.Config{TLSConfig: clientTLS}, wantTLS: true},
		{name: "STARTTLS then AUTH PLAIN", opts: []ntSMTPOpt{ntWithStartTLS(serverTLS), ntWithAuth("alerts", "s3cret")},
			cfg: mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, wantTLS: true, wantUser: "alerts"},
		{name: "implicit TLS (SSL)", implicit: true,
			cfg: mail.Config{SSL: true, TLSConfig: clientTLS}, wantTLS: true},
		{name: "SSL with AUTH", implicit: true, opts: []ntSMTPOpt{ntWithAuth("alerts", "s3cret")},
			cfg: mail.Config{SSL: true, TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, wantTLS: true, wantUser: "alerts"},
		{name: "AUTH on localhost without TLS", opts: []ntSMTPOpt{ntWithAuth("alerts", "s3cret")},
			cfg: mail.Config{Username: "alerts", Password: "s3cret"}, wantUser: "alerts"},
		{name: "wrong password", opts: []ntSMTPOpt{ntWithStartTLS(serverTLS), ntWithAuth("alerts", "s3cret")},
			cfg: mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "nope"}, wantErr: true},
		{name: "untrusted certificate", opts: []ntSMTPOpt{ntWithStartTLS(serverTLS)},
			cfg: mail.Config{}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var implicit *tls.Config
			if tc.implicit {
				implicit = serverTLS
			}
			srv := ntStartSMTPWith(t, implicit, tc.opts...)
			cfg := tc.cfg
			cfg.Host, cfg.Port, cfg.Timeout = srv.Host, srv.Port, 5*time.Second
			err := mail.New(cfg).Notify(context.Background(), mlSampleNote())
			if tc.wantErr {
				if err == nil {
					t.Fatal("Notify succeeded, want an error")
				}
				if n := len(srv.messages()); n != 0 {
					t.Fatalf("%d messages delivered despite the error", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("Notify: %v", err)
			}
			msgs := srv.messages()
			if len(msgs) != 1 {
				t.Fatalf("got %d messages, want 1", len(msgs))
			}
			if msgs[0].TLS != tc.wantTLS || msgs[0].User != tc.wantUser {
				t.Errorf("TLS=%v user=%q, want TLS=%v user=%q", msgs[0].TLS, msgs[0].User, tc.wantTLS, tc.wantUser)
			}
			if p := ntReadMessage(t, msgs[0].Raw); p.Parts["text/html"] == "" || p.Parts["text/plain"] == "" {
				t.Errorf("parts: %v", p.Parts)
			}
		})
	}
}

func TestNotifierFaults(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	tests := []struct {
		name          string
		start         func(t *testing.T) (string, int)
		timeout       time.Duration
		cancelAfter   time.Duration // cancel the caller's context
		ctxTimeout    time.Duration // caller's deadline
		wantPermanent bool
		wantCtxErr    error
	}{
		{name: "refused", start: mlClosed, timeout: 5 * time.Second},
		{name: "hangs: Timeout bounds it", start: mlHanging, timeout: 300 * time.Millisecond, wantCtxErr: context.DeadlineExceeded},
		{name: "hangs: caller's deadline bounds it", start: mlHanging, timeout: time.Minute, ctxTimeout: 300 * time.Millisecond,
			wantCtxErr: context.DeadlineExceeded},
		{name: "hangs: caller's cancel ends it", start: mlHanging, timeout: time.Minute, cancelAfter: 200 * time.Millisecond,
			wantCtxErr: context.Canceled},
		{name: "5xx at DATA is permanent", start: func(t *testing.T) (string, int) {
			s := ntStartSMTPWith(t, nil, ntWithReject(554))
			return s.Host, s.Port
		}, timeout: 5 * time.Second, wantPermanent: true},
		{name: "4xx at DATA is temporary", start: func(t *testing.T) (string, int) {
			s := ntStartSMTPWith(t, nil, ntWithReject(451))
			return s.Host, s.Port
		}, timeout: 5 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host, port := tc.start(t)
			n := mail.New(mail.Config{Host: host, Port: port, Timeout: tc.timeout})
			ctx := context.Background()
			var cancel context.CancelFunc = func() {}
			if tc.ctxTimeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, tc.ctxTimeout)
			} else if tc.cancelAfter > 0 {
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			defer cancel()
			err := n.Notify(ctx, mlSampleNote())
			if err == nil {
				t.Fatal("Notify succeeded against a faulty server")
			}
			if !strings.Contains(err.Error(), "abc123") || !strings.Contains(err.Error(), strconv.Itoa(port)) {
				t.Errorf("error %q should name the hash and the server", err)
			}
			if got := errors.Is(err, errmon.ErrPermanent); got != tc.wantPermanent {
				t.Errorf("errors.Is(err, ErrPermanent) = %v, want %v (err: %v)", got, tc.wantPermanent, err)
			}
			if tc.wantCtxErr != nil && !errors.Is(err, tc.wantCtxErr) {
				t.Errorf("err = %v, want it to wrap %v", err, tc.wantCtxErr)
			}
		})
	}
}

// TestNotifierHangsAtEveryStage: a server that stops answering at any step
// of the conversation, or that answers one byte at a time forever, holds
// a send no longer than Config.Timeout or the caller's context, and leaves
// no goroutine behind.
func TestNotifierHangsAtEveryStage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	serverTLS, clientTLS := ntTestCert(t)
	smtpAt := func(opts ...ntSMTPOpt) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) {
			s := ntStartSMTPWith(t, nil, opts...)
			return s.Host, s.Port
		}
	}
	stages := []struct {
		name  string
		start func(t *testing.T) (string, int)
		cfg   mail.Config // Host, Port and Timeout are set by the test
		step  string      // the step the error names
	}{
		{"accepts and never greets", mlHanging, mail.Config{}, "greeting"},
		{"greets and never answers EHLO", func(t *testing.T) (string, int) {
			return ntRawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
				io.WriteString(c, "220 localhost ESMTP\r\n")
				ntSilent(r)
			})
		}, mail.Config{}, "EHLO"},
		{"greets one line a time, forever", func(t *testing.T) (string, int) {
			return ntRawServer(t, func(c net.Conn, _ *bufio.Reader, stop <-chan struct{}) {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					if _, err := io.WriteString(c, "220-still here\r\n"); err != nil {
						return
					}
					select {
					case <-tick.C:
					case <-stop:
						return
					}
				}
			})
		}, mail.Config{}, "greeting"},
		{"offers STARTTLS and never shakes hands", func(t *testing.T) (string, int) {
			return ntRawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
				io.WriteString(c, "220 localhost ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(c, "250-localhost\r\n250 STARTTLS\r\n")
					case cmd == "STARTTLS":
						io.WriteString(c, "220 go ahead\r\n")
						ntSilent(r)
						return
					}
				}
			})
		}, mail.Config{TLSConfig: clientTLS}, "STARTTLS"},
		{"implicit TLS, never shakes hands", mlHanging, mail.Config{SSL: true, TLSConfig: clientTLS}, "tls handshake"},
		{"stalls at AUTH", smtpAt(ntWithStartTLS(serverTLS), ntWithAuth("alerts", "s3cret"), ntWithStall("AUTH")),
			mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, "AUTH"},
		{"stalls at MAIL FROM", smtpAt(ntWithStall("MAIL")), mail.Config{}, "MAIL FROM"},
		{"stalls at RCPT TO", smtpAt(ntWithStall("RCPT")), mail.Config{}, "RCPT TO"},
		{"stalls at the end of DATA", smtpAt(ntWithStall("DATA")), mail.Config{}, "end of DATA"},
	}
	bounds := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		want    error
	}{
		{"Timeout", 300 * time.Millisecond, func() (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}, context.DeadlineExceeded},
		{"caller's deadline", time.Hour, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}, context.DeadlineExceeded},
		{"caller's cancel", time.Hour, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
	}
	for _, st := range stages {
		for _, b := range bounds {
			t.Run(st.name+"/"+b.name, func(t *testing.T) {
				cfg := st.cfg
				cfg.Host, cfg.Port = st.start(t)
				cfg.Timeout = b.timeout
				n := mail.New(cfg)
				ctx, cancel := b.ctx()
				defer cancel()
				done := make(chan error, 1)
				go func() { done <- n.Notify(ctx, mlSampleNote()) }()
				var err error
				select {
				case err = <-done:
				case <-time.After(time.Minute): // a hang, not a latency check
					t.Fatal("Notify hung")
				}
				if !errors.Is(err, b.want) {
					t.Errorf("Notify = %v, want it to wrap %v", err, b.want)
				}
				if errors.Is(err, errmon.ErrPermanent) {
					t.Errorf("a timeout is not permanent: %v", err)
				}
				if err != nil && !strings.Contains(err.Error(), "("+st.step) {
					t.Errorf("Notify = %v, want it to name the step %q", err, st.step)
				}
			})
		}
	}
}

// TestNotifierQuitStalls: a server that accepted the message and then does
// not answer QUIT is not waited for until Config.Timeout: the alert is
// delivered.
func TestNotifierQuitStalls(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("scripted server", func(t *testing.T) {
		// go-smtp answers QUIT before its session hears of it: this
		// server is scripted.
		var mu sync.Mutex
		accepted := 0
		host, port := ntRawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
			io.WriteString(c, "220 localhost ESMTP\r\n")
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
				case strings.HasPrefix(cmd, "EHLO"):
					io.WriteString(c, "250-localhost\r\n250 8BITMIME\r\n")
				case strings.HasPrefix(cmd, "MAIL FROM:"), strings.HasPrefix(cmd, "RCPT TO:"):
					io.WriteString(c, "250 OK\r\n")
				case cmd == "DATA":
					io.WriteString(c, "354 go ahead\r\n")
					for {
						l, err := r.ReadString('\n')
						if err != nil {
							return
						}
						if l == ".\r\n" {
							break
						}
					}
					mu.Lock()
					accepted++
					mu.Unlock()
					io.WriteString(c, "250 queued\r\n")
				case cmd == "QUIT":
					ntSilent(r)
					return
				default:
					io.WriteString(c, "502 not here\r\n")
				}
			}
		})
		n := mail.New(mail.Config{Host: host, Port: port, Timeout: time.Hour})
		done := make(chan error, 1)
		go func() { done <- n.Notify(context.Background(), mlSampleNote()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Notify = %v, want nil: the message was accepted", err)
			}
		case <-time.After(time.Minute): // a hang, not a latency check
			t.Fatal("Notify waited for QUIT")
		}
		mu.Lock()
		defer mu.Unlock()
		if accepted != 1 {
			t.Errorf("%d messages accepted, want 1", accepted)
		}
	})
}

// End to end: a gin service with an errmon monitor that mails through a
// mail.Notifier to the test server.

// Secrets sent with every request of mlCharge; none may reach a mail.
const (
	mlSecretQuery  = "q-pw-51aa"
	mlSecretBody   = "b-pw-62bb"
	mlSecretBearer = "bearer-73cc"
)

// mlMonitor is a monitor on a fresh SQLite file that mails its alerts
// through n, and a gin engine with its recovery, a POST /charge that
// panics and a GET /ok.
func mlMonitor(t *testing.T, n errmon.Notifier, notifyTimeout time.Duration, tweaks ...func(*errmon.Config)) (*errmon.Monitor, *gin.Engine, *gorm.DB, *syncBuffer) {
	t.Helper()
	tm := newTestMonitor(t, openSQLite(t).DB, func(cfg *errmon.Config) {
		cfg.SendNotification = true
		cfg.Notifier = n
		cfg.RecipientEmail = []string{"team@example.com"}
		cfg.EmailSender = "errmon@example.com"
		cfg.SubjectPrefix = "billing"
		cfg.BaseURL = "https://billing.example.com"
		cfg.NotifyTimeout = notifyTimeout
		for _, tw := range tweaks {
			tw(cfg)
		}
	})
	m, db, logs := tm.Monitor, tm.db, tm.logs
	withGinMode(t, gin.TestMode)
	r := gin.New()
	m.InitApp(r)
	r.POST("/charge", func(c *gin.Context) {
		var body map[string]any
		_ = c.ShouldBindJSON(&body)
		panic("card declined")
	})
	r.GET("/ok", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	return m, r, db, logs
}

func mlCharge(t *testing.T, r http.Handler, times int) {
	t.Helper()
	for i := 0; i < times; i++ {
		req := httptest.NewRequest(http.MethodPost, "/charge?currency=eur&password="+mlSecretQuery,
			strings.NewReader(`{"amount":12,"card":{"password":"`+mlSecretBody+`"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+mlSecretBearer)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("POST /charge: %d, want 500", w.Code)
		}
		w = httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/ok", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("GET /ok: %d", w.Code)
		}
	}
}

func mlFlushWithin(m *errmon.Monitor, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.Flush(ctx)
}

func TestMonitorMailsOneAlert(t *testing.T) {
	srv := ntStartSMTPWith(t, nil)
	m, r, db, logs := mlMonitor(t, mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second}), 5*time.Second)
	mlCharge(t, r, 50)
	if err := mlFlushWithin(m, 30*time.Second); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d mails for one new error hit 50 times, want 1", len(msgs))
	}
	var rec errmon.ErrorRecord
	if err := db.Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	p := ntReadMessage(t, msgs[0].Raw)
	if want := "[billing] [New] [POST] /charge " + rec.ExceptionName + ": card declined"; p.subject(t) != want {
		t.Errorf("Subject %q, want %q", p.subject(t), want)
	}
	if p.Header.Get("X-Errmon-Hash") != rec.Hash || errmon.Reason(p.Header.Get("X-Errmon-Reason")) != errmon.ReasonNew {
		t.Errorf("X-Errmon headers: %q %q", p.Header.Get("X-Errmon-Hash"), p.Header.Get("X-Errmon-Reason"))
	}
	link := "https://billing.example.com/dev/error/" + rec.Hash
	for _, ct := range []string{"text/plain", "text/html"} {
		body := p.Parts[ct]
		for _, want := range []string{link, "card declined", "First seen", errmon.DefaultConfig().MaskWith} {
			if !strings.Contains(body, want) {
				t.Errorf("%s part lacks %q:\n%s", ct, want, body)
			}
		}
	}
	for _, secret := range []string{mlSecretQuery, mlSecretBody, mlSecretBearer} {
		if strings.Contains(p.Raw, secret) || strings.Contains(p.Parts["text/plain"], secret) ||
			strings.Contains(p.Parts["text/html"], secret) || strings.Contains(logs.String(), secret) {
			t.Errorf("secret %q reached the mail or the log", secret)
		}
	}
}

func TestMonitorWithFaultySMTP(t *testing.T) {
	cases := []struct {
		name  string
		start func(t *testing.T) (string, int)
	}{
		{"refused", mlClosed},
		{"hangs", mlHanging},
		{"5xx", func(t *testing.T) (string, int) {
			s := ntStartSMTPWith(t, nil, ntWithReject(550))
			return s.Host, s.Port
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host, port := tc.start(t)
			m, r, db, logs := mlMonitor(t, mail.New(mail.Config{Host: host, Port: port, Timeout: time.Hour}), 200*time.Millisecond)
			mlCharge(t, r, 5)
			// A short deadline: Flush returns with it while the alert is
			// still being tried (the 5xx is not retried and may be done).
			err := mlFlushWithin(m, 100*time.Millisecond)
			if tc.name != "5xx" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Flush(100ms) = %v, want DeadlineExceeded", err)
			}
			if err := mlFlushWithin(m, time.Minute); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			var rec errmon.ErrorRecord
			if err := db.Take(&rec).Error; err != nil {
				t.Fatal(err)
			}
			if rec.Count != 5 {
				t.Errorf("count %d, want 5", rec.Count)
			}
			if s := m.Stats(); s.AlertsFailed != 1 {
				t.Errorf("stats %+v, want one failed alert", s)
			}
			out := logs.String()
			if !strings.Contains(out, "could not deliver alert") || !strings.Contains(out, "hash="+rec.Hash) {
				t.Errorf("failure not logged with the hash %s:\n%s", rec.Hash, out)
			}
			if tc.name == "5xx" && !strings.Contains(out, "attempts=1") {
				t.Errorf("a 5xx refusal should not be retried:\n%s", out)
			}
			mlCharge(t, r, 1) // still serving
		})
	}
}

// TestMonitorThreadsMails: a monitor mailing through mail.Notifier: the
// new error's mail and its regression's have subjects that say why, one
// thread (References and In-Reply-To of the second are the first's
// Message-Id), ids of their own, and an HTML part made for phones.
func TestMonitorThreadsMails(t *testing.T) {
	srv := ntStartSMTPWith(t, nil)
	m, r, db, _ := mlMonitor(t, mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second}), 5*time.Second,
		func(c *errmon.Config) { c.NotifyThresholds = []int64{3} })
	mlCharge(t, r, 2)
	if err := mlFlushWithin(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	mlCharge(t, r, 2) // 4: passed 3
	if err := mlFlushWithin(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var rec errmon.ErrorRecord
	if err := db.Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Model(&rec).Update("resolved", true).Error; err != nil {
		t.Fatal(err)
	}
	mlCharge(t, r, 1)
	if err := mlFlushWithin(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	msgs := srv.messages()
	if len(msgs) != 3 {
		t.Fatalf("%d mails, want 3", len(msgs))
	}
	rest := "[POST] /charge " + rec.ExceptionName + ": card declined"
	subjects := []string{"[billing] [New] " + rest, "[billing] [Escalating: 3 occurrences] " + rest, "[billing] [Regression] " + rest}
	first := ""
	ids := map[string]bool{}
	for i, msg := range msgs {
		p := ntReadMessage(t, msg.Raw)
		if s := p.subject(t); s != subjects[i] {
			t.Errorf("mail %d: subject %q, want %q", i, s, subjects[i])
		}
		id := p.Header.Get("Message-Id")
		if ids[id] {
			t.Errorf("mail %d: Message-Id %q repeated", i, id)
		}
		ids[id] = true
		if i == 0 {
			first = id
			if id != "<errmon."+rec.Hash+"@example.com>" || p.Header.Get("References") != "" {
				t.Errorf("first mail: Message-Id %q, References %q", id, p.Header.Get("References"))
			}
		} else if p.Header.Get("References") != first || p.Header.Get("In-Reply-To") != first {
			t.Errorf("mail %d: References %q, In-Reply-To %q, want %q", i, p.Header.Get("References"), p.Header.Get("In-Reply-To"), first)
		}
		html := p.Parts["text/html"]
		for _, want := range []string{`<html lang="en">`, `name="viewport" content="width=device-width,initial-scale=1"`, "<title>[billing] ", "library frame"} {
			if !strings.Contains(html, want) {
				t.Errorf("mail %d: html lacks %q", i, want)
			}
		}
		if i == 1 && !strings.Contains(p.Parts["text/plain"], "passed 3 occurrences; 4 now") {
			t.Errorf("threshold mail:\n%s", p.Parts["text/plain"])
		}
	}
}
