// Package webhook posts errmon's alerts to a chat's incoming webhook:
// Slack, Mattermost and Microsoft Teams (its incoming webhook connector)
// all accept the JSON payload it sends,
//
//	{"text": "<subject>\n<link>"}
//
// the alert's one-line subject and, when errmon.Config.BaseURL is set, the
// link to the error on the dashboard.
//
//	cfg.SendNotification = true
//	cfg.Notifier = webhook.New(os.Getenv("SLACK_WEBHOOK_URL"))
//
// A webhook Notifier needs no email addresses (errmon.Config.RecipientEmail
// and EmailSender may stay empty). Each post is bounded by [Config.Timeout]
// (default 10s) and by the caller's context; a 4xx answer other than 408
// and 429 wraps [errmon.ErrPermanent] (errmon does not retry it), any other
// failure is retried by errmon. Redirects are followed only to the same
// host, and at most 64 KiB of an answer is read. Only net/http is used.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/errmon/errmon"
)

// DefaultTimeout bounds one post when [Config.Timeout] is zero.
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes is how much of an answer is read (and the rest
// discarded by closing the connection).
const MaxResponseBytes = 64 << 10

// maxRedirects is how many same-host redirects a post follows.
const maxRedirects = 3

// Config says where and how to post. Only URL is required.
type Config struct {
	// URL is the incoming webhook's address (http or https). It usually
	// holds a secret: errors name its host only.
	URL string
	// Timeout bounds one post, from dialing to the end of the answer.
	// Default 10s. A context with an earlier deadline bounds it further.
	Timeout time.Duration
	// Header is added to every post (for instance an Authorization header
	// for a webhook relay). Content-Type is always application/json.
	Header http.Header
	// Client, when set, sends the posts (its Transport, Jar and Timeout);
	// its CheckRedirect is replaced by the same-host rule. Default: a client
	// of its own that keeps no idle connection between posts.
	Client *http.Client
}

// Option changes a Config, for [New].
type Option func(*Config)

// WithTimeout sets [Config.Timeout].
func WithTimeout(d time.Duration) Option { return func(c *Config) { c.Timeout = d } }

// WithHeader adds a header to every post (see [Config.Header]).
func WithHeader(key, value string) Option {
	return func(c *Config) {
		if c.Header == nil {
			c.Header = http.Header{}
		}
		c.Header.Add(key, value)
	}
}

// WithClient sets [Config.Client].
func WithClient(client *http.Client) Option { return func(c *Config) { c.Client = client } }

// Notifier posts errmon alerts to an incoming webhook. Create it with
// [New] or [NewConfig]; it is safe for concurrent use.
type Notifier struct {
	cfg    Config
	client *http.Client
	host   string // the URL's host, for errors
	err    error  // a URL that cannot be used: every Notify returns it
}

// Compile-time check that a *Notifier is an errmon.Notifier.
var _ errmon.Notifier = (*Notifier)(nil)

// New returns a Notifier that posts to the webhook at rawURL, with opts
// applied. It does not connect: a wrong address shows up as an error of
// the first [Notifier.Notify] (permanent when the URL itself is invalid).
func New(rawURL string, opts ...Option) *Notifier {
	cfg := Config{URL: rawURL}
	for _, o := range opts {
		o(&cfg)
	}
	return NewConfig(cfg)
}

// NewConfig returns a Notifier for cfg, its defaults filled in.
func NewConfig(cfg Config) *Notifier {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.Header = cfg.Header.Clone()
	n := &Notifier{cfg: cfg}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil:
		n.err = fmt.Errorf("webhook: invalid URL: %w", errmon.ErrPermanent)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		n.err = fmt.Errorf("webhook: the URL must be an absolute http(s) URL: %w", errmon.ErrPermanent)
	default:
		n.host = u.Host
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableKeepAlives = true // alerts are rare: no idle connection, no goroutine, between them
		client.Transport = t
	}
	client.CheckRedirect = sameHost
	n.client = &client
	return n
}

// sameHost follows at most maxRedirects redirects, and only to the host
// (and scheme) of the original request: a webhook's answer cannot send the
// alert elsewhere.
func sameHost(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", errRedirect, maxRedirects)
	}
	first := via[0].URL
	if req.URL.Host != first.Host || req.URL.Scheme != first.Scheme {
		return fmt.Errorf("%w: to another host (%s)", errRedirect, req.URL.Host)
	}
	return nil
}

// Payload is the JSON body of a post.
type Payload struct {
	// Text is the alert's subject and, on a second line, its link.
	Text string `json:"text"`
}

// PayloadOf returns what Notify posts for note.
func PayloadOf(note *errmon.Notification) Payload {
	text := note.Subject
	if note.Link != "" {
		text += "\n" + note.Link
	}
	return Payload{Text: text}
}

// Notify posts note to the webhook within Config.Timeout and ctx. A 2xx
// answer is success. A 4xx answer other than 408 (timeout) and 429 (rate
// limit), an invalid URL, a refused redirect or a nil note wrap
// [errmon.ErrPermanent]; other failures (5xx, network errors, timeouts,
// which wrap context.DeadlineExceeded) are left to errmon's retries.
func (n *Notifier) Notify(ctx context.Context, note *errmon.Notification) error {
	if note == nil {
		return fmt.Errorf("webhook: nil notification: %w", errmon.ErrPermanent)
	}
	if n.err != nil {
		return n.err
	}
	body, err := json.Marshal(PayloadOf(note))
	if err != nil {
		return fmt.Errorf("webhook: encode: %w: %w", errmon.ErrPermanent, err)
	}
	hash := ""
	if note.Error != nil {
		hash = note.Error.Hash
	}
	if err := n.post(ctx, body); err != nil {
		return fmt.Errorf("webhook: post alert %s to %s: %w", hash, n.host, err)
	}
	return nil
}

// errRedirect marks a redirect refused by sameHost.
var errRedirect = errors.New("redirect refused")

func (n *Notifier) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", errmon.ErrPermanent, err)
	}
	for k, vs := range n.cfg.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "errmon-webhook")
	resp, err := n.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (%s)", ctx.Err(), redact(err))
		}
		if errors.Is(err, errRedirect) {
			return fmt.Errorf("%w: %s", errmon.ErrPermanent, redact(err))
		}
		return errors.New(redact(err))
	}
	defer resp.Body.Close()
	answer, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil // the answer may have been cut or broken: the post was accepted
	}
	err = fmt.Errorf("status %d: %s", resp.StatusCode, snippet(answer))
	if readErr != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return fmt.Errorf("%w: %w", errmon.ErrPermanent, err)
	}
	return err
}

// redact returns err's text without the URL (which may hold the webhook's
// secret): the inner error of a *url.Error.
func redact(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// snippet is the start of an answer, for an error: one line, at most 200
// bytes of valid UTF-8.
func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b[:min(len(b), 800)])), " ")
	if len(s) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
