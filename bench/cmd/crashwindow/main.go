// Command crashwindow measures the occurrences a SIGKILL costs errmon: a
// child process records a storm of distinct and repeated errors at a known
// rate into a database, and is killed with SIGKILL at a random moment; the
// parent opens the database and compares the stored counts with what the
// child said (through a pipe) it had recorded. It prints each run and the
// loss in milliseconds of events; errmon promises at most FlushInterval.
//
//	go run ./cmd/crashwindow                      # SQLite, 10 runs of a 3 s storm
//	go run ./cmd/crashwindow -db postgres -runs 5 # ERRMON_TEST_PG_DSN's server
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/errmon/errmon/bench/crashwindow"
)

func main() {
	if os.Getenv(crashwindow.ChildEnv) != "" {
		if err := crashwindow.ChildMain(os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "crashwindow child:", err)
			os.Exit(1)
		}
		return
	}
	var (
		db       = flag.String("db", "sqlite", "sqlite or postgres (ERRMON_TEST_PG_DSN)")
		runs     = flag.Int("runs", 10, "storms, each killed once")
		rate     = flag.Int("rate", 2000, "events per second: every other one a new error, the others from the pool")
		storm    = flag.Duration("storm", 3*time.Second, "storm length; the kill comes between 1s and the end")
		pool     = flag.Int("pool", 1000, "repeated errors")
		interval = flag.Duration("interval", time.Second, "errmon's FlushInterval")
	)
	flag.Parse()
	exe, err := os.Executable()
	if err != nil {
		fail(err)
	}
	dir, err := os.MkdirTemp("", "crashwindow")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	var all []crashwindow.Run
	for i := range *runs {
		spec := crashwindow.Spec{DB: *db, Rate: *rate, Duration: *storm, Pool: *pool, Interval: *interval}
		drop := func() {}
		if *db == "postgres" {
			base := os.Getenv("ERRMON_TEST_PG_DSN")
			if base == "" {
				fail(fmt.Errorf("-db postgres needs ERRMON_TEST_PG_DSN"))
			}
			if spec.DSN, drop, err = crashwindow.NewPostgresSchema(base); err != nil {
				fail(err)
			}
		} else {
			spec.DSN = crashwindow.NewSQLite(dir)
		}
		r, err := crashwindow.Measure(context.Background(), exe, nil, spec, time.Second, *storm-200*time.Millisecond)
		drop()
		if err != nil {
			fail(err)
		}
		all = append(all, r)
		fmt.Printf("run %2d: killed at %5.0f ms, %6d recorded (%4.0f/s), %6d stored, %5d lost = %4.0f ms of events, %d double-counted\n",
			i+1, float64(r.KilledAt.Milliseconds()), r.Recorded, r.Rate, r.Stored, r.Lost, r.LostMS, r.Over)
	}
	s := crashwindow.Summarize(all)
	fmt.Printf("%s, %d events/s (half new errors, half from %d repeated), FlushInterval %v, %d runs: loss median %.0f ms, mean %.0f ms, max %.0f ms of events (%.0f%% of the recorded at most); %d double-counted\n",
		*db, *rate, *pool, *interval, s.Runs, s.MedianMS, s.MeanMS, s.MaxMS, 100*s.MaxLostFraction, s.DoubleCounted)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashwindow:", err)
	os.Exit(1)
}
