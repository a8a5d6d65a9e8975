package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/webhook"
)

// Alerts posted to a Slack, Mattermost or Teams incoming webhook (here a
// test server standing in for one).
func ExampleNew() {
	chat := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p struct{ Text string }
		_ = json.NewDecoder(r.Body).Decode(&p)
		fmt.Println(p.Text)
	}))
	defer chat.Close()

	n := webhook.New(chat.URL + "/hooks/T000/B000/XXXX")
	// In a service: cfg.SendNotification = true; cfg.Notifier = n
	err := n.Notify(context.Background(), &errmon.Notification{
		Subject: "[shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>",
		Link:    "https://shop.example.com/dev/error/3f2a",
		Reason:  errmon.ReasonNew,
	})
	fmt.Println("error:", err)
	// Output:
	// [shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>
	// https://shop.example.com/dev/error/3f2a
	// error: <nil>
}
