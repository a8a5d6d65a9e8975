package mail_test

import (
	"fmt"
	"os"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
)

// An errmon monitor that emails the team about new errors and regressions
// through an SMTP server with STARTTLS and a login.
func ExampleNew() {
	cfg, err := errmon.ConfigFromEnv() // APP_ERROR_SEND_NOTIFICATION, APP_ERROR_RECIPIENT_EMAIL...
	if err != nil {
		panic(err)
	}
	cfg.SendNotification = true
	cfg.EmailSender = "errmon@example.com"
	cfg.RecipientEmail = []string{"team@example.com"}
	cfg.Notifier = mail.New(mail.Config{
		Host:     "smtp.example.com",
		Port:     587, // STARTTLS is used whenever the server offers it
		Username: "errmon@example.com",
		Password: os.Getenv("SMTP_PASSWORD"),
		Timeout:  20 * time.Second, // bounds each whole send
	})
	// cfg.DB = db; m, err := errmon.New(cfg) ...
	fmt.Println(cfg.Notifier.(*mail.Notifier).Addr())
	// Output: smtp.example.com:587
}

// Implicit TLS (SMTPS) on port 465.
func ExampleNew_ssl() {
	n := mail.New(mail.Config{Host: "smtp.example.com", SSL: true})
	fmt.Println(n.Addr())
	// Output: smtp.example.com:465
}

// The email for an alert can be built without sending it, for instance to
// look at it.
func ExampleNotifier_Message() {
	n := mail.New(mail.Config{Host: "smtp.example.com"})
	msg := n.Message(&errmon.Notification{
		From:    "errmon@example.com",
		To:      []string{"team@example.com"},
		Subject: "[shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>",
		Text:    "A new error...",
		HTML:    "<p>A new error...</p>",
		Reason:  errmon.ReasonNew,
	})
	fmt.Println(msg.GetHeader("Subject")[0])
	// Output: [shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>
}
