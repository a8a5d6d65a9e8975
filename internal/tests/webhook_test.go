package tests

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/webhook"
	"go.uber.org/goleak"
)

// Tests of webhook.Notifier against incoming-webhook servers (httptest),
// each checked for goroutines left behind (goleak), and of a monitor
// retrying a webhook. The tests that need nothing but net/http stay in
// webhook/.

// whHook is an incoming-webhook server: it answers each post with the next
// status of its script (the last one repeated) and keeps the payloads.
type whHook struct {
	mu       sync.Mutex
	statuses []int
	posts    []map[string]any
	headers  []http.Header
	srv      *httptest.Server
}

func whStartHook(t *testing.T, statuses ...int) *whHook {
	t.Helper()
	h := &whHook{statuses: statuses}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &p)
		h.mu.Lock()
		h.posts = append(h.posts, p)
		h.headers = append(h.headers, r.Header.Clone())
		status := http.StatusOK
		if len(h.statuses) > 0 {
			status = h.statuses[0]
			if len(h.statuses) > 1 {
				h.statuses = h.statuses[1:]
			}
		}
		h.mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *whHook) received() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.posts...)
}

// whNote is an alert as errmon hands it to a Notifier.
func whNote() *errmon.Notification {
	return &errmon.Notification{
		Subject: "[shop] [New] [GET] /items/:id runtime.boundsError: index out of range [<n>] with length <n>",
		Link:    "https://shop.example.com/dev/error/abc123",
		Reason:  errmon.ReasonNew,
		Error:   &errmon.ErrorRecord{Hash: "abc123"},
	}
}

func TestWebhookPostsText(t *testing.T) {
	whLeakCheck(t)
	h := whStartHook(t, http.StatusOK)
	n := webhook.New(h.srv.URL+"/hooks/T000/B000/secret", webhook.WithHeader("X-Relay-Key", "k1"))
	if err := n.Notify(context.Background(), whNote()); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	posts := h.received()
	if len(posts) != 1 {
		t.Fatalf("%d posts, want 1", len(posts))
	}
	want := whNote().Subject + "\n" + whNote().Link
	if posts[0]["text"] != want || len(posts[0]) != 1 {
		t.Errorf("payload %v, want {text: %q}", posts[0], want)
	}
	if ct := h.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if k := h.headers[0].Get("X-Relay-Key"); k != "k1" {
		t.Errorf("X-Relay-Key %q", k)
	}
	// Without a link, the subject alone.
	nl := whNote()
	nl.Link = ""
	if got := webhook.PayloadOf(nl).Text; got != nl.Subject {
		t.Errorf("text without a link %q", got)
	}
}

func TestWebhookStatuses(t *testing.T) {
	whLeakCheck(t)
	cases := []struct {
		status    int
		wantErr   bool
		permanent bool
	}{
		{200, false, false}, {204, false, false},
		{400, true, true}, {403, true, true}, {404, true, true}, {410, true, true},
		{408, true, false}, {429, true, false},
		{500, true, false}, {502, true, false}, {503, true, false},
	}
	for _, tc := range cases {
		h := whStartHook(t, tc.status)
		err := webhook.New(h.srv.URL+"/secret-path").Notify(context.Background(), whNote())
		if (err != nil) != tc.wantErr {
			t.Errorf("status %d: Notify = %v, want error %v", tc.status, err, tc.wantErr)
			continue
		}
		if err == nil {
			continue
		}
		if got := errors.Is(err, errmon.ErrPermanent); got != tc.permanent {
			t.Errorf("status %d: permanent %v, want %v (%v)", tc.status, got, tc.permanent, err)
		}
		if !strings.Contains(err.Error(), "abc123") || strings.Contains(err.Error(), "secret-path") {
			t.Errorf("status %d: error %q should name the hash, not the URL's path", tc.status, err)
		}
	}
}

// TestWebhookNeverAnswers: a server that accepts the post and never
// answers holds Notify no longer than Timeout or the caller's context, and
// leaves no goroutine behind.
func TestWebhookNeverAnswers(t *testing.T) {
	whLeakCheck(t)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	// A listener that accepts and never reads or answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
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
	defer func() {
		l.Close()
		<-accepted
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	bounds := []struct {
		name string
		url  string
		n    func(url string) *webhook.Notifier
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"handler never answers, Timeout", srv.URL, func(u string) *webhook.Notifier { return webhook.New(u, webhook.WithTimeout(200*time.Millisecond)) },
			func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, context.DeadlineExceeded},
		{"silent socket, caller's deadline", "http://" + l.Addr().String() + "/", func(u string) *webhook.Notifier { return webhook.New(u) },
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			}, context.DeadlineExceeded},
		{"silent socket, caller's cancel", "http://" + l.Addr().String() + "/", func(u string) *webhook.Notifier { return webhook.New(u) },
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(150*time.Millisecond, cancel)
				return ctx, cancel
			}, context.Canceled},
	}
	for _, b := range bounds {
		t.Run(b.name, func(t *testing.T) {
			ctx, cancel := b.ctx()
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- b.n(b.url).Notify(ctx, whNote()) }()
			select {
			case err := <-done:
				if !errors.Is(err, b.want) {
					t.Errorf("Notify = %v, want it to wrap %v", err, b.want)
				}
				if errors.Is(err, errmon.ErrPermanent) {
					t.Errorf("a timeout is not permanent: %v", err)
				}
			case <-time.After(time.Minute): // a hang, not a latency check
				t.Fatal("Notify hung")
			}
		})
	}
}

// TestWebhookRedirects: a redirect to the same host is followed, one to
// another host is refused (permanently) and nothing is posted there.
func TestWebhookRedirects(t *testing.T) {
	whLeakCheck(t)
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	h := whStartHook(t, http.StatusOK)
	mux := http.NewServeMux()
	mux.HandleFunc("/same", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, h.srv.URL+"/final", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/final", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	})
	front := httptest.NewServer(mux)
	defer front.Close()
	// same host: front redirects to itself
	mux.HandleFunc("/self", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/final", http.StatusPermanentRedirect)
	})
	if err := webhook.New(front.URL+"/self").Notify(context.Background(), whNote()); err != nil {
		t.Errorf("same-host redirect: %v", err)
	}
	err := webhook.New(front.URL+"/away").Notify(context.Background(), whNote())
	if !errors.Is(err, errmon.ErrPermanent) {
		t.Errorf("redirect to another host: %v, want a permanent error", err)
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the alert reached the other host")
	}
}

// TestWebhookLongAnswer: a huge answer is not read to its end.
func TestWebhookLongAnswer(t *testing.T) {
	whLeakCheck(t)
	var wrote atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for i := 0; i < 32<<10; i++ { // up to 1 GiB
			n, err := w.Write(chunk)
			wrote.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	err := webhook.New(srv.URL).Notify(context.Background(), whNote())
	if err == nil || errors.Is(err, errmon.ErrPermanent) || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("Notify = %v, want a temporary status 500 error", err)
	}
	if len(err.Error()) > 600 {
		t.Errorf("error of %d bytes", len(err.Error()))
	}
	srv.CloseClientConnections()
	if w := wrote.Load(); w >= 1<<30 {
		t.Errorf("the whole answer (%d bytes) was read", w)
	}
}

// TestMonitorWebhookRetries: through a monitor, a 5xx is retried until the
// webhook takes the alert; a 4xx is given up at once. No email address is
// needed.
func TestMonitorWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name     string
		statuses []int
		posts    int
		sent     int64
		failed   int64
	}{
		{"5xx retried", []int{503, 500, 200}, 3, 1, 0},
		{"4xx permanent", []int{404}, 1, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := whStartHook(t, tc.statuses...)
			m := newTestMonitor(t, openSQLite(t).DB, func(cfg *errmon.Config) {
				cfg.SendNotification = true
				cfg.Notifier = webhook.New(h.srv.URL + "/hook")
				cfg.SubjectPrefix = "shop"
				cfg.BaseURL = "https://shop.example.com"
				cfg.NotifyTimeout = 2 * time.Second
			})
			m.Record(nil, errors.New("webhook boom"))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.Flush(ctx); err != nil {
				t.Fatalf("Flush: %v", err)
			}
			posts := h.received()
			if len(posts) != tc.posts {
				t.Fatalf("%d posts, want %d", len(posts), tc.posts)
			}
			text, _ := posts[0]["text"].(string)
			if !strings.HasPrefix(text, "[shop] [New] *errors.errorString: webhook boom\nhttps://shop.example.com/dev/error/") {
				t.Errorf("text %q", text)
			}
			if st := m.Stats(); st.AlertsSent != tc.sent || st.AlertsFailed != tc.failed {
				t.Errorf("stats %+v, want %d sent, %d failed", st, tc.sent, tc.failed)
			}
		})
	}
}

// whLeakCheck verifies, once the test and its cleanups (the servers) are
// done, that no goroutine it started is left.
func whLeakCheck(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
