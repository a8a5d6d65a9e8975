package dashboard

import (
	"context"
	"time"

	"github.com/errmon/errmon/internal/store"
)

// What the pages show of the triage workflow: snoozes, the history of an
// error, and the notices of the workflow's actions.

// eventView is one entry of an error's history as the detail page shows it.
type eventView struct {
	Label   string // "Resolved", "Regressed"...
	Kind    string
	Actor   string
	Release string
	// NextRelease is set on a resolve in the next release: it stays
	// resolved in Release.
	NextRelease bool
	Note        string
	At          time.Time
}

// eventLabels name the kinds of events.
var eventLabels = map[string]string{
	store.EventCreated:   "Created",
	store.EventResolved:  "Resolved",
	store.EventReopened:  "Reopened",
	store.EventRegressed: "Regressed",
	store.EventMuted:     "Muted",
	store.EventUnmuted:   "Unmuted",
	store.EventSnoozed:   "Snoozed",
	store.EventUnsnoozed: "Snooze ended",
	store.EventNoted:     "Note",
}

// history reads the newest events of an error for its page.
func (d *Dashboard) history(ctx context.Context, rec *store.ErrorRecord) ([]eventView, error) {
	evs, err := d.store.History(ctx, rec, store.EventHistory)
	if err != nil {
		return nil, err
	}
	out := make([]eventView, 0, len(evs))
	for _, e := range evs {
		label, ok := eventLabels[e.Kind]
		if !ok {
			label = e.Kind
		}
		out = append(out, eventView{Label: label, Kind: e.Kind, Actor: e.Actor, Release: e.Release,
			NextRelease: e.Kind == store.EventResolved && e.Release != "", Note: e.Note, At: e.At})
	}
	return out, nil
}

// snoozeText says what an error's snooze waits for: "until 2025-01-02
// 15:04 UTC" or "until 1,234 occurrences", or "" when it is not snoozed.
func snoozeText(r *store.ErrorRecord) string {
	switch {
	case r.SnoozedUntil != nil:
		return "until " + r.SnoozedUntil.UTC().Format("2006-01-02 15:04 UTC")
	case r.SnoozeUntilCount > 0:
		return "until " + formatCount(r.SnoozeUntilCount) + " occurrences"
	}
	return ""
}

// workflowNotice is noticeFor for the workflow's actions.
func workflowNotice(key string, n int64) *notice {
	errs := func(n int64) string { return pluralize(n, "error", "errors") }
	one := map[string]string{
		"resolved-next": "Resolved in the next release: it stays resolved while it recurs in its latest release only, and reopens on its first occurrence in any other.",
		"muted":         "Muted: it is still counted, but sends no alert until unmuted.",
		"unmuted":       "Unmuted: it alerts again.",
		"snoozed":       "Snoozed: no alert until the snooze runs out; its next occurrence after that alerts.",
		"unsnoozed":     "Snooze ended: it alerts again.",
		"noted":         "Note added to the history.",
		"unchanged":     "Nothing changed: this action does not apply to the error as it is now.",
	}
	many := map[string]string{
		"resolved-next": " resolved in the next release.",
		"muted":         " muted.",
		"unmuted":       " unmuted.",
		"snoozed":       " snoozed.",
		"unsnoozed":     " no longer snoozed.",
	}
	text, ok := one[key]
	switch {
	case !ok:
		return nil
	case n < 0 || many[key] == "":
		return &notice{Text: text, Error: key == "unchanged"}
	case n == 0:
		return &notice{Text: "No error changed: the action does not apply to the selected ones.", Error: true}
	}
	return &notice{Text: errs(n) + many[key]}
}
