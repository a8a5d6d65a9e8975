// Command benchtable reads the output of `go test -bench` (several -count
// runs) and prints errmon's performance table in Markdown: the median of
// each figure, the ratios the targets are about, and whether each target is
// met.
//
//	go run ./cmd/benchtable results/bench-*.txt
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// samples holds, per benchmark name (without the -GOMAXPROCS suffix), the
// values seen for each unit.
type samples map[string]map[string][]float64

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, s samples) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		if s[name] == nil {
			s[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			s[name][f[i+1]] = append(s[name][f[i+1]], v)
		}
	}
	return sc.Err()
}

func median(vs []float64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	vs = slices.Clone(vs)
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2], true
	}
	return (vs[n/2-1] + vs[n/2]) / 2, true
}

func (s samples) get(name, unit string) (float64, bool) {
	return median(s[name][unit])
}

// best is the lowest time (or, for a rate, the highest) of the runs: on a
// shared machine, other work only ever adds time, so the best run is the
// steadiest estimate of the code's own cost.
func (s samples) best(name, unit string) (float64, bool) {
	vs := s[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	if strings.HasSuffix(unit, "/s") {
		return slices.Max(vs), true
	}
	return slices.Min(vs), true
}

func num(v float64, ok bool) string {
	if !ok {
		return "–"
	}
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func ratio(a, b float64, okA, okB bool) (float64, string) {
	if !okA || !okB || b == 0 {
		return 0, "–"
	}
	r := a / b
	return r, strconv.FormatFloat(r, 'f', 2, 64) + "x"
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func main() {
	s := samples{}
	if len(os.Args) < 2 {
		if err := parse(os.Stdin, s); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, path := range os.Args[1:] {
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		err = parse(f, s)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}

	fmt.Println("#### Request path (medians of the runs; cpu-ns/op is the process's CPU time per request, which other work on a shared machine does not stretch as it does wall time)")
	fmt.Println()
	fmt.Println("| Benchmark | Middleware | cpu-ns/op | ns/op | B/op | allocs/op | vs gin (cpu) | vs gin (wall) | Target | |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
	for _, bench := range []string{"BenchmarkHappy", "BenchmarkHappyPOST", "BenchmarkHappyUpload", "BenchmarkPanic"} {
		gin := bench + "/mw=gin"
		gcpu, gcok := s.get(gin, "cpu-ns/op")
		gns, gok := s.get(gin, "ns/op")
		gal, galok := s.get(gin, "allocs/op")
		mws := []string{"none", "gin", "errmon", "sentry"}
		if bench == "BenchmarkPanic" {
			mws = []string{"gin", "errmon", "sentry+gin"}
		}
		for _, mw := range mws {
			name := bench + "/mw=" + mw
			ns, ok := s.get(name, "ns/op")
			if !ok {
				continue
			}
			cpu, cok := s.get(name, "cpu-ns/op")
			bop, bok := s.get(name, "B/op")
			al, alok := s.get(name, "allocs/op")
			r, rs := ratio(cpu, gcpu, cok, gcok)
			_, rws := ratio(ns, gns, ok, gok)
			target, met := "", ""
			switch {
			case mw == "errmon" && bench != "BenchmarkPanic":
				target = "≤ 1.05x gin, same allocs"
				met = verdict(cok && gcok && r <= 1.05 && alok && galok && al == gal)
			case mw == "errmon":
				target = "≤ 2x gin"
				met = verdict(cok && gcok && r <= 2)
			case mw == "sentry" && bench != "BenchmarkHappyUpload": // the upload is dominated by the copy
				en, eok := s.get(bench+"/mw=errmon", "cpu-ns/op")
				target = "errmon faster"
				met = verdict(eok && cok && en < cpu)
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				strings.TrimPrefix(bench, "Benchmark"), mw, num(cpu, cok), num(ns, ok), num(bop, bok), num(al, alok), rs, rws, target, met)
		}
	}

	fmt.Println()
	fmt.Println("#### Storms (100,000 occurrences from 64 goroutines, SQLite, flush every 100ms; counts checked exactly)")
	fmt.Println()
	fmt.Println("| Benchmark | ns/event | events per upsert statement | upsert statements | SQL statements | statements per upsert | peak heap MB | dropped |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, name := range []string{"BenchmarkStorm/errors=1", "BenchmarkStorm/errors=10000", "BenchmarkStormFull"} {
		if _, ok := s[name]; !ok {
			continue
		}
		dropped := "0"
		if v, ok := s.get(name, "dropped"); ok {
			dropped = num(v, ok)
		}
		label := strings.TrimPrefix(name, "Benchmark")
		if name == "BenchmarkStormFull" {
			label = "StormFull (10,000 new errors, MaxPending 100, writer idle)"
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", label,
			num(s.get(name, "ns/event")), num(s.get(name, "events/upsert")), num(s.get(name, "upserts")),
			num(s.get(name, "stmts")), num(s.get(name, "stmts/upsert")), num(s.get(name, "peak-heap-MB")), dropped)
	}

	fmt.Println()
	fmt.Println("#### Ingest throughput (events stored per second, one producer, best and median of the runs; naive = one synchronous upsert per event)")
	fmt.Println()
	fmt.Println("| Database | Load | errmon events/s best | naive events/s best | errmon / naive (best) | errmon / naive (median) | Target ≥ 10x |")
	fmt.Println("|---|---|---:|---:|---:|---:|---|")
	for _, db := range []string{"sqlite", "postgres"} {
		for _, load := range []string{"repeated", "distinct1000", "unique"} {
			base := "BenchmarkIngest/db=" + db + "/load=" + load + "/impl="
			e, eok := s.best(base+"errmon", "events/s")
			n, nok := s.best(base+"naive", "events/s")
			em, emok := s.get(base+"errmon", "events/s")
			nm, nmok := s.get(base+"naive", "events/s")
			if !eok && !nok {
				continue
			}
			r, rs := ratio(e, n, eok, nok)
			_, rms := ratio(em, nm, emok, nmok)
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s |\n", db, load, num(e, eok), num(n, nok), rs, rms, verdict(eok && nok && r >= 10))
		}
	}
}
