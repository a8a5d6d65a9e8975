package mail

import (
	"github.com/errmon/errmon"
	"gopkg.in/gomail.v2"
)

// What the tests of package mail_test read of a Notifier.

// MessageOf builds the email n would send for note.
func MessageOf(n *Notifier, note *errmon.Notification) *gomail.Message { return n.message(note) }

// AddrOf returns the server's address n dials.
func AddrOf(n *Notifier) string { return n.addr() }
