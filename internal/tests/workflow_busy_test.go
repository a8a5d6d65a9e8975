package tests

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/errmon/errmon"
)

// TestWorkflowActionsWhileTheWriterCommits: on a SQLite file that the
// writer keeps committing to, the dashboard's actions (which read, then
// write, in one transaction) all succeed: SQLite refuses the write lock at
// once to a transaction that began reading before another connection
// committed, whatever the busy timeout, and the store starts such a
// transaction over instead of answering 500.
func TestWorkflowActionsWhileTheWriterCommits(t *testing.T) {
	tdb := openSQLite(t)
	logs := &syncBuffer{}
	d := newDash(t, tdb, func(c *errmon.Config) { c.Logger = logs.logger() })
	d.m.Record(nil, errors.New("busy target"))
	dashFlush(t, d.m)
	hash := allRecords(t, d.db)[0].Hash

	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			for j := range 20 {
				d.m.Record(nil, errors.New("busy writer "+letters(i*20+j)))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = d.m.Flush(ctx)
			cancel()
		}
	}()
	failed := 0
	for i := range 300 {
		act := []string{"resolve", "unresolve", "mute", "unmute"}[i%4]
		if w := d.do("POST", dashPrefix+"/"+hash+"/"+act, url.Values{}); w.Code != http.StatusSeeOther {
			if failed++; failed <= 3 {
				t.Errorf("POST %s while the writer commits: %d %s", act, w.Code, w.Body)
			}
		}
	}
	close(stop)
	<-done
	if failed > 0 {
		t.Errorf("%d of 300 actions failed; log:\n%s", failed, logs)
	}
	if got := d.get(t, hash); got.Resolved || got.Muted {
		t.Errorf("after an even number of each action: resolved %v, muted %v", got.Resolved, got.Muted)
	}
}
