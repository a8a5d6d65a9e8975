package errmon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"log/slog"
	"net/mail"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	texttemplate "text/template"
	"time"

	"github.com/errmon/errmon/internal/store"
	"github.com/errmon/errmon/internal/text"
)

// Notifier delivers an alert, for instance by email (see
// [github.com/errmon/errmon/mail]) or to a chat webhook (see
// [github.com/errmon/errmon/webhook]). Notify is called
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
	From string
	To   []string
	// Subject is one line of at most 200 bytes:
	// "[SubjectPrefix] [New] [METHOD] route ExceptionName: normalized
	// message", with [Regression], [Escalating: 100 occurrences] or
	// [Ongoing] in place of [New] (see [Monitor.Subject]); a digest's is
	// "[SubjectPrefix] [Digest] 37 new errors".
	Subject string
	Text    string // plain-text body, readable on its own
	HTML    string // HTML body, the same content
	// Error is the error the alert is about, as read back after the write
	// that triggered it, with Count set to the count of that write. For a
	// digest it is the first error the digest lists.
	Error  *ErrorRecord
	Reason Reason // why it was sent: ReasonNew, ReasonRegression, ReasonThreshold, ReasonOngoing or ReasonDigest
	Link   string // the dashboard's detail page (a digest: the list), when Config.BaseURL is set
	// ThreadID identifies the conversation of all the alerts of one error:
	// the Message-ID of its first alert, "<errmon.{hash}@{domain}>", the
	// domain taken from Config.EmailSender. The mail Notifier sends it as
	// In-Reply-To and References on every later alert, so mail clients
	// thread them. Empty for a digest.
	ThreadID string
	// MessageID is this alert's own id, in the same form: for the first
	// alert of an error (Reason "new") it is ThreadID, for any other it is
	// unique. Retries of one alert keep it.
	MessageID string
	// Threshold is the count that Reason "threshold" passed.
	Threshold int64
	// Digest lists the new errors of a digest (Reason "digest"), at most
	// 100 of them; DigestTotal counts them all. In [Stats], a digest
	// counts as the DigestTotal alerts it stands for (sent, failed or
	// skipped together).
	Digest      []DigestItem
	DigestTotal int
}

// DigestItem is one new error of a digest.
type DigestItem struct {
	Hash    string
	Subject string // the subject its own alert would have had
	Count   int64  // its count when it was written
	Link    string // its dashboard page, when Config.BaseURL is set
}

// maxDigestItems caps the errors a digest lists; the others are counted.
const maxDigestItems = 100

// Ticketing raises a ticket in an issue tracker. RaiseTicket is called once
// for each new error and each regression, however many processes see it,
// off the request path, with the same retries as alerts; its failures are
// logged, never fatal. A Ticketing that ignores its context is bounded as
// a [Notifier] is, on its own: at most one abandoned call of it runs at a
// time, and tickets are dropped (counted in Stats.AlertsSkipped, logged
// once) while that call still runs after a wait of NotifyTimeout.
// Tickets are never digested.
type Ticketing interface {
	RaiseTicket(ctx context.Context, rec *ErrorRecord) error
}

// Reason says why an alert was sent, in [Notification.Reason].
type Reason string

// Reasons for an alert.
const (
	ReasonNew        Reason = "new"        // the first occurrence of an error
	ReasonRegression Reason = "regression" // a resolved error happened again
	ReasonThreshold  Reason = "threshold"  // an open error's count passed one of Config.NotifyThresholds
	ReasonOngoing    Reason = "ongoing"    // an open error still occurs, Config.NotifyEvery after its last alert
	ReasonDigest     Reason = "digest"     // more new errors than Config.DigestThreshold in one Config.DigestWindow
)

// ErrPermanent marks a delivery failure that retrying cannot fix (an SMTP
// server's 5xx refusal, a malformed address). A Notifier or Ticketing
// returns an error wrapping it (errors.Is) to have it logged at once
// instead of retried.
var ErrPermanent = errors.New("permanent failure")

// writtenError is one error of a written chunk, with what the database
// said about its write.
type writtenError struct {
	p   *pending
	res store.Result
}

// afterWrite decides, from what the database said about the writes of one
// chunk, which errors this process alerts on and raises tickets for. The
// database decides (the upsert's write token for new errors and
// regressions, the count before and after the write for thresholds, a
// conditional UPDATE for NotifyEvery), so that exactly one of many
// processes does it. A chunk costs at most two statements more, whatever
// its size (the alerted errors' notification times, then their rows read
// back), plus, when NotifyEvery is on, one conditional UPDATE per error
// that the write found due a reminder (the others cost nothing more).
//
// A muted error is never alerted on. A snoozed one is not either, until
// its snooze runs out (its time passed, or its count reached): then one
// process, decided by a conditional UPDATE (store.ClaimSnoozeEnd), sends
// one alert (ReasonOngoing, or ReasonRegression for a regression) and the
// snooze ends. Tickets are raised as ever.
func (m *Monitor) afterWrite(items []writtenError) {
	notify := m.cfg.SendNotification && m.cfg.Notifier != nil
	type decision struct {
		writtenError
		reason    Reason
		threshold int64
		ticket    bool
	}
	var (
		alerted []string   // hashes alerted now: their NotifyEvery interval starts
		every   []decision // open errors that may be due a reminder
		woken   []decision // snoozed errors whose snooze ran out
		act     []decision // alerts and tickets to send
	)
	for _, it := range items {
		d := decision{writtenError: it}
		switch {
		case it.res.Created:
			d.reason = ReasonNew
		case it.res.Reopened:
			d.reason = ReasonRegression
		default:
			// Counts are atomic in the database: the ranges (before, after]
			// of all writes never overlap, so one write crosses each
			// threshold.
			before := it.res.Count - it.p.count
			for _, t := range m.cfg.NotifyThresholds {
				if before < t && t <= it.res.Count && t > d.threshold {
					d.reason, d.threshold = ReasonThreshold, t
				}
			}
		}
		if !notify {
			d.reason = ""
		}
		d.ticket = m.cfg.Ticketing != nil && (it.res.Created || it.res.Reopened)
		snoozed, over := store.Snoozed(it.res, time.Now())
		switch {
		case !notify:
		case it.res.Muted, it.res.Resolved:
			// Muted: counted, never alerted on. Resolved after the write:
			// resolved in the next release, recurring in its old release.
			d.reason = ""
		case snoozed && over:
			if d.reason != ReasonRegression {
				d.reason = ReasonOngoing
			}
			woken = append(woken, d)
			continue // decided below
		case snoozed:
			d.reason = ""
		}
		quiet := it.res.Muted || it.res.Resolved || snoozed
		switch {
		case d.reason != "":
			alerted = append(alerted, it.p.last.Hash)
		case notify && !quiet && m.cfg.NotifyEvery > 0 && due(it.res.LastNotifiedAt, time.Now(), m.cfg.NotifyEvery):
			every = append(every, d)
			continue // decided below
		}
		if d.reason != "" || d.ticket {
			act = append(act, d)
		}
	}
	if len(alerted) == 0 && len(every) == 0 && len(woken) == 0 && len(act) == 0 {
		return // the common case: repeats of open errors cost nothing more
	}
	ctx, cancel := context.WithTimeout(m.base, flushTimeout)
	defer cancel()
	now := store.DBTime(time.Now())
	if len(alerted) > 0 {
		if err := m.store.NoteNotified(ctx, alerted, now); err != nil {
			m.log.Warn("errmon: could not note alerts", "errors", len(alerted), "err", err)
		}
	}
	for _, d := range woken {
		hash := d.p.last.Hash
		ok, err := m.store.ClaimSnoozeEnd(ctx, hash, now)
		if err != nil {
			m.log.Warn("errmon: could not end a snooze", "hash", hash, "err", err)
		}
		if !ok || err != nil {
			d.reason = "" // another process ends it (or it was changed meanwhile)
		}
		if d.reason != "" || d.ticket {
			act = append(act, d)
		}
	}
	for _, d := range every {
		hash := d.p.last.Hash
		ok, err := m.store.ClaimNotification(ctx, hash, now, m.cfg.NotifyEvery)
		if err != nil {
			m.log.Warn("errmon: could not claim a repeat alert", "hash", hash, "err", err)
			continue
		}
		if ok {
			d.reason = ReasonOngoing
		}
		if d.reason != "" || d.ticket {
			act = append(act, d)
		}
	}
	if len(act) == 0 {
		return
	}
	ids := make([]uint, len(act))
	for i, d := range act {
		ids[i] = d.res.ID
	}
	recs, err := m.store.Records(ctx, ids)
	if err != nil {
		m.log.Error("errmon: could not read errors back to alert on them", "errors", len(act), "err", err)
		return
	}
	byID := make(map[uint]*ErrorRecord, len(recs))
	for i := range recs {
		byID[recs[i].ID] = &recs[i]
	}
	for _, d := range act {
		found, ok := byID[d.res.ID]
		if !ok {
			m.log.Error("errmon: an error to alert on was deleted meanwhile", "hash", d.p.last.Hash, "reason", d.reason)
			continue
		}
		rec := *found
		if d.res.Count > 0 {
			// Other writes (other processes) may have counted more since:
			// the alert tells the count of the write that decided it, so
			// that its headline ("passed 10; 35 now") and its count agree.
			rec.Count = d.res.Count
		}
		if d.res.Users > 0 {
			rec.Users, rec.UsersScale = d.res.Users, d.res.UsersScale
		}
		if d.reason != "" {
			m.alerts.enqueue(alertJob{note: m.compose(&rec, d.reason, d.threshold)})
		}
		if d.ticket {
			t := rec
			m.alerts.enqueue(alertJob{ticket: &t})
		}
	}
}

// Link returns the dashboard address of an error, from Config.BaseURL and
// Config.URLPrefix, or "" when BaseURL is not set.
func (m *Monitor) link(hash string) string {
	if m.cfg.BaseURL == "" {
		return ""
	}
	return m.dashboardLink() + "/" + hash
}

// dashboardLink is the dashboard's list page without its final slash, or
// "" when BaseURL is not set.
func (m *Monitor) dashboardLink() string {
	if m.cfg.BaseURL == "" {
		return ""
	}
	return strings.TrimRight(m.cfg.BaseURL, "/") + strings.TrimRight(m.cfg.URLPrefix, "/")
}

// maxSubjectBytes caps an alert's subject line. (The other bounds of an
// alert are in alertview.go.)
const maxSubjectBytes = 200

// reasonTag is the bracketed tag of an alert's subject that says why it was
// sent.
func reasonTag(reason Reason, threshold int64) string {
	switch reason {
	case ReasonNew:
		return "New"
	case ReasonRegression:
		return "Regression"
	case ReasonThreshold:
		return "Escalating: " + strconv.FormatInt(threshold, 10) + " occurrences"
	case ReasonOngoing:
		return "Ongoing"
	case ReasonDigest:
		return "Digest"
	}
	return ""
}

// subject returns an alert's subject for rec: "[SubjectPrefix] [tag]
// [METHOD] route ExceptionName: normalized message". The prefix is left out
// when empty, the method and route when unknown (the path stands in for a
// missing route); the message is the one stored, normalized as for
// grouping ([NormalizeMessage]), so that every alert of one error has the
// same subject but for its reason tag. It is one line of at most
// maxSubjectBytes.
func (m *Monitor) subject(rec *ErrorRecord, tag string) string {
	// Each part is cut first (the row may hold anything): folding,
	// normalizing and sanitizing then cost no more than the subject's size.
	part := func(s string) string { return text.Cut(s, 4*maxSubjectBytes) }
	var subj strings.Builder
	if m.cfg.SubjectPrefix != "" {
		subj.WriteString("[" + part(m.cfg.SubjectPrefix) + "] ")
	}
	if tag != "" {
		subj.WriteString("[" + tag + "] ")
	}
	if rec.Method != "" {
		subj.WriteString("[" + part(rec.Method) + "] ")
	}
	if rec.Route != "" {
		subj.WriteString(part(rec.Route) + " ")
	} else if rec.Path != "" {
		subj.WriteString(part(rec.Path) + " ")
	}
	subj.WriteString(part(rec.ExceptionName))
	if rec.Message != "" {
		subj.WriteString(": " + NormalizeMessage(part(rec.Message)))
	}
	return oneLine(subj.String(), maxSubjectBytes)
}

// compose writes the alert for rec.
func (m *Monitor) compose(rec *ErrorRecord, reason Reason, threshold int64) *Notification {
	n := &Notification{
		From:      m.cfg.EmailSender,
		To:        append([]string(nil), m.cfg.RecipientEmail...),
		Subject:   m.subject(rec, reasonTag(reason, threshold)),
		Error:     rec,
		Reason:    reason,
		Link:      m.link(alertCap(rec.Hash, alertHashBytes)),
		Threshold: threshold,
	}
	n.ThreadID = m.threadID(rec.Hash)
	if reason == ReasonNew {
		n.MessageID = n.ThreadID
	} else {
		n.MessageID = m.uniqueMessageID(rec.Hash)
	}
	data := alertData(rec, reason, threshold, n.Link)
	data.Title = n.Subject
	data.Frames = data.Frames.withSource(m.sources.lookup, m.sourceLink) // sourcecontext.go
	n.Text, n.HTML = renderBodies(alertText, alertHTML, data, n.Subject, "alert")
	return n
}

// renderBodies executes the text and HTML templates of a notification.
// A text template that fails still gives the subject and the failure; an
// HTML one that fails gives no HTML part.
func renderBodies(text *texttemplate.Template, html *htmltemplate.Template, data any, subject, what string) (string, string) {
	var t, h bytes.Buffer
	if err := text.Execute(&t, data); err != nil {
		t.Reset()
		fmt.Fprintf(&t, "%s\n\n(the %s could not be composed: %v)\n", subject, what, err)
	}
	if err := html.Execute(&h, data); err != nil {
		h.Reset()
	}
	return t.String(), h.String()
}

// composeDigest writes the digest of total new errors, items listing the
// first of them and first the first error.
func (m *Monitor) composeDigest(first *ErrorRecord, items []DigestItem, total int) *Notification {
	word := "errors"
	if total == 1 {
		word = "error"
	}
	tag := "[" + reasonTag(ReasonDigest, 0) + "] " + strconv.Itoa(total) + " new " + word
	subject := tag
	if m.cfg.SubjectPrefix != "" {
		subject = "[" + text.Cut(m.cfg.SubjectPrefix, 4*maxSubjectBytes) + "] " + tag
	}
	n := &Notification{
		From:        m.cfg.EmailSender,
		To:          append([]string(nil), m.cfg.RecipientEmail...),
		Subject:     oneLine(subject, maxSubjectBytes),
		Error:       first,
		Reason:      ReasonDigest,
		Digest:      items,
		DigestTotal: total,
		MessageID:   m.uniqueMessageID("digest"),
	}
	if l := m.dashboardLink(); l != "" {
		n.Link = l + "/"
	}
	data := digestView{
		Title:    n.Subject,
		Headline: fmt.Sprintf("%d more new %s within %s", total, word, humanDuration(m.cfg.DigestWindow)),
		Items:    items,
		More:     total - len(items),
		Link:     n.Link,
		Single:   m.cfg.DigestThreshold,
	}
	n.Text, n.HTML = renderBodies(digestText, digestHTML, data, n.Subject, "digest")
	return n
}

// humanDuration says d in words for a digest: "1 minute", "90s".
func humanDuration(d time.Duration) string {
	switch {
	case d == time.Minute:
		return "1 minute"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " minutes"
	}
	return d.String()
}

// digestView is what the digest templates show.
type digestView struct {
	Title, Headline, Link string
	Items                 []DigestItem
	More                  int
	Single                int
}

var digestText = texttemplate.Must(texttemplate.New("digest-text").Parse(`{{.Headline}}
The first {{.Single}} of the window were announced one by one; these were held back for this digest.
{{with .Link}}
Open the dashboard: {{.}}
{{end}}
{{range .Items}}- {{.Subject}} (count {{.Count}})
{{with .Link}}  {{.}}
{{end}}{{end}}{{if .More}}- and {{.More}} more: see the dashboard
{{end}}`))

// mailHead opens the HTML part of an alert and of a digest: lang, a
// viewport for phones, the title, the page's frame and its headline.
const mailHead = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>{{.Title}}</title>
</head>
<body style="margin:0;padding:16px;font-family:system-ui,-apple-system,Segoe UI,sans-serif;color:#1f2328;font-size:15px;line-height:1.4">
<div style="max-width:720px;margin:0 auto">
<h2 style="margin:0 0 8px;font-size:20px">{{.Headline}}</h2>
`

var digestHTML = htmltemplate.Must(htmltemplate.New("digest-html").Parse(mailHead + `<p style="margin:0 0 12px;color:#59636e">The first {{.Single}} of the window were announced one by one; these were held back for this digest.</p>
{{with .Link}}<p style="margin:0 0 16px"><a href="{{.}}" style="display:inline-block;padding:10px 18px;background:#0969da;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Open the dashboard</a></p>
{{end}}<ul style="padding-left:20px">
{{range .Items}}<li style="margin:0 0 6px;overflow-wrap:anywhere">{{if .Link}}<a href="{{.Link}}">{{.Subject}}</a>{{else}}{{.Subject}}{{end}} <span style="color:#59636e">(count {{.Count}})</span></li>
{{end}}{{if .More}}<li>and {{.More}} more: see the dashboard</li>
{{end}}</ul>
</div>
</body>
</html>
`))

// messageDomain is the domain of alerts' Message-IDs: Config.EmailSender's,
// else the host's name, else "errmon.invalid".
func (m *Monitor) messageDomain() string {
	domain := ""
	if a, err := mail.ParseAddress(m.cfg.EmailSender); err == nil {
		if i := strings.LastIndexByte(a.Address, '@'); i >= 0 {
			domain = a.Address[i+1:]
		}
	}
	if domain == "" {
		domain, _ = os.Hostname()
	}
	if domain = idPart(domain, ".-"); domain == "" {
		domain = "errmon.invalid"
	}
	return domain
}

// idPart keeps the letters, digits and the extra bytes of s (at most 128
// bytes): what a Message-ID may hold without quoting.
func idPart(s, extra string) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < 128; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(extra, c) >= 0 {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// threadID is the stable Message-ID of the first alert of the error hash.
func (m *Monitor) threadID(hash string) string {
	return "<errmon." + idPart(hash, "") + "@" + m.messageDomain() + ">"
}

// uniqueMessageID is a fresh Message-ID for an alert about hash ("digest"
// for a digest).
func (m *Monitor) uniqueMessageID(hash string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "<errmon." + idPart(hash, "") + "." + hex.EncodeToString(b[:]) + "@" + m.messageDomain() + ">"
}

// alertView is what the alert templates show: every text of the record
// capped (see alertview.go), the times and the count as they are.
type alertView struct {
	Rec       *ErrorRecord
	Title     string
	Headline  string
	Link      string
	Exception string
	Message   string
	Method    string
	Path      string
	Route     string
	Host      string
	Hash      string
	Count     int64
	Users     string // "" or the users it hit: "12", "about 4100 (estimated)"
	Frames    alertFrames
	Request   []alertRow
	Context   string
}

func alertData(rec *ErrorRecord, reason Reason, threshold int64, link string) alertView {
	headline := "An error"
	switch reason {
	case ReasonNew:
		headline = "A new error"
	case ReasonRegression:
		headline = "A resolved error happened again"
	case ReasonThreshold:
		headline = fmt.Sprintf("An open error passed %d occurrences; %d now", threshold, rec.Count)
	case ReasonOngoing:
		headline = "An open error keeps happening"
	}
	return alertView{
		Rec:       rec,
		Headline:  headline,
		Link:      link,
		Exception: alertCap(rec.ExceptionName, store.MaxNameBytes),
		Message:   alertCap(rec.Message, alertMessageBytes),
		Method:    alertCap(rec.Method, store.MaxMethodBytes),
		Path:      alertCap(rec.Path, store.MaxPathBytes),
		Route:     alertCap(rec.Route, store.MaxPathBytes),
		Host:      alertCap(rec.Host, store.MaxHostBytes),
		Hash:      alertCap(rec.Hash, alertHashBytes),
		Count:     rec.Count,
		Users:     alertUsers(rec),
		Frames:    alertStack(rec.Traceback),
		Request:   alertRequest(rec.RequestData),
		Context:   alertContext(rec.RequestData), // the HTML part is escaped by its template
	}
}

// alertUsers says how many users rec hit, for an alert: "" when no user
// was named.
func alertUsers(rec *ErrorRecord) string {
	switch {
	case rec.Users <= 0:
		return ""
	case rec.UsersEstimated():
		return "about " + strconv.FormatInt(rec.Users, 10) + " (estimated)"
	}
	return strconv.FormatInt(rec.Users, 10)
}

// oneLine folds s onto one line of at most max bytes.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	return sanitize(s, max)
}

var alertText = texttemplate.Must(texttemplate.New("text").Parse(`{{.Headline}}: {{.Exception}}{{with .Message}}: {{.}}{{end}}
{{with .Link}}
Open it on the dashboard: {{.}}
{{end}}
Where:      {{if or .Method .Path}}{{with .Method}}{{.}} {{end}}{{.Path}}{{with .Route}} (route {{.}}){{end}}{{with .Host}} on {{.}}{{end}}{{else}}recorded outside a request{{end}}
Count:      {{.Count}}
{{with .Users}}Users:      {{.}}
{{end}}First seen: {{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}
Last seen:  {{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}
Hash:       {{.Hash}}

Traceback (newest call first{{if .Frames.Folded}}; library frames counted{{end}}):
{{.Frames.Text}}
{{with .Request}}Request (secrets masked):
{{range .}}  {{printf "%-16s" (print .Name ":")}} {{.Value}}
{{end}}
{{end}}Request context (secrets masked):
{{.Context}}
`))

var alertHTML = htmltemplate.Must(htmltemplate.New("html").Parse(mailHead + `<p style="font-size:16px;margin:0 0 12px;overflow-wrap:anywhere"><b>{{.Exception}}</b>{{with .Message}}: {{.}}{{end}}</p>
{{with .Link}}<p style="margin:0 0 16px"><a href="{{.}}" style="display:inline-block;padding:10px 18px;background:#0969da;color:#ffffff;text-decoration:none;border-radius:6px;font-weight:600">Open it on the dashboard</a></p>
{{end}}<table style="border-collapse:collapse;width:100%">
<tr><td style="padding:2px 12px 2px 0;color:#59636e;white-space:nowrap;vertical-align:top">Where</td><td style="overflow-wrap:anywhere">{{if or .Method .Path}}{{with .Method}}{{.}} {{end}}{{.Path}}{{with .Route}} (route {{.}}){{end}}{{with .Host}} on {{.}}{{end}}{{else}}recorded outside a request{{end}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Count</td><td>{{.Count}}</td></tr>
{{with .Users}}<tr><td style="padding:2px 12px 2px 0;color:#59636e">Users</td><td>{{.}}</td></tr>
{{end}}<tr><td style="padding:2px 12px 2px 0;color:#59636e;white-space:nowrap">First seen</td><td>{{.Rec.CreatedOn.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e;white-space:nowrap">Last seen</td><td>{{.Rec.LastSeen.UTC.Format "2006-01-02 15:04:05 MST"}}</td></tr>
<tr><td style="padding:2px 12px 2px 0;color:#59636e">Hash</td><td style="overflow-wrap:anywhere"><code>{{.Hash}}</code></td></tr>
</table>
<h3 style="font-size:16px;margin:20px 0 6px">Traceback</h3>
{{if .Frames.Folded}}<div style="background:#f6f8fa;padding:8px;font-family:ui-monospace,monospace;font-size:13px;overflow-wrap:anywhere">
{{range .Frames.List}}{{if .Fold}}<div style="color:#59636e;padding:2px 0">+ {{.Fold}}</div>
{{else}}<div style="padding:2px 0"><b>{{.Function}}</b>{{if .Location}}<br>{{if .Link}}<a href="{{.Link}}" style="color:#0969da">{{.Location}}</a>{{else}}<span style="color:#59636e">{{.Location}}</span>{{end}}{{end}}{{with .Source}}
<pre style="margin:4px 0 0;padding:6px;background:#ffffff;border:1px solid #d1d9e0;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere">{{range .}}{{if .Current}}<b style="background:#fff8c5">{{printf "%5d" .Num}} | {{.Text}}</b>{{else}}<span style="color:#59636e">{{printf "%5d" .Num}} |</span> {{.Text}}{{end}}
{{end}}</pre>{{end}}</div>
{{end}}{{end}}</div>
{{else}}<pre style="background:#f6f8fa;padding:8px;overflow:auto;font-size:13px">{{.Frames.Text}}</pre>
{{end}}{{with .Request}}<h3 style="font-size:16px;margin:20px 0 6px">Request (secrets masked)</h3>
<table style="border-collapse:collapse;width:100%">
{{range .}}<tr><td style="padding:2px 12px 2px 0;color:#59636e;white-space:nowrap;vertical-align:top">{{.Name}}</td><td style="overflow-wrap:anywhere">{{.Value}}</td></tr>
{{end}}</table>
{{end}}<h3 style="font-size:16px;margin:20px 0 6px">Request context (secrets masked)</h3>
<pre style="background:#f6f8fa;padding:8px;overflow:auto;font-size:13px;white-space:pre-wrap;overflow-wrap:anywhere">{{.Context}}</pre>
</div>
</body>
</html>
`))

// alertJob is one delivery: an alert, a ticket, or a barrier for Flush.
type alertJob struct {
	note    *Notification
	ticket  *ErrorRecord
	barrier chan struct{}
}

// alerts is how many alerts j counts as in Stats: a digest counts as the
// alerts it stands for (sent, failed or skipped together), anything else
// as one.
func (j alertJob) alerts() int64 {
	if j.note != nil && j.note.Reason == ReasonDigest && j.note.DigestTotal > 0 {
		return int64(j.note.DigestTotal)
	}
	return 1
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
	digest         digest
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
	switch {
	case j.ticket != nil:
		return "ticket"
	case j.note != nil && j.note.Reason == ReasonDigest:
		return "digest"
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
	defer a.digest.stop()
	for {
		select {
		case <-a.m.stop:
			a.abandon()
			return
		case <-a.digest.due():
			a.sendDigest()
		case j := <-a.jobs:
			switch {
			case j.barrier != nil:
				// Flush: a digest waiting for its window's end goes now.
				a.sendDigest()
				close(j.barrier)
			case j.note != nil:
				if a.hold(j.note) {
					continue
				}
				a.sendNote(j)
			case j.ticket != nil:
				a.deliver(&a.tickets, j, func(ctx context.Context) error {
					rec := *j.ticket
					return a.m.cfg.Ticketing.RaiseTicket(ctx, &rec)
				})
			}
		}
	}
}

// sendNote delivers an alert through the Notifier's lane.
func (a *alerts) sendNote(j alertJob) {
	a.deliver(&a.notes, j, func(ctx context.Context) error {
		// Each attempt gets its own copy: an abandoned attempt may still be
		// running.
		note := *j.note
		note.To = append([]string(nil), j.note.To...)
		note.Digest = append([]DigestItem(nil), j.note.Digest...)
		if j.note.Error != nil {
			rec := *j.note.Error
			note.Error = &rec
		}
		return a.m.cfg.Notifier.Notify(ctx, &note)
	})
}

// digest is the state of the digest: the new-error alerts of the current
// window, and those held back for the digest. Only run's goroutine uses
// it.
type digest struct {
	start time.Time    // the start of the current window
	news  int          // new-error alerts in the window
	items []DigestItem // held back, at most maxDigestItems
	total int          // held back, listed or not
	first *ErrorRecord // the first error held back
	timer *time.Timer  // fires at the window's end while alerts are held
}

// due is the channel that fires at the end of the window while alerts are
// held back (nil otherwise: it never fires).
func (d *digest) due() <-chan time.Time {
	if d.timer == nil {
		return nil
	}
	return d.timer.C
}

func (d *digest) stop() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// hold reports whether n is held back for the digest: a new-error alert
// past the first Config.DigestThreshold of the current Config.DigestWindow.
// Other reasons are never held.
func (a *alerts) hold(n *Notification) bool {
	cfg := &a.m.cfg
	if n.Reason != ReasonNew || cfg.DigestThreshold < 0 {
		return false
	}
	d := &a.digest
	now := time.Now()
	if d.start.IsZero() || now.Sub(d.start) >= cfg.DigestWindow {
		if d.total > 0 {
			a.sendDigest() // its timer is late: the window is over
		}
		d.start, d.news = now, 0
	}
	d.news++
	if d.news <= cfg.DigestThreshold {
		return false
	}
	if d.total == 0 {
		rec := *n.Error
		d.first = &rec
		d.timer = time.NewTimer(max(d.start.Add(cfg.DigestWindow).Sub(now), 0))
	}
	d.total++
	if len(d.items) < maxDigestItems {
		// The digest's subject has the prefix: each line leaves it out.
		subject := strings.TrimPrefix(n.Subject, "["+text.Cut(cfg.SubjectPrefix, 4*maxSubjectBytes)+"] ")
		d.items = append(d.items, DigestItem{Hash: n.Error.Hash, Subject: subject, Count: n.Error.Count, Link: n.Link})
	}
	return true
}

// sendDigest delivers the alerts held back as one digest, if any.
func (a *alerts) sendDigest() {
	d := &a.digest
	d.stop()
	if d.total == 0 {
		return
	}
	note := a.m.composeDigest(d.first, d.items, d.total)
	d.items, d.total, d.first = nil, 0, nil
	a.sendNote(alertJob{note: note})
}

// abandon logs the jobs still queued when the monitor stops, and the
// alerts held back for a digest.
func (a *alerts) abandon() {
	if d := &a.digest; d.total > 0 {
		hashes := make([]string, 0, min(len(d.items), 10))
		for _, it := range d.items[:min(len(d.items), 10)] {
			hashes = append(hashes, it.Hash)
		}
		a.m.stats.alertsFailed.Add(int64(d.total))
		a.log.Error("errmon: monitor closed before this digest was delivered",
			"errors", d.total, "hashes", strings.Join(hashes, ","))
		d.items, d.total, d.first = nil, 0, nil
	}
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
				a.m.stats.alertsSent.Add(j.alerts())
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
	a.m.stats.alertsFailed.Add(j.alerts())
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
	a.skipped.Add(j.alerts())
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
				done <- fmt.Errorf("%w: panic: %s", ErrPermanent, a.m.mask.Text(messageOf(r)))
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

// due reports whether an error last alerted on at last (nil: never) is due
// a NotifyEvery reminder at now, as the write read it; the conditional
// UPDATE then decides which process sends it.
func due(last *time.Time, now time.Time, every time.Duration) bool {
	return last == nil || !last.After(now.Add(-every))
}
