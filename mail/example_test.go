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
	fmt.Println(cfg.Validate())
	// Output: <nil>
}
