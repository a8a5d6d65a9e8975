package tests

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// What the mail package's tests need of smtp_test.go's server besides
// receiving mail: TLS (implicit or STARTTLS), AUTH PLAIN, refusals with a
// given code, and stalls at each step of the conversation. ntSMTPX is that
// server: the same ntSMTP keeps the messages and the same ntSession takes
// MAIL, RCPT and DATA; ntSessionX adds the rest around it. Also here: the
// servers that are not SMTP servers (one that never answers, scripted
// ones), the test certificate and the MIME parser.

// ntSMTPX is ntSMTP with TLS, AUTH and stalls.
type ntSMTPX struct {
	*ntSMTP
	mu         sync.Mutex   // held while a message is stored: meta stays in step with received()
	meta       []ntConnMeta // of each received message, in order
	user, pass string       // require AUTH PLAIN with these
	stall      string       // "AUTH", "MAIL", "RCPT" or "DATA": stop answering there
	release    chan struct{}
}

// ntConnMeta is how a message came: over TLS, and as which user.
type ntConnMeta struct {
	TLS  bool
	User string
}

// ntReceived is a message as ntSMTPX got it.
type ntReceived struct {
	ntMail
	ntConnMeta
}

// ntSMTPOpt configures a server of ntStartSMTPWith.
type ntSMTPOpt func(*ntSMTPX, *smtp.Server)

// ntWithAuth requires AUTH PLAIN as user with pass before MAIL.
func ntWithAuth(user, pass string) ntSMTPOpt {
	return func(s *ntSMTPX, _ *smtp.Server) { s.user, s.pass = user, pass }
}

// ntWithStartTLS offers STARTTLS with cfg.
func ntWithStartTLS(cfg *tls.Config) ntSMTPOpt {
	return func(_ *ntSMTPX, srv *smtp.Server) { srv.TLSConfig = cfg }
}

// ntWithReject refuses every message at the end of DATA with code.
func ntWithReject(code int) ntSMTPOpt {
	return func(s *ntSMTPX, _ *smtp.Server) {
		s.reject = &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 0, 0}, Message: "refused by test"}
	}
}

// ntWithStall makes the server stop answering at stage ("AUTH", "MAIL",
// "RCPT" or "DATA", the last after reading the whole message), holding the
// connection open until the test ends.
func ntWithStall(stage string) ntSMTPOpt {
	return func(s *ntSMTPX, _ *smtp.Server) { s.stall = stage }
}

// ntStartSMTPWith starts an ntSMTPX on 127.0.0.1, behind implicit TLS when
// implicitTLS is not nil.
func ntStartSMTPWith(t testing.TB, implicitTLS *tls.Config, opts ...ntSMTPOpt) *ntSMTPX {
	t.Helper()
	s := &ntSMTPX{ntSMTP: &ntSMTP{}, release: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &ntSessionX{ntSession: &ntSession{s: s.ntSMTP}, x: s, conn: c, tls: isTLS}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0) // clients that hang up on purpose
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
	s.Host, s.Port = "127.0.0.1", l.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { close(s.release); srv.Close(); <-done })
	return s
}

// messages returns what the server received, with how each came.
func (s *ntSMTPX) messages() []ntReceived {
	s.mu.Lock()
	defer s.mu.Unlock()
	mails := s.received()
	out := make([]ntReceived, len(mails))
	for i, m := range mails {
		out[i] = ntReceived{ntMail: m, ntConnMeta: s.meta[i]}
	}
	return out
}

// stallAt blocks while the test runs if the server stalls at stage.
func (s *ntSMTPX) stallAt(stage string) {
	if s.stall == stage {
		<-s.release
	}
}

// ntSessionX is an ntSession with AUTH, stalls and the connection's TLS
// state.
type ntSessionX struct {
	*ntSession
	x    *ntSMTPX
	conn *smtp.Conn
	tls  bool // implicit TLS
	user string
}

func (x *ntSessionX) AuthMechanisms() []string {
	if x.x.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *ntSessionX) Auth(string) (sasl.Server, error) {
	x.x.stallAt("AUTH")
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != x.x.user || pass != x.x.pass {
			return smtp.ErrAuthFailed
		}
		x.user = user
		return nil
	}), nil
}

func (x *ntSessionX) Mail(from string, opts *smtp.MailOptions) error {
	x.x.stallAt("MAIL")
	if x.x.user != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	return x.ntSession.Mail(from, opts)
}

func (x *ntSessionX) Rcpt(to string, opts *smtp.RcptOptions) error {
	x.x.stallAt("RCPT")
	return x.ntSession.Rcpt(to, opts)
}

func (x *ntSessionX) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.x.stallAt("DATA")
	_, isTLS := x.conn.TLSConnectionState()
	x.x.mu.Lock()
	defer x.x.mu.Unlock()
	if err := x.ntSession.Data(bytes.NewReader(b)); err != nil {
		return err // a refusal (ntWithReject): nothing stored
	}
	x.x.meta = append(x.x.meta, ntConnMeta{TLS: isTLS || x.tls, User: x.user})
	return nil
}

// ntHangingServer accepts connections and never answers.
func ntHangingServer(t testing.TB) string {
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
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// ntClosedAddr returns an address on 127.0.0.1 where nothing listens.
func ntClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ntHostPort splits a server's address.
func ntHostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, p
}

// ntRawServer accepts connections on 127.0.0.1 and runs handle on each,
// with a reader of what the client sends; stop is closed when the test
// ends, and then every connection is closed.
func ntRawServer(t testing.TB, handle func(c net.Conn, r *bufio.Reader, stop <-chan struct{})) (host string, port int) {
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

// ntSilent reads what the client sends and never answers.
func ntSilent(r *bufio.Reader) { _, _ = io.Copy(io.Discard, r) }

// ntTestCert makes a self-signed certificate for 127.0.0.1 and the client
// config that trusts it.
func ntTestCert(t testing.TB) (server, client *tls.Config) {
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

// ntMessage is a received message taken apart with net/mail and
// mime/multipart, bodies decoded (CRLF as LF).
type ntMessage struct {
	Header netmail.Header
	Type   string            // the message's media type
	Parts  map[string]string // content type -> decoded body
	Raw    string
}

func ntReadMessage(t testing.TB, raw string) ntMessage {
	t.Helper()
	msg, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v\n%s", err, raw)
	}
	p := ntMessage{Header: msg.Header, Parts: map[string]string{}, Raw: raw}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	p.Type = mt
	if !strings.HasPrefix(mt, "multipart/") {
		p.Parts[mt] = ntDecodeBody(t, msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
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
		p.Parts[pt] = ntDecodeBody(t, part.Header.Get("Content-Transfer-Encoding"), part)
	}
	return p
}

func ntDecodeBody(t testing.TB, enc string, r io.Reader) string {
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

// subject decodes the Subject header.
func (p ntMessage) subject(t testing.TB) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	return s
}
