package errmon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"time"
)

// Notifier delivers an alert, for instance by email (see
// [github.com/errmon/errmon/mail]) or to a chat webhook. Notify is called
// off the request path, one alert at a time, with a context bounded by
// Config.NotifyTimeout that it must honour; a failed delivery is retried
// with backoff (unless its error wraps [ErrPermanent]), then logged with the
// error's hash. A panic is recovered and logged like an error, and not
// retried.
//
// A Notifier that ignores its context cannot block or crash the monitor,
// and cannot make it pile up goroutines: a call still running
// NotifyTimeout plus 100ms after it started is abandoned (its goroutine
// ends whenever Notify returns), and it is the only abandoned call of that
// Notifier: no other call starts while it runs. The next delivery waits
// for it at most NotifyTimeout; if it is still running then, that delivery
// fails, and every later one is dropped without a call, counted in
// Stats.AlertsSkipped and logged once, until the abandoned call returns;
// deliveries resume then. Close does not wait for an abandoned call: it is
// bounded by Config.CloseTimeout whatever the Notifier does.
type Notifier interface {
	Notify(ctx context.Context, n *Notification) error
}

// Notification is one alert, fully composed: a Notifier only has to deliver
// it. Every value in it is masked.
type Notification struct {
	From    string
	To      []string
	Subject string // one line: "[SubjectPrefix] [METHOD] path ExceptionName: message"
	Text    string // plain-text body
	HTML    string // HTML body
	Error   *ErrorRecord
	Reason  string // why it was sent: "new", "regression", "threshold" or "ongoing"
	Link    string // the dashboard's detail page, when Config.BaseURL is set
}

// Ticketing raises a ticket in an issue tracker. RaiseTicket is called once
// for each new error and each regression, however many processes see it,
// off the request path, with the same retries as alerts; its failures are
// logged, never fatal. A Ticketing that ignores its context is bounded as
// a [Notifier] is, on its own: at most one abandoned call of it runs at a
// time, and tickets are dropped (counted in Stats.AlertsSkipped, logged
// once) while that call still runs after a wait of NotifyTimeout.
type Ticketing interface {
	RaiseTicket(ctx context.Context, rec *ErrorRecord) error
}

// Reasons for an alert, in [Notification.Reason].
const (
	ReasonNew        = "new"        // the first occurrence of an error
	ReasonRegression = "regression" // a resolved error happened again
	ReasonThreshold  = "threshold"  // an open error's count reached one of Config.NotifyThresholds
	ReasonOngoing    = "ongoing"    // an open error still occurs, Config.NotifyEvery after its last alert
)

// ErrPermanent marks a delivery failure that retrying cannot fix (an SMTP
// server's 5xx refusal, a malformed address). A Notifier or Ticketing
// returns an error wrapping it (errors.Is) to have it logged at once
// instead of retried.
var ErrPermanent = errors.New("permanent failure")

// afterWrite decides, from what the database said about a write, whether
// this process alerts and raises a ticket. The database decides (the
// upsert's write token for new errors and regressions, the count before and
// after the write for thresholds, a conditional UPDATE for NotifyEvery), so
// that exactly one of many processes does it.
func (m *Monitor) afterWrite(p *pending, res upsertResult) {
	reason := ""
	var threshold int64
	switch {
	case res.Created:
		reason = ReasonNew
	case res.Reopened:
		reason = ReasonRegression
	default:
		// Counts are atomic in the database: the ranges (before, after] of
		// all writes never overlap, so one write crosses each threshold.
		before := res.Count - p.count
		for _, t := range m.cfg.NotifyThresholds {
			if before < t && t <= res.Count && t > threshold {
				reason, threshold = ReasonThreshold, t
			}
		}
	}
	notify := m.cfg.SendNotification && m.cfg.Notifier != nil
	ticket := m.cfg.Ticketing != nil && (res.Created || res.Reopened)
	if !notify {
		reason = ""
	}
	if reason == "" && !ticket && !(notify && m.cfg.NotifyEvery > 0) {
		return // the common case: a repeat of an open error costs nothing more
	}
	hash := p.last.Hash
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	switch {
	case notify && reason == "" && m.cfg.NotifyEvery > 0:
		ok, err := m.store.claimNotification(ctx, hash, dbTime(time.Now()), m.cfg.NotifyEvery)
		if err != nil {
			m.log.Warn("errmon: could not claim a repeat alert", "hash", hash, "err", err)
		} else if ok {
			reason = ReasonOngoing
		}
	case reason != "":
		// Start the NotifyEvery interval from this alert.
		if _, err := m.store.claimNotification(ctx, hash, dbTime(time.Now()), 0); err != nil {
			m.log.Warn("errmon: could not note an alert", "hash", hash, "err", err)
		}
	}
	if reason == "" && !ticket {
		return
	}
	var rec ErrorRecord
	if err := m.store.db.WithContext(ctx).Where("id = ?", res.ID).Take(&rec).Error; err != nil {
		m.log.Error("errmon: could not read an error back to alert on it", "hash", hash, "reason", reason, "err", err)
		return
	}
	if reason != "" {
		m.alerts.enqueue(alertJob{note: m.compose(&rec, reason, threshold)})
	}
	if ticket {
		t := rec
		m.alerts.enqueue(alertJob{ticket: &t})
	}
}

// Link returns the dashboard address of an error, from Config.BaseURL and
// Config.URLPrefix, or "" when BaseURL is not set.
func (m *Monitor) Link(hash string) string {
	if m.cfg.BaseURL == "" {
		return ""
	}
	return strings.TrimRight(m.cfg.BaseURL, "/") + strings.TrimRight(m.cfg.URLPrefix, "/") + "/" + hash
}

// MaxSubjectBytes caps an alert's subject line. (The other bounds of an
// alert are in alertview.go.)
const MaxSubjectBytes = 200

// Subject returns an alert's subject for rec: "[SubjectPrefix] [METHOD]
// path ExceptionName: message", the prefix left out when empty, the method
// and path when unknown, on one line of at most [MaxSubjectBytes].
func (m *Monitor) Subject(rec *ErrorRecord) string {
	// Each part is cut first (the row may hold anything): folding and
	// sanitizing then cost no more than the subject's size.
	part := func(s string) string { return alertHead(s, 4*MaxSubjectBytes) }
	var subj strings.Builder
	if m.cfg.SubjectPrefix != "" {
		subj.WriteString("[" + part(m.cfg.SubjectPrefix) + "] ")
	}
	if rec.Method != "" {
		subj.WriteString("[" + part(rec.Method) + "] ")
	}
	if rec.Path != "" {
		subj.WriteString(part(rec.Path) + " ")
	}
	subj.WriteString(part(rec.ExceptionName))
	if rec.Message != "" {
		subj.WriteString(": " + part(rec.Message))
	}
	return oneLine(subj.String(), MaxSubjectBytes)
}

// compose writes the alert for rec.
func (m *Monitor) compose(rec *ErrorRecord, reason string, threshold int64) *Notification {
	n := &Notification{
		From:    m.cfg.EmailSender,
		To:      append([]string(nil), m.cfg.RecipientEmail...),
		Subject: m.Subject(rec),
		Error:   rec,
		Reason:  reason,
		Link:    m.Link(alertCap(rec.Hash, alertHashBytes)),
	}
	data := alertData(rec, reason, threshold, n.Link)
	var text, html bytes.Buffer
	if err := alertText.Execute(&text, data); err != nil {
		text.Reset()
		fmt.Fprintf(&text, "%s\n\n(the alert could not be composed: %v)\n", n.Subject, err)
	}
	if err := alertHTML.Execute(&html, data); err != nil {
		html.Reset()
	}
	n.Text, n.HTML = text.String(), html.String()
	return n
}

// alertView is what the alert templates show: every text of the record
// capped (see alertview.go), the times and the count as they are.
type alertView struct {
	Rec       *ErrorRecord
	Headline  string
	Link      string
	Exception string
	Message   string
	Method    string
	Path      string
	Route     string
	Host      string
	Hash      string
	Traceback string
	Context   string
}

func alertData(rec *ErrorRecord, reason string, threshold int64, link string) alertView {
	headline := "An error"
	switch reason {
	case ReasonNew:
		headline = "A new error"
	case ReasonRegression:
		headline = "A resolved error happened again"
	case ReasonThreshold:
		headline = fmt.Sprintf("An open error reached %d occurrences", threshold)
	case ReasonOngoing:
		headline = "An open error keeps happening"
	}
	return alertView{
		Rec:       rec,
		Headline:  headline,
		Link:      link,
		Exception: alertCap(rec.ExceptionName, MaxNameBytes),
		Message:   alertCap(rec.Message, alertMessageBytes),
		Method:    alertCap(rec.Method, MaxMethodBytes),
		Path:      alertCap(rec.Path, MaxPathBytes),
		Route:     alertCap(rec.Route, MaxPathBytes),
		Host:      alertCap(rec.Host, MaxHostBytes),
		Hash:      alertCap(rec.Hash, alertHashBytes),
		Traceback: alertTraceback(rec.Traceback),
		Context:   alertContext(rec.RequestData), // the HTML part is escaped by its template
	}
}

// oneLine folds s onto one line of at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	return sanitize(s, max)
}

var alertText = texttemplate.Must(texttemplate.New("text").Parse(`{{.Headline}}: {{.Exception}}{{with .Message}}: {{.}}{{end}}

Where:      {{if or .Method .Path}}{{with .Method}}{{.}} {{end}}{{.Path}}{{with .Route}} (route {{.}}){{end}}{{with .Host}} on {{.}}{{end}}{{else}}recorded outside a request{{end}}
Count:      {{.Rec.Count}}
First seen: {{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}
Last seen:  {{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}
{{with .Link}}Details:    {{.}}
{{end}}Hash:       {{.Hash}}

Traceback (newest call first):
{{.Traceback}}
Request (secrets masked):
{{.Context}}
`))

var alertHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;color:#1f2328">
<h2 style="margin:0 0 8px">{{.Headline}}</h2>
<p style="font-size:16px"><b>{{.Exception}}</b>{{with .Message}}: {{.}}{{end}}</p>
<table style="border-collapse:collapse">
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Where</td><td>{{if or .Method .Path}}{{with .Method}}{{.}} {{end}}{{.Path}}{{with .Route}} (route {{.}}){{end}}{{with .Host}} on {{.}}{{end}}{{else}}recorded outside a request{{end}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Count</td><td>{{.Rec.Count}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">First seen</td><td>{{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Last seen</td><td>{{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Hash</td><td><code>{{.Hash}}</code></td></tr>
</table>
{{with .Link}}<p><a href="{{.}}">Open it on the dashboard</a></p>{{end}}
<h3>Traceback</h3>
<pre style="background:#f6f8fa;padding:8px;overflow:auto">{{.Traceback}}</pre>
<h3>Request (secrets masked)</h3>
<pre style="background:#f6f8fa;padding:8px;overflow:auto">{{.Context}}</pre>
</body></html>
`))

// alertJob is one delivery: an alert, a ticket, or a barrier for Flush.
type alertJob struct {
	note    *Notification
	ticket  *ErrorRecord
	barrier chan struct{}
}

// alerts delivers notifications and tickets in order, off the request path
// and off the storage path, retrying with backoff.
type alerts struct {
	m       *Monitor
	jobs    chan alertJob
	dropped int64 // jobs the full queue refused (Stats.AlertsDiscarded)
	mu      sync.Mutex
	log     *slog.Logger

	// skipped counts the jobs dropped without a call because their
	// Notifier or Ticketing was still blocked in an abandoned call
	// (Stats.AlertsSkipped).
	skipped atomic.Int64
	// The Notifier's and the Ticketing's state; only run's goroutine uses
	// them.
	notes, tickets lane
}

// lane is one Notifier or Ticketing as the sender sees it: at most one call
// of it runs at any time, the abandoned one included.
type lane struct {
	owner   string        // "Notifier" or "Ticketing", for the log
	what    string        // "alert" or "ticket": what it delivers
	busy    chan struct{} // not nil while an abandoned call runs; closed when it returns
	since   time.Time     // when that call started
	stuck   bool          // a wait for busy ran out: jobs are skipped until it returns
	skips   int64         // jobs skipped since stuck
	waitFor time.Duration // the bound of a wait for busy (NotifyTimeout)
}

// errLaneBlocked says that a delivery was not attempted: its Notifier or
// Ticketing was still running an abandoned call.
var errLaneBlocked = errors.New("still blocked in an earlier call that ignored its context")

const (
	alertQueueSize = 1024
	alertAttempts  = 4
	alertBackoff   = 500 * time.Millisecond
	// abandonGrace is how long a Notifier that ignores its context is
	// waited for after its timeout, before the monitor moves on.
	abandonGrace = 100 * time.Millisecond
)

func (a *alerts) enqueue(j alertJob) {
	select {
	case a.jobs <- j:
	default:
		a.mu.Lock()
		a.dropped++
		a.mu.Unlock()
		a.log.Error("errmon: alert queue full; alert dropped", "hash", j.hash(), "what", j.what())
	}
}

func (j alertJob) hash() string {
	switch {
	case j.note != nil && j.note.Error != nil:
		return j.note.Error.Hash
	case j.ticket != nil:
		return j.ticket.Hash
	}
	return ""
}

func (j alertJob) what() string {
	if j.ticket != nil {
		return "ticket"
	}
	return "alert"
}

// wait returns when every job queued before it is done (delivered, or
// given up and logged), or ctx is done.
func (a *alerts) wait(ctx context.Context) error {
	b := make(chan struct{})
	select {
	case a.jobs <- alertJob{barrier: b}:
	case <-ctx.Done():
		return fmt.Errorf("errmon: flush alerts: %w", ctx.Err())
	case <-a.m.stop:
		return ErrClosed
	}
	select {
	case <-b:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("errmon: flush alerts: %w", ctx.Err())
	case <-a.m.stop:
		return ErrClosed
	}
}

func (a *alerts) run() {
	defer a.m.wg.Done()
	a.notes = lane{owner: "Notifier", what: "alert", waitFor: a.m.cfg.NotifyTimeout}
	a.tickets = lane{owner: "Ticketing", what: "ticket", waitFor: a.m.cfg.NotifyTimeout}
	for {
		select {
		case <-a.m.stop:
			a.abandon()
			return
		case j := <-a.jobs:
			switch {
			case j.barrier != nil:
				close(j.barrier)
			case j.note != nil:
				a.deliver(&a.notes, j, func(ctx context.Context) error {
					// Each attempt gets its own copy: an abandoned attempt
					// may still be running.
					note := *j.note
					note.To = append([]string(nil), j.note.To...)
					rec := *j.note.Error
					note.Error = &rec
					return a.m.cfg.Notifier.Notify(ctx, &note)
				})
			case j.ticket != nil:
				a.deliver(&a.tickets, j, func(ctx context.Context) error {
					rec := *j.ticket
					return a.m.cfg.Ticketing.RaiseTicket(ctx, &rec)
				})
			}
		}
	}
}

// abandon logs the jobs still queued when the monitor stops.
func (a *alerts) abandon() {
	for {
		select {
		case j := <-a.jobs:
			if j.barrier != nil {
				continue // its Flush returns ErrClosed
			}
			a.m.stats.alertsFailed.Add(1)
			a.log.Error("errmon: monitor closed before this "+j.what()+" was delivered", "hash", j.hash())
		default:
			return
		}
	}
}

// backoff is the pause before retry number attempt (1, 2...): it doubles
// from min(500ms, NotifyTimeout).
func (a *alerts) backoff(attempt int) time.Duration {
	base := min(alertBackoff, a.m.cfg.NotifyTimeout)
	return base << (attempt - 1)
}

// deliver tries send a few times with growing pauses, each try bounded by
// Config.NotifyTimeout. An error wrapping ErrPermanent, or a panic, is not
// retried. Failures are logged with the error's hash and counted in
// Stats.AlertsFailed; Flush does not report them. A job whose lane is stuck
// (see [lane]) is skipped without a call.
func (a *alerts) deliver(l *lane, j alertJob, send func(context.Context) error) {
	if a.skip(l, j) {
		return
	}
	var err error
	attempts := 0
	for attempts < alertAttempts {
		attempts++
		err = a.try(l, send)
		if err == nil {
			if j.note != nil {
				a.m.stats.alertsSent.Add(1)
			}
			return
		}
		if errors.Is(err, ErrPermanent) || errors.Is(err, errLaneBlocked) || attempts == alertAttempts {
			break
		}
		t := time.NewTimer(a.backoff(attempts))
		select {
		case <-t.C:
		case <-a.m.stop:
			t.Stop()
			attempts = alertAttempts // give up now; Close is waiting
		}
	}
	a.m.stats.alertsFailed.Add(1)
	a.log.Error("errmon: could not deliver "+j.what(), "hash", j.hash(), "attempts", attempts, "err", err)
}

// skip reports whether j is dropped without a call: l is stuck, its
// abandoned call still running after a wait that ran out. The first skip of
// a stuck spell is logged, the others only counted.
func (a *alerts) skip(l *lane, j alertJob) bool {
	if l.busy == nil {
		return false
	}
	select {
	case <-l.busy:
		a.resume(l)
		return false
	default:
	}
	if !l.stuck {
		return false // try waits for it
	}
	l.skips++
	a.skipped.Add(1)
	if l.skips == 1 {
		a.log.Error("errmon: the "+l.owner+" is still blocked in a call that ignored its context; "+
			l.what+"s are dropped until it returns",
			"hash", j.hash(), "blocked_since", l.since.UTC().Format(time.RFC3339))
	}
	return true
}

// resume notes that l's abandoned call returned: l is free again.
func (a *alerts) resume(l *lane) {
	if l.skips > 0 {
		a.log.Warn("errmon: the "+l.owner+" returned from its abandoned call; "+l.what+"s are delivered again",
			"dropped", l.skips, "blocked_for", time.Since(l.since).Round(time.Millisecond).String())
	}
	*l = lane{owner: l.owner, what: l.what, waitFor: l.waitFor}
}

// await waits, at most l.waitFor, for l's abandoned call to return. When it
// does not, l is stuck and errLaneBlocked is returned.
func (a *alerts) await(l *lane) error {
	select {
	case <-l.busy:
		a.resume(l)
		return nil
	default:
	}
	since := l.since.UTC().Format(time.RFC3339)
	if l.stuck {
		return fmt.Errorf("%w (running since %s)", errLaneBlocked, since)
	}
	t := time.NewTimer(l.waitFor)
	defer t.Stop()
	select {
	case <-l.busy:
		a.resume(l)
		return nil
	case <-t.C:
		l.stuck = true
		return fmt.Errorf("%w (running since %s); not called again", errLaneBlocked, since)
	case <-a.m.stop:
		return fmt.Errorf("%w (running since %s); the monitor closed", errLaneBlocked, since)
	}
}

// try runs send once with a context bounded by Config.NotifyTimeout, in a
// goroutine of its own once l's previous call has returned (see await). A
// send that ignores its context is abandoned shortly after the timeout, or
// at once when the monitor closes: its goroutine ends whenever send
// returns, and l stays busy until then. A panic is returned as a permanent
// error.
func (a *alerts) try(l *lane, send func(context.Context) error) error {
	if l.busy != nil {
		if err := a.await(l); err != nil {
			return err
		}
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(a.m.base, a.m.cfg.NotifyTimeout)
	defer cancel()
	done := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("%w: panic: %s", ErrPermanent, a.m.mask.text(messageOf(r)))
			}
		}()
		done <- send(ctx)
	}()
	finish := func(err error) error {
		<-returned // only deferred calls are left: the goroutine ends now
		return err
	}
	select {
	case err := <-done:
		return finish(err)
	case <-ctx.Done():
	}
	grace := time.NewTimer(abandonGrace)
	defer grace.Stop()
	select {
	case err := <-done:
		return finish(err)
	case <-grace.C:
	case <-a.m.stop:
	}
	l.busy, l.since = returned, start
	return fmt.Errorf("abandoned after %v: it ignored its context: %w", a.m.cfg.NotifyTimeout, ctx.Err())
}
