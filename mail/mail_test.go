package mail_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/gin-gonic/gin"
	"go.uber.org/goleak"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
)

// received is one message as the test SMTP server got it.
type received struct {
	From string
	To   []string
	Data []byte
	TLS  bool
	User string
}

// smtpServer is a real in-process SMTP server (go-smtp) on 127.0.0.1 that
// keeps what it receives.
type smtpServer struct {
	Host string
	Port int
	mu   sync.Mutex
	msgs []received
	srv  *smtp.Server
	// options
	user, pass string          // require AUTH PLAIN with these
	rejectData *smtp.SMTPError // refuse every message at DATA
	stall      string          // "AUTH", "MAIL", "RCPT" or "DATA": stop answering there
	release    chan struct{}   // closed at cleanup: stalled sessions end
}

type serverOpt func(*smtpServer, *smtp.Server)

func withAuth(user, pass string) serverOpt {
	return func(s *smtpServer, _ *smtp.Server) { s.user, s.pass = user, pass }
}

func withStartTLS(cfg *tls.Config) serverOpt {
	return func(_ *smtpServer, srv *smtp.Server) { srv.TLSConfig = cfg }
}

func withReject(code int) serverOpt {
	return func(s *smtpServer, _ *smtp.Server) {
		s.rejectData = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused by test"}
	}
}

// withStall makes the server stop answering at stage ("AUTH", "MAIL",
// "RCPT" or "DATA", the last after reading the whole message), holding
// the connection open until the test ends.
func withStall(stage string) serverOpt {
	return func(s *smtpServer, _ *smtp.Server) { s.stall = stage }
}

// stallAt blocks while the test runs if the server stalls at stage.
func (s *smtpServer) stallAt(stage string) {
	if s.stall == stage {
		<-s.release
	}
}

func startSMTP(t *testing.T, implicitTLS *tls.Config, opts ...serverOpt) *smtpServer {
	t.Helper()
	s := &smtpServer{release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{s: s, tls: isTLS, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up on purpose
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	for _, o := range opts {
		o(s, srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if implicitTLS != nil {
		l = tls.NewListener(l, implicitTLS)
	}
	s.srv = srv
	s.Host = "127.0.0.1"
	s.Port = l.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { close(s.release); srv.Close(); <-done })
	return s
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

type session struct {
	s    *smtpServer
	conn *smtp.Conn
	tls  bool
	user string
	cur  received
}

func (x *session) AuthMechanisms() []string {
	if x.s.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(mech string) (sasl.Server, error) {
	x.s.stallAt("AUTH")
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.s.user || pass != x.s.pass {
			return smtp.ErrAuthFailed
		}
		x.user = user
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.s.stallAt("MAIL")
	if x.s.user != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.cur = received{From: from}
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.s.stallAt("RCPT")
	x.cur.To = append(x.cur.To, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.stallAt("DATA")
	if x.s.rejectData != nil {
		return x.s.rejectData
	}
	_, isTLS := x.conn.TLSConnectionState()
	x.cur.Data, x.cur.TLS, x.cur.User = b, isTLS || x.tls, x.user
	x.s.mu.Lock()
	x.s.msgs = append(x.s.msgs, x.cur)
	x.s.mu.Unlock()
	return nil
}

func (x *session) Reset()        { x.cur = received{} }
func (x *session) Logout() error { return nil }

// testCert makes a self-signed certificate for 127.0.0.1 and the client
// config that trusts it.
func testCert(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "errmon test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// parsed is a received message taken apart with net/mail and
// mime/multipart, bodies decoded.
type parsed struct {
	Header netmail.Header
	Parts  map[string]string // content type -> decoded body
	Raw    string
}

func parse(t *testing.T, raw []byte) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	p := parsed{Header: msg.Header, Parts: map[string]string{}, Raw: string(raw)}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	if !strings.HasPrefix(mt, "multipart/") {
		p.Parts[mt] = decode(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
		return p
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		p.Parts[pt] = decode(t, part.Header.Get("Content-Transfer-Encoding"), part)
	}
	return p
}

func decode(t *testing.T, enc string, r io.Reader) string {
	t.Helper()
	if strings.EqualFold(enc, "quoted-printable") {
		r = quotedprintable.NewReader(r)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode body: %v", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func (p parsed) subject(t *testing.T) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	return s
}

func sampleNote() *errmon.Notification {
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

func TestNotifierSendsMultipart(t *testing.T) {
	srv := startSMTP(t, nil)
	n := mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second})
	if err := n.Notify(context.Background(), sampleNote()); err != nil {
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
	p := parse(t, got.Data)
	want := sampleNote()
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
	serverTLS, clientTLS := testCert(t)
	tests := []struct {
		name     string
		implicit bool
		opts     []serverOpt
		cfg      mail.Config
		wantTLS  bool
		wantUser string
		wantErr  bool
	}{
		{name: "STARTTLS offered is used", opts: []serverOpt{withStartTLS(serverTLS)},
			cfg: mail.Config{TLSConfig: clientTLS}, wantTLS: true},
		{name: "STARTTLS then AUTH PLAIN", opts: []serverOpt{withStartTLS(serverTLS), withAuth("alerts", "s3cret")},
			cfg: mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, wantTLS: true, wantUser: "alerts"},
		{name: "implicit TLS (SSL)", implicit: true,
			cfg: mail.Config{SSL: true, TLSConfig: clientTLS}, wantTLS: true},
		{name: "SSL with AUTH", implicit: true, opts: []serverOpt{withAuth("alerts", "s3cret")},
			cfg: mail.Config{SSL: true, TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, wantTLS: true, wantUser: "alerts"},
		{name: "AUTH on localhost without TLS", opts: []serverOpt{withAuth("alerts", "s3cret")},
			cfg: mail.Config{Username: "alerts", Password: "s3cret"}, wantUser: "alerts"},
		{name: "wrong password", opts: []serverOpt{withStartTLS(serverTLS), withAuth("alerts", "s3cret")},
			cfg: mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "nope"}, wantErr: true},
		{name: "untrusted certificate", opts: []serverOpt{withStartTLS(serverTLS)},
			cfg: mail.Config{}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var implicit *tls.Config
			if tc.implicit {
				implicit = serverTLS
			}
			srv := startSMTP(t, implicit, tc.opts...)
			cfg := tc.cfg
			cfg.Host, cfg.Port, cfg.Timeout = srv.Host, srv.Port, 5*time.Second
			err := mail.New(cfg).Notify(context.Background(), sampleNote())
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
			if p := parse(t, msgs[0].Data); p.Parts["text/html"] == "" || p.Parts["text/plain"] == "" {
				t.Errorf("parts: %v", p.Parts)
			}
		})
	}
}

// hangingServer accepts connections and never says a word.
func hangingServer(t *testing.T) (host string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

// closedPort returns a port on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
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
		{name: "refused", start: func(t *testing.T) (string, int) { return "127.0.0.1", closedPort(t) }, timeout: 5 * time.Second},
		{name: "hangs: Timeout bounds it", start: hangingServer, timeout: 300 * time.Millisecond, wantCtxErr: context.DeadlineExceeded},
		{name: "hangs: caller's deadline bounds it", start: hangingServer, timeout: time.Minute, ctxTimeout: 300 * time.Millisecond,
			wantCtxErr: context.DeadlineExceeded},
		{name: "hangs: caller's cancel ends it", start: hangingServer, timeout: time.Minute, cancelAfter: 200 * time.Millisecond,
			wantCtxErr: context.Canceled},
		{name: "5xx at DATA is permanent", start: func(t *testing.T) (string, int) {
			s := startSMTP(t, nil, withReject(554))
			return s.Host, s.Port
		}, timeout: 5 * time.Second, wantPermanent: true},
		{name: "4xx at DATA is temporary", start: func(t *testing.T) (string, int) {
			s := startSMTP(t, nil, withReject(451))
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
			err := n.Notify(ctx, sampleNote())
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

// rawServer accepts connections on 127.0.0.1 and runs handle on each, with
// a reader of what the client sends; stop is closed when the test ends,
// and then every connection is closed.
func rawServer(t *testing.T, handle func(c net.Conn, r *bufio.Reader, stop <-chan struct{})) (host string, port int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c, bufio.NewReader(c), stop)
			}()
		}
	}()
	t.Cleanup(func() {
		close(stop)
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "127.0.0.1", l.Addr().(*net.TCPAddr).Port
}

// silent reads what the client sends and never answers.
func silent(r *bufio.Reader) { _, _ = io.Copy(io.Discard, r) }

// TestNotifierHangsAtEveryStage: a server that stops answering at any step
// of the conversation, or that answers one byte at a time forever, holds
// a send no longer than Config.Timeout or the caller's context, and leaves
// no goroutine behind.
func TestNotifierHangsAtEveryStage(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	serverTLS, clientTLS := testCert(t)
	smtpAt := func(opts ...serverOpt) func(t *testing.T) (string, int) {
		return func(t *testing.T) (string, int) {
			s := startSMTP(t, nil, opts...)
			return s.Host, s.Port
		}
	}
	stages := []struct {
		name  string
		start func(t *testing.T) (string, int)
		cfg   mail.Config // Host, Port and Timeout are set by the test
		step  string      // the step the error names
	}{
		{"accepts and never greets", hangingServer, mail.Config{}, "greeting"},
		{"greets and never answers EHLO", func(t *testing.T) (string, int) {
			return rawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
				io.WriteString(c, "220 localhost ESMTP\r\n")
				silent(r)
			})
		}, mail.Config{}, "EHLO"},
		{"greets one line a time, forever", func(t *testing.T) (string, int) {
			return rawServer(t, func(c net.Conn, _ *bufio.Reader, stop <-chan struct{}) {
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
			return rawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
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
						silent(r)
						return
					}
				}
			})
		}, mail.Config{TLSConfig: clientTLS}, "STARTTLS"},
		{"implicit TLS, never shakes hands", hangingServer, mail.Config{SSL: true, TLSConfig: clientTLS}, "tls handshake"},
		{"stalls at AUTH", smtpAt(withStartTLS(serverTLS), withAuth("alerts", "s3cret"), withStall("AUTH")),
			mail.Config{TLSConfig: clientTLS, Username: "alerts", Password: "s3cret"}, "AUTH"},
		{"stalls at MAIL FROM", smtpAt(withStall("MAIL")), mail.Config{}, "MAIL FROM"},
		{"stalls at RCPT TO", smtpAt(withStall("RCPT")), mail.Config{}, "RCPT TO"},
		{"stalls at the end of DATA", smtpAt(withStall("DATA")), mail.Config{}, "end of DATA"},
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
				go func() { done <- n.Notify(ctx, sampleNote()) }()
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
		host, port := rawServer(t, func(c net.Conn, r *bufio.Reader, _ <-chan struct{}) {
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
					silent(r)
					return
				default:
					io.WriteString(c, "502 not here\r\n")
				}
			}
		})
		n := mail.New(mail.Config{Host: host, Port: port, Timeout: time.Hour})
		done := make(chan error, 1)
		go func() { done <- n.Notify(context.Background(), sampleNote()) }()
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

func TestNotifierRejectsIncompleteNotification(t *testing.T) {
	n := mail.New(mail.Config{Host: "127.0.0.1", Port: closedPort(t)})
	for _, note := range []*errmon.Notification{nil, {To: []string{"a@example.com"}}, {From: "a@example.com"}} {
		if err := n.Notify(context.Background(), note); !errors.Is(err, errmon.ErrPermanent) {
			t.Errorf("Notify(%+v) = %v, want ErrPermanent", note, err)
		}
	}
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		cfg  mail.Config
		addr string
	}{
		{mail.Config{Host: "smtp.example.com"}, "smtp.example.com:587"},
		{mail.Config{Host: "smtp.example.com", SSL: true}, "smtp.example.com:465"},
		{mail.Config{Host: "smtp.example.com", Port: 25}, "smtp.example.com:25"},
		{mail.Config{Host: "::1", Port: 2525}, "[::1]:2525"},
	}
	for _, tc := range tests {
		if got := mail.AddrOf(mail.New(tc.cfg)); got != tc.addr {
			t.Errorf("New(%+v) dials = %q, want %q", tc.cfg, got, tc.addr)
		}
	}
}

// End to end: a gin service with an errmon monitor that mails through a
// mail.Notifier to the test server.

type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

const (
	secretQuery  = "q-pw-51aa"
	secretBody   = "b-pw-62bb"
	secretBearer = "bearer-73cc"
)

func monitorWithMail(t *testing.T, n errmon.Notifier, notifyTimeout time.Duration, tweaks ...func(*errmon.Config)) (*errmon.Monitor, *gin.Engine, *gorm.DB, *syncLog) {
	t.Helper()
	db, err := gorm.Open(sqlite.Open(filepath.Join(t.TempDir(), "errors.db")+"?_busy_timeout=10000"),
		&gorm.Config{Logger: logger.Default.LogMode(logger.Silent)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	logs := &syncLog{}
	cfg := errmon.DefaultConfig()
	cfg.DB = db
	cfg.Output = io.Discard
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.SendNotification = true
	cfg.Notifier = n
	cfg.RecipientEmail = []string{"team@example.com"}
	cfg.EmailSender = "errmon@example.com"
	cfg.SubjectPrefix = "billing"
	cfg.BaseURL = "https://billing.example.com"
	cfg.FlushInterval = time.Hour
	cfg.NotifyTimeout = notifyTimeout
	for _, tw := range tweaks {
		tw(&cfg)
	}
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	gin.SetMode(gin.TestMode)
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

func charge(t *testing.T, r http.Handler, times int) {
	t.Helper()
	for i := 0; i < times; i++ {
		req := httptest.NewRequest(http.MethodPost, "/charge?currency=eur&password="+secretQuery,
			strings.NewReader(`{"amount":12,"card":{"password":"`+secretBody+`"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secretBearer)
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

func flushWithin(m *errmon.Monitor, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return m.Flush(ctx)
}

func TestMonitorMailsOneAlert(t *testing.T) {
	srv := startSMTP(t, nil)
	m, r, db, logs := monitorWithMail(t, mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second}), 5*time.Second)
	charge(t, r, 50)
	if err := flushWithin(m, 30*time.Second); err != nil {
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
	p := parse(t, msgs[0].Data)
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
	for _, secret := range []string{secretQuery, secretBody, secretBearer} {
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
		{"refused", func(t *testing.T) (string, int) { return "127.0.0.1", closedPort(t) }},
		{"hangs", hangingServer},
		{"5xx", func(t *testing.T) (string, int) { s := startSMTP(t, nil, withReject(550)); return s.Host, s.Port }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host, port := tc.start(t)
			m, r, db, logs := monitorWithMail(t, mail.New(mail.Config{Host: host, Port: port, Timeout: time.Hour}), 200*time.Millisecond)
			charge(t, r, 5)
			// A short deadline: Flush returns with it while the alert is
			// still being tried (the 5xx is not retried and may be done).
			err := flushWithin(m, 100*time.Millisecond)
			if tc.name != "5xx" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Flush(100ms) = %v, want DeadlineExceeded", err)
			}
			if err := flushWithin(m, time.Minute); err != nil {
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
			charge(t, r, 1) // still serving
		})
	}
}

// TestNotifierThreadingHeaders: Message-Id is the notification's;
// In-Reply-To and References carry its ThreadID when it differs; ids that
// are not plain message ids are not sent as they are.
func TestNotifierThreadingHeaders(t *testing.T) {
	n := mail.New(mail.Config{Host: "smtp.example.com"})
	cases := []struct {
		id, thread        string
		wantID, wantReply string
	}{
		{"<errmon.abc@example.com>", "<errmon.abc@example.com>", "<errmon.abc@example.com>", ""},
		{"<errmon.abc.1f@example.com>", "<errmon.abc@example.com>", "<errmon.abc.1f@example.com>", "<errmon.abc@example.com>"},
		{"", "", "", ""},
		{"<bad id@example.com>\r\nBcc: x@example.com", "<x\r\n@y>", "", ""},
	}
	for i, tc := range cases {
		note := sampleNote()
		note.MessageID, note.ThreadID = tc.id, tc.thread
		msg := mail.MessageOf(n, note)
		id := msg.GetHeader("Message-Id")
		if len(id) != 1 || (tc.wantID != "" && id[0] != tc.wantID) || !strings.HasPrefix(id[0], "<errmon.") || strings.ContainsAny(id[0], " \r\n") {
			t.Errorf("case %d: Message-Id %q, want %q", i, id, tc.wantID)
		}
		for _, h := range []string{"In-Reply-To", "References"} {
			got := strings.Join(msg.GetHeader(h), ",")
			if got != tc.wantReply {
				t.Errorf("case %d: %s %q, want %q", i, h, got, tc.wantReply)
			}
		}
	}
}

// TestMonitorThreadsMails: a monitor mailing through mail.Notifier: the
// new error's mail and its regression's have subjects that say why, one
// thread (References and In-Reply-To of the second are the first's
// Message-Id), ids of their own, and an HTML part made for phones.
func TestMonitorThreadsMails(t *testing.T) {
	srv := startSMTP(t, nil)
	m, r, db, _ := monitorWithMail(t, mail.New(mail.Config{Host: srv.Host, Port: srv.Port, Timeout: 5 * time.Second}), 5*time.Second,
		func(c *errmon.Config) { c.NotifyThresholds = []int64{3} })
	charge(t, r, 2)
	if err := flushWithin(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	charge(t, r, 2) // 4: passed 3
	if err := flushWithin(m, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var rec errmon.ErrorRecord
	if err := db.Take(&rec).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Model(&rec).Update("resolved", true).Error; err != nil {
		t.Fatal(err)
	}
	charge(t, r, 1)
	if err := flushWithin(m, 30*time.Second); err != nil {
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
		p := parse(t, msg.Data)
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

// TestNotifierDigestHeaders: a digest names no single error in its
// headers and starts no thread.
func TestNotifierDigestHeaders(t *testing.T) {
	note := sampleNote()
	note.Reason = errmon.ReasonDigest
	note.Subject = "[shop] [Digest] 37 new errors"
	note.MessageID = "<errmon.digest.0a1b@example.com>"
	msg := mail.MessageOf(mail.New(mail.Config{Host: "smtp.example.com"}), note)
	if h := msg.GetHeader("X-Errmon-Hash"); len(h) != 0 {
		t.Errorf("X-Errmon-Hash %q on a digest", h)
	}
	if r := msg.GetHeader("X-Errmon-Reason"); len(r) != 1 || r[0] != "digest" {
		t.Errorf("X-Errmon-Reason %q", r)
	}
	if id := msg.GetHeader("Message-Id"); len(id) != 1 || id[0] != note.MessageID || len(msg.GetHeader("References")) != 0 {
		t.Errorf("Message-Id %q, References %q", id, msg.GetHeader("References"))
	}
}
