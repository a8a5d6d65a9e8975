package webhook_test

import (
	"context"
	"errors"
	"testing"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/webhook"
)

// The webhook tests that need only the standard library: what is refused
// before any post here, a post to an httptest server in example_test.go.
// The posts, statuses, hangs, redirects and long answers (each checked for
// goroutines left behind, with goleak) and a monitor retrying a webhook
// are tested in internal/tests (webhook_test.go there).

func note() *errmon.Notification {
	return &errmon.Notification{
		Subject: "[shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>",
		Link:    "https://shop.example.com/dev/error/abc123",
		Reason:  errmon.ReasonNew,
		Error:   &errmon.ErrorRecord{Hash: "abc123"},
	}
}

func TestWebhookInvalidURL(t *testing.T) {
	for _, u := range []string{"", "not a url", "ftp://example.com/x", "/relative", "http://%zz"} {
		if err := webhook.New(u).Notify(context.Background(), note()); !errors.Is(err, errmon.ErrPermanent) {
			t.Errorf("New(%q).Notify = %v, want ErrPermanent", u, err)
		}
	}
	if err := webhook.New("http://127.0.0.1:1/").Notify(context.Background(), nil); !errors.Is(err, errmon.ErrPermanent) {
		t.Errorf("nil note: %v", err)
	}
}
