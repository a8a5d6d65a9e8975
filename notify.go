package errmon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Notifier delivers an alert, for instance by email (see
// [github.com/errmon/errmon/mail]) or to a chat webhook. Notify is called
// off the request path, with a context bounded by Config.NotifyTimeout; a
// failed delivery is retried with backoff, then logged.
type Notifier interface {
	Notify(ctx context.Context, n *Notification) error
}

// Notification is one alert, fully composed: a Notifier only has to deliver
// it. Every value in it is masked.
type Notification struct {
	From    string
	To      []string
	Subject string
	Text    string // plain-text body
	HTML    string // HTML body
	Error   *ErrorRecord
	Reason  string // why it was sent: "new", "regression", "threshold" or "ongoing"
	Link    string // the dashboard's detail page, when Config.BaseURL is set
}

// Ticketing raises a ticket in an issue tracker. RaiseTicket is called once
// for each new error and each regression, however many processes see it,
// off the request path; its failures are logged, never fatal.
type Ticketing interface {
	RaiseTicket(ctx context.Context, rec *ErrorRecord) error
}

// Reasons for an alert.
const (
	ReasonNew        = "new"
	ReasonRegression = "regression"
	ReasonThreshold  = "threshold"
	ReasonOngoing    = "ongoing"
)

// afterWrite decides, from what the database said about a write, whether
// this process alerts and raises a ticket. The database decides, so that
// one of many processes does it.
func (m *Monitor) afterWrite(p *pending, res upsertResult) {
	reason := ""
	switch {
	case res.Created:
		reason = ReasonNew
	case res.Reopened:
		reason = ReasonRegression
	default:
		before := res.Count - p.count
		for _, t := range m.cfg.NotifyThresholds {
			if before < t && t <= res.Count {
				reason = ReasonThreshold
			}
		}
	}
	notify := m.cfg.SendNotification && m.cfg.Notifier != nil
	ticket := m.cfg.Ticketing != nil && (res.Created || res.Reopened)
	if !notify && !ticket {
		return
	}
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	if notify && reason == "" && m.cfg.NotifyEvery > 0 {
		ok, err := m.store.claimNotification(ctx, p.last.Hash, dbTime(time.Now()), m.cfg.NotifyEvery)
		if err != nil {
			m.log.Warn("errmon: could not claim a repeat alert", "hash", p.last.Hash, "err", err)
		} else if ok {
			reason = ReasonOngoing
		}
	} else if notify && reason != "" {
		if _, err := m.store.claimNotification(ctx, p.last.Hash, dbTime(time.Now()), 0); err != nil {
			m.log.Warn("errmon: could not note an alert", "hash", p.last.Hash, "err", err)
		}
	}
	if reason == "" && !ticket {
		return
	}
	var rec ErrorRecord
	if err := m.store.db.WithContext(ctx).Where("id = ?", res.ID).Take(&rec).Error; err != nil {
		m.log.Error("errmon: could not read an error back to alert on it", "hash", p.last.Hash, "err", err)
		return
	}
	if notify && reason != "" {
		m.alerts.enqueue(alertJob{note: m.compose(&rec, reason)})
	}
	if ticket {
		m.alerts.enqueue(alertJob{ticket: &rec})
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

const maxSubject = 200

// compose writes the alert for rec.
func (m *Monitor) compose(rec *ErrorRecord, reason string) *Notification {
	n := &Notification{
		From:   m.cfg.EmailSender,
		To:     append([]string(nil), m.cfg.RecipientEmail...),
		Error:  rec,
		Reason: reason,
		Link:   m.Link(rec.Hash),
	}
	var subj strings.Builder
	if m.cfg.SubjectPrefix != "" {
		subj.WriteString("[" + m.cfg.SubjectPrefix + "] ")
	}
	if rec.Method != "" {
		subj.WriteString("[" + rec.Method + "] ")
	}
	if rec.Path != "" {
		subj.WriteString(rec.Path + " ")
	}
	subj.WriteString(rec.ExceptionName + ": " + rec.Message)
	n.Subject = oneLine(subj.String(), maxSubject)

	data := m.alertData(rec, reason, n.Link)
	var text, html bytes.Buffer
	if err := alertText.Execute(&text, data); err != nil {
		text.WriteString(err.Error())
	}
	if err := alertHTML.Execute(&html, data); err != nil {
		html.WriteString(template.HTMLEscapeString(err.Error()))
	}
	n.Text, n.HTML = text.String(), html.String()
	return n
}

type alertView struct {
	Rec       *ErrorRecord
	Headline  string
	Link      string
	Traceback string
	Context   string
}

func (m *Monitor) alertData(rec *ErrorRecord, reason, link string) alertView {
	headline := map[string]string{
		ReasonNew:        "A new error",
		ReasonRegression: "A resolved error happened again",
		ReasonThreshold:  fmt.Sprintf("An open error reached %d occurrences", rec.Count),
		ReasonOngoing:    "An open error keeps happening",
	}[reason]
	tb := rec.Traceback
	if lines := strings.SplitAfter(tb, "\n"); len(lines) > 20 {
		tb = strings.Join(lines[:20], "") + "…\n"
	}
	ctx := rec.RequestData
	var v any
	if json.Unmarshal([]byte(ctx), &v) == nil {
		if b, err := json.MarshalIndent(v, "", "  "); err == nil {
			ctx = string(b)
		}
	}
	return alertView{Rec: rec, Headline: headline, Link: link, Traceback: tb, Context: ctx}
}

// oneLine folds s onto one line of at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	return sanitize(s, max)
}

var alertText = template.Must(template.New("text").Parse(`{{.Headline}}: {{.Rec.ExceptionName}}: {{.Rec.Message}}

Where:      {{.Rec.Method}} {{.Rec.Path}}{{with .Rec.Route}} (route {{.}}){{end}} on {{.Rec.Host}}
Count:      {{.Rec.Count}}
First seen: {{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}
Last seen:  {{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}
{{with .Link}}Details:    {{.}}
{{end}}
Traceback (newest call first):
{{.Traceback}}
Request:
{{.Context}}
`))

var alertHTML = template.Must(template.New("html").Parse(`<!doctype html>
<html><body style="font-family:system-ui,sans-serif;color:#1f2328">
<h2 style="margin:0 0 8px">{{.Headline}}</h2>
<p style="font-size:16px"><b>{{.Rec.ExceptionName}}</b>: {{.Rec.Message}}</p>
<table style="border-collapse:collapse">
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Where</td><td>{{.Rec.Method}} {{.Rec.Path}}{{with .Rec.Route}} (route {{.}}){{end}} on {{.Rec.Host}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Count</td><td>{{.Rec.Count}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">First seen</td><td>{{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Last seen</td><td>{{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
</table>
{{with .Link}}<p><a href="{{.}}">Open it on the dashboard</a></p>{{end}}
<h3>Traceback</h3>
<pre style="background:#f6f8fa;padding:8px;overflow:auto">{{.Traceback}}</pre>
<h3>Request</h3>
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
	dropped int64
	mu      sync.Mutex
	log     *slog.Logger
}

const (
	alertQueueSize = 1024
	alertAttempts  = 4
	alertBackoff   = 500 * time.Millisecond
)

func (a *alerts) enqueue(j alertJob) {
	select {
	case a.jobs <- j:
	default:
		a.mu.Lock()
		a.dropped++
		a.mu.Unlock()
		a.log.Error("errmon: alert queue full; alert dropped", "hash", j.hash())
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

// wait returns when every job queued before it is done, or ctx is done.
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
	for {
		select {
		case <-a.m.stop:
			return
		case j := <-a.jobs:
			switch {
			case j.barrier != nil:
				close(j.barrier)
			case j.note != nil:
				a.deliver("alert", j.note.Error.Hash, func(ctx context.Context) error {
					return a.m.cfg.Notifier.Notify(ctx, j.note)
				})
			case j.ticket != nil:
				a.deliver("ticket", j.ticket.Hash, func(ctx context.Context) error {
					return a.m.cfg.Ticketing.RaiseTicket(ctx, j.ticket)
				})
			}
		}
	}
}

// deliver tries send a few times with growing pauses, each try bounded by
// Config.NotifyTimeout; a panic in send counts as a failure.
func (a *alerts) deliver(what, hash string, send func(context.Context) error) {
	var err error
	for attempt := 1; attempt <= alertAttempts; attempt++ {
		err = a.try(send)
		if err == nil {
			if what == "alert" {
				a.m.stats.alertsSent.Add(1)
			}
			return
		}
		if attempt == alertAttempts {
			break
		}
		select {
		case <-time.After(alertBackoff << (attempt - 1)):
		case <-a.m.stop:
			attempt = alertAttempts
		}
	}
	a.m.stats.alertsFailed.Add(1)
	a.log.Error("errmon: could not deliver "+what, "hash", hash, "attempts", alertAttempts, "err", err)
}

func (a *alerts) try(send func(context.Context) error) (err error) {
	ctx, cancel := context.WithTimeout(a.m.base, a.m.cfg.NotifyTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %s", messageOf(r))
		}
	}()
	return send(ctx)
}
