// Package mail sends errmon's alerts by email over SMTP.
//
// A [Notifier] implements [errmon.Notifier]: plug it into
// errmon.Config.Notifier and every alert the monitor decides to send (a new
// error, a regression, ...) becomes one multipart email, plain text and
// HTML, composed by errmon and delivered here.
//
//	cfg, _ := errmon.ConfigFromEnv()
//	cfg.DB = db
//	cfg.Notifier = mail.New(mail.Config{
//		Host:     "smtp.example.com",
//		Port:     587,
//		Username: "alerts@example.com",
//		Password: os.Getenv("SMTP_PASSWORD"),
//	})
//
// The alerts of one error form one thread in mail clients: the first one's
// Message-Id is the error's [errmon.Notification.ThreadID]
// ("<errmon.{hash}@{sender's domain}>"), and every later one (threshold,
// regression, ongoing) has a Message-Id of its own and refers to the first
// with In-Reply-To and References.
//
// Messages are built with gopkg.in/gomail.v2. The connection is opened by
// this package rather than by gomail's Dialer, whose reads and writes have no
// deadline (a server that accepts a connection and never answers would block
// it forever): here [Config.Timeout] and the caller's context bound the
// whole conversation, from dialing to QUIT, and a send never leaves a
// goroutine or a connection behind. The SMTP dialogue is gomail's: implicit
// TLS when [Config.SSL] is set, STARTTLS whenever the server offers it
// otherwise, and authentication (CRAM-MD5, LOGIN or PLAIN, whichever the
// server offers) when [Config.Username] is set.
package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/gomail.v2"

	"github.com/errmon/errmon"
)

// DefaultTimeout bounds one send when [Config.Timeout] is zero.
const DefaultTimeout = 30 * time.Second

// quitTimeout bounds the wait for the answer to QUIT, once the message is
// accepted (within the send's own bound).
const quitTimeout = 2 * time.Second

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Config says how to reach the SMTP server. Only Host is required.
type Config struct {
	// Host is the SMTP server's host name or IP address. It is also the
	// name its TLS certificate must carry, unless TLSConfig says otherwise.
	Host string
	// Port is the SMTP server's port. Default 465 when SSL is set, else
	// 587 (submission). Port 465 implies SSL, as in gomail.
	Port int
	// Username and Password authenticate to the server when Username is
	// set and the server offers AUTH. Go's net/smtp refuses to send a
	// password over an unencrypted connection to any host but localhost:
	// use SSL or a server that offers STARTTLS.
	Username, Password string
	// SSL connects with implicit TLS (SMTPS, usually port 465). When false,
	// the connection is upgraded with STARTTLS whenever the server offers
	// it.
	SSL bool
	// Timeout bounds one whole send: dialing, TLS, authentication, the
	// message and QUIT. Default 30s. A context with an earlier deadline
	// passed to Notify bounds it further.
	Timeout time.Duration
	// LocalName is the host name sent with EHLO. Default "localhost".
	LocalName string
	// TLSConfig is used for SSL and STARTTLS. Default: verify the server's
	// certificate for Host.
	TLSConfig *tls.Config
}

// Notifier sends errmon alerts by email. Create it with [New]; it is safe
// for concurrent use and holds no connection between sends.
type Notifier struct {
	cfg Config
}

// Compile-time check that a *Notifier is an errmon.Notifier.
var _ errmon.Notifier = (*Notifier)(nil)

// New returns a Notifier that sends through the SMTP server described by
// cfg, with its defaults filled in. It does not connect: a wrong address
// shows up as an error of the first [Notifier.Notify].
func New(cfg Config) *Notifier {
	if cfg.Port == 465 {
		cfg.SSL = true
	}
	if cfg.Port == 0 {
		cfg.Port = 587
		if cfg.SSL {
			cfg.Port = 465
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.LocalName == "" {
		cfg.LocalName = "localhost"
	}
	return &Notifier{cfg: cfg}
}

// SendsEmail reports true: alerts go to Notification.To from
// Notification.From, so errmon requires Config.RecipientEmail and
// Config.EmailSender with this Notifier.
func (n *Notifier) SendsEmail() bool { return true }

// addr returns the server's address, host:port.
func (n *Notifier) addr() string {
	return net.JoinHostPort(n.cfg.Host, strconv.Itoa(n.cfg.Port))
}

// Notify sends one alert as a multipart/alternative email (text/plain and
// text/html) from note.From to note.To, within Config.Timeout and ctx. Its
// Message-Id is note.MessageID; when note.ThreadID differs from it (any
// alert of an error but its first), In-Reply-To and References carry
// note.ThreadID, so that the alerts of one error thread.
// A rejection by the server (an SMTP 5xx reply) wraps
// [errmon.ErrPermanent], which tells errmon not to retry it; a send that
// runs out of time wraps context.DeadlineExceeded, and one whose ctx is
// cancelled wraps context.Canceled.
func (n *Notifier) Notify(ctx context.Context, note *errmon.Notification) error {
	if note == nil {
		return fmt.Errorf("mail: nil notification: %w", errmon.ErrPermanent)
	}
	if note.From == "" || len(note.To) == 0 {
		return fmt.Errorf("mail: notification needs a sender and recipients: %w", errmon.ErrPermanent)
	}
	msg := n.message(note)
	if err := n.send(ctx, msg); err != nil {
		hash := ""
		if note.Error != nil {
			hash = note.Error.Hash
		}
		return fmt.Errorf("mail: send alert %s via %s: %w", hash, n.addr(), err)
	}
	return nil
}

// message builds the email for note without sending it.
func (n *Notifier) message(note *errmon.Notification) *gomail.Message {
	m := gomail.NewMessage()
	m.SetHeader("From", note.From)
	m.SetHeader("To", append([]string(nil), note.To...)...) // gomail encodes in place
	m.SetHeader("Subject", oneLine(note.Subject))
	m.SetDateHeader("Date", time.Now())
	// Threading: every alert of one error refers to the Message-ID of its
	// first alert (note.ThreadID), which is also that alert's own id, so
	// mail clients show them as one conversation.
	id := msgID(note.MessageID)
	if id == "" {
		id = n.messageID(note.From)
	}
	m.SetHeader("Message-Id", id)
	if thread := msgID(note.ThreadID); thread != "" && thread != id {
		m.SetHeader("In-Reply-To", thread)
		m.SetHeader("References", thread)
	}
	// RFC 3834: this is an automatic message; auto-responders stay quiet.
	m.SetHeader("Auto-Submitted", "auto-generated")
	if note.Error != nil && note.Error.Hash != "" && note.Reason != errmon.ReasonDigest {
		// (A digest is about many errors: it names none in its headers.)
		m.SetHeader("X-Errmon-Hash", note.Error.Hash)
	}
	if note.Reason != "" {
		m.SetHeader("X-Errmon-Reason", oneLine(string(note.Reason)))
	}
	text := note.Text
	if text == "" {
		text = note.Subject
	}
	m.SetBody("text/plain", text)
	if note.HTML != "" {
		m.AddAlternative("text/html", note.HTML)
	}
	return m
}

// messageID returns a unique Message-Id in the sender's domain.
func (n *Notifier) messageID(from string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	domain := n.cfg.LocalName
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		domain = strings.Trim(from[i+1:], "<> ")
	}
	if domain == "" {
		domain, _ = os.Hostname()
	}
	return "<errmon." + hex.EncodeToString(b[:]) + "@" + domain + ">"
}

// msgID returns id when it is a plain message id, "<left@right>" on one
// line of printable ASCII without spaces, else "".
func msgID(id string) string {
	if len(id) < 5 || len(id) > 250 || id[0] != '<' || id[len(id)-1] != '>' || strings.Count(id, "@") != 1 {
		return ""
	}
	for i := 1; i < len(id)-1; i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return ""
		}
	}
	return id
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// send runs one SMTP conversation. The deadline (Config.Timeout, or ctx's
// if earlier) is set on the connection, and ctx being done closes it: every
// blocking step returns, and nothing outlives the call.
func (n *Notifier) send(ctx context.Context, msg *gomail.Message) (err error) {
	deadline := time.Now().Add(n.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", n.addr())
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	// Cancellation before the deadline (the caller gave up): close the
	// connection so that the step in progress returns at once.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer func() {
		// Out of time, whichever of the connection's deadline and ctx's
		// timer fired first: say so in terms of ctx.
		switch {
		case err == nil:
		case ctx.Err() != nil:
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		case !time.Now().Before(deadline):
			err = fmt.Errorf("%w (%w)", context.DeadlineExceeded, err)
		}
	}()

	tlsCfg := n.tlsConfig()
	var c *smtp.Client
	if n.cfg.SSL {
		tc := tls.Client(conn, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("tls handshake: %w", err)
		}
		c, err = smtp.NewClient(tc, n.cfg.Host)
	} else {
		c, err = smtp.NewClient(conn, n.cfg.Host)
	}
	if err != nil {
		return fmt.Errorf("greeting: %w", classify(err))
	}
	defer c.Close()
	if err := c.Hello(n.cfg.LocalName); err != nil {
		return fmt.Errorf("EHLO: %w", classify(err))
	}
	if !n.cfg.SSL {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsCfg); err != nil {
				return fmt.Errorf("STARTTLS: %w", classify(err))
			}
		}
	}
	if n.cfg.Username != "" {
		if ok, mechs := c.Extension("AUTH"); ok {
			if err := c.Auth(n.auth(mechs)); err != nil {
				return fmt.Errorf("AUTH: %w", classify(err))
			}
		}
	}
	var sendErr error
	err = gomail.Send(gomail.SendFunc(func(from string, to []string, m io.WriterTo) error {
		sendErr = transfer(c, from, to, m)
		return sendErr
	}), msg)
	if sendErr != nil {
		return sendErr // gomail.Send flattens the error chain
	}
	if err != nil {
		return fmt.Errorf("compose: %w: %w", errmon.ErrPermanent, err)
	}
	// The message is accepted once DATA ends; a failed QUIT loses nothing,
	// so a server slow to answer it is not waited for long.
	_ = conn.SetDeadline(earliest(deadline, time.Now().Add(quitTimeout)))
	_ = c.Quit()
	return nil
}

// transfer sends one message on an open, authenticated client.
func transfer(c *smtp.Client, from string, to []string, m io.WriterTo) error {
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", classify(err))
	}
	for _, addr := range to {
		if err := c.Rcpt(addr); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", addr, classify(err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", classify(err))
	}
	if _, err := m.WriteTo(w); err != nil {
		w.Close()
		return fmt.Errorf("write message: %w", classify(err))
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of DATA: %w", classify(err))
	}
	return nil
}

// classify marks the server's permanent refusals (5xx replies) with
// errmon.ErrPermanent: retrying them would fail the same way.
func classify(err error) error {
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
		return fmt.Errorf("%w: %w", errmon.ErrPermanent, err)
	}
	return err
}

func (n *Notifier) tlsConfig() *tls.Config {
	if n.cfg.TLSConfig != nil {
		return n.cfg.TLSConfig
	}
	return &tls.Config{ServerName: n.cfg.Host, MinVersion: tls.VersionTLS12}
}

// auth picks the mechanism as gomail does: CRAM-MD5 when offered, LOGIN
// when offered without PLAIN, else PLAIN.
func (n *Notifier) auth(mechs string) smtp.Auth {
	offered := strings.Fields(strings.ToUpper(mechs))
	has := func(m string) bool {
		for _, o := range offered {
			if o == m {
				return true
			}
		}
		return false
	}
	switch {
	case has("CRAM-MD5"):
		return smtp.CRAMMD5Auth(n.cfg.Username, n.cfg.Password)
	case has("LOGIN") && !has("PLAIN"):
		return &loginAuth{username: n.cfg.Username, password: n.cfg.Password, host: n.cfg.Host}
	default:
		return smtp.PlainAuth("", n.cfg.Username, n.cfg.Password, n.cfg.Host)
	}
}

// loginAuth is the LOGIN mechanism, which net/smtp lacks. Like PlainAuth, it
// refuses to send the password unencrypted except to localhost.
type loginAuth struct {
	username, password, host string
}

// Start implements smtp.Auth.
func (a *loginAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	if !server.TLS && !isLocalhost(server.Name) {
		return "", nil, errors.New("unencrypted connection: LOGIN would send the password in clear")
	}
	if server.Name != a.host {
		return "", nil, errors.New("wrong host name")
	}
	return "LOGIN", nil, nil
}

// Next implements smtp.Auth.
func (a *loginAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	switch strings.ToLower(strings.TrimSpace(string(fromServer))) {
	case "username:":
		return []byte(a.username), nil
	case "password:":
		return []byte(a.password), nil
	}
	return nil, fmt.Errorf("unexpected LOGIN challenge %q", fromServer)
}

func isLocalhost(name string) bool {
	return name == "localhost" || name == "127.0.0.1" || name == "::1"
}
