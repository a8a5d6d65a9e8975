package tests

import (
	"encoding/json"
	"errors"
	"expvar"
	"testing"

	"github.com/errmon/errmon"
)

// expvarRead returns the published counters.
func expvarRead(t *testing.T) (monitors int, s errmon.Stats) {
	t.Helper()
	v := expvar.Get("errmon")
	if v == nil {
		t.Fatal(`expvar "errmon" is not published`)
	}
	var got struct {
		Monitors int
		errmon.Stats
	}
	if err := json.Unmarshal([]byte(v.String()), &got); err != nil {
		t.Fatalf(`expvar "errmon": %v in %s`, err, v.String())
	}
	return got.Monitors, got.Stats
}

// TestExpvarCounters: the counters of every open monitor are published
// under one expvar name, and a closed monitor leaves them.
func TestExpvarCounters(t *testing.T) {
	tdb := openSQLite(t)
	m := coalesceMonitor(t, tdb.DB, nil)
	n0, s0 := expvarRead(t)
	if n0 < 1 {
		t.Fatalf("%d monitors published, want at least this one", n0)
	}
	for range 3 {
		m.Record(nil, errors.New("counted in expvar"))
	}
	dashFlush(t, m)
	n1, s1 := expvarRead(t)
	if n1 != n0 || s1.Recorded-s0.Recorded != 3 || s1.Stored-s0.Stored != 3 {
		t.Errorf("expvar after 3 recorded and stored: %d monitors, %+v; before: %d, %+v", n1, s1, n0, s0)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n2, _ := expvarRead(t); n2 != n0-1 {
		t.Errorf("%d monitors published after Close, want %d", n2, n0-1)
	}
}
