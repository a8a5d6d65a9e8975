package mail_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
)

// The tests of a Notifier that need no SMTP server: the message it builds
// (MessageOf) and the address it dials (AddrOf). Its SMTP conversations
// (TLS, AUTH, refusals, servers that hang at each step) and a monitor
// mailing through it are tested in internal/tests (mail_test.go there),
// against the SMTP server of its smtp_test.go.

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
