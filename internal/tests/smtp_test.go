package tests

import (
	"context"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/errmon/errmon"
)

// ntMail is one received message.
type ntMail struct {
	From string
	To   []string
	Raw  string
}

// ntSMTP is a real SMTP server on 127.0.0.1 that keeps what it receives.
type ntSMTP struct {
	Host   string
	Port   int
	mu     sync.Mutex
	mails  []ntMail
	reject *smtp.SMTPError
}

func ntStartSMTP(t testing.TB, reject *smtp.SMTPError) *ntSMTP {
	t.Helper()
	s := &ntSMTP{reject: reject}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &ntSession{s: s}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Host, s.Port = "127.0.0.1", l.Addr().(*net.TCPAddr).Port
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return s
}

func (s *ntSMTP) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

func (s *ntSMTP) received() []ntMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ntMail(nil), s.mails...)
}

type ntSession struct {
	s   *ntSMTP
	cur ntMail
}

func (x *ntSession) Mail(from string, _ *smtp.MailOptions) error {
	x.cur = ntMail{From: from}
	return nil
}

func (x *ntSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.cur.To = append(x.cur.To, to)
	return nil
}

func (x *ntSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if x.s.reject != nil {
		return x.s.reject
	}
	x.cur.Raw = string(b)
	x.s.mu.Lock()
	x.s.mails = append(x.s.mails, x.cur)
	x.s.mu.Unlock()
	return nil
}

func (x *ntSession) Reset() { x.cur = ntMail{} }

func (x *ntSession) Logout() error { return nil }

// ntRecorder is an in-memory Notifier for policy tests.
type ntRecorder struct {
	mu    sync.Mutex
	notes []*errmon.Notification
}

func (n *ntRecorder) Notify(_ context.Context, note *errmon.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notes = append(n.notes, note)
	return nil
}

func (n *ntRecorder) reasons() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, note := range n.notes {
		out = append(out, string(note.Reason))
	}
	return out
}

func (n *ntRecorder) last() *errmon.Notification {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.notes[len(n.notes)-1]
}
