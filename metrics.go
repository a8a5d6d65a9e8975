package errmon

import (
	"expvar"
	"sync"
)

// expvarName is the name under which errmon publishes its counters with
// the standard library's expvar (served by expvar.Handler, and at
// /debug/vars by net/http's default mux when the program imports expvar):
// the fields of [Stats], summed over every open Monitor of the process,
// and "Monitors", how many are open. Any metrics agent that reads expvar
// (or a Prometheus expvar collector) picks them up; errmon adds no
// dependency for it. expvar is process-wide by nature: this is the only
// state errmon shares between monitors besides the default monitor.
const expvarName = "errmon"

// openMonitors is what the expvar reports on: the monitors not yet closed.
var openMonitors struct {
	once sync.Once
	mu   sync.Mutex
	set  map[*Monitor]struct{}
}

// publish adds m to what the expvar reports, publishing it the first time.
func publish(m *Monitor) {
	openMonitors.once.Do(func() {
		openMonitors.set = make(map[*Monitor]struct{})
		// A program may have published the name itself: leave it then.
		if expvar.Get(expvarName) == nil {
			expvar.Publish(expvarName, expvar.Func(expvarStats))
		}
	})
	openMonitors.mu.Lock()
	openMonitors.set[m] = struct{}{}
	openMonitors.mu.Unlock()
}

// unpublish removes m, once closed, from what the expvar reports.
func unpublish(m *Monitor) {
	openMonitors.mu.Lock()
	delete(openMonitors.set, m)
	openMonitors.mu.Unlock()
}

// expvarStats is the value of the expvar: Stats summed over the open
// monitors, and their number.
func expvarStats() any {
	openMonitors.mu.Lock()
	list := make([]*Monitor, 0, len(openMonitors.set))
	for m := range openMonitors.set {
		list = append(list, m)
	}
	openMonitors.mu.Unlock()
	var sum Stats
	for _, m := range list {
		s := m.Stats()
		sum.Recorded += s.Recorded
		sum.Stored += s.Stored
		sum.Pending += s.Pending
		sum.PendingErrors += s.PendingErrors
		sum.Dropped += s.Dropped
		sum.FailedFlushes += s.FailedFlushes
		sum.AlertsSent += s.AlertsSent
		sum.AlertsFailed += s.AlertsFailed
		sum.AlertsDiscarded += s.AlertsDiscarded
		sum.AlertsSkipped += s.AlertsSkipped
		sum.Pruned += s.Pruned
		sum.Ignored += s.Ignored
		sum.ClientGone += s.ClientGone
	}
	return struct {
		Monitors int
		Stats
	}{len(list), sum}
}
