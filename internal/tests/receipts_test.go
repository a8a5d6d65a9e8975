package tests

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/internal/store"
	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Lost answers: the database stores a write but the client never hears
// so. The writer must neither count the write twice (retrying it blindly)
// nor lose it (giving it up): it parks the write and asks its receipt.
// The queue's bookkeeping of parked writes is unit-tested in the root
// (receipts_test.go).

// openThroughCutProxy opens tdb's PostgreSQL schema or MySQL database
// through a faultProxy, to be armed to cut a connection.
func openThroughCutProxy(t *testing.T, tdb testDB) (*gorm.DB, *faultProxy) {
	t.Helper()
	var dial gorm.Dialector
	var proxy *faultProxy
	switch tdb.Name {
	case "postgres":
		var schema, user, dbname string
		tdb.DB.Raw("SELECT current_schema()").Scan(&schema)
		tdb.DB.Raw("SELECT current_user").Scan(&user)
		tdb.DB.Raw("SELECT current_database()").Scan(&dbname)
		proxy = startFaultProxy(t, pgAddr(pgDSN(t)))
		host, port, _ := net.SplitHostPort(proxy.addr())
		dial = postgres.Open(fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable search_path=%s connect_timeout=5",
			host, port, user, dbname, schema))
	case "mysql":
		// "user@tcp(host:port)/db?options": the same, through the proxy.
		cfg, err := mysqldriver.ParseDSN(tdb.DSN)
		if err != nil {
			t.Fatal(err)
		}
		proxy = startFaultProxy(t, cfg.Addr)
		cfg.Addr = proxy.addr()
		cfg.Timeout = 5 * time.Second
		dial = mysql.Open(cfg.FormatDSN())
	default:
		t.Fatalf("no proxy for %s", tdb.Name)
	}
	db, err := gorm.Open(dial, quietGorm())
	if err != nil {
		t.Fatalf("open through the proxy: %v", err)
	}
	t.Cleanup(func() {
		if s, err := db.DB(); err == nil {
			s.Close()
		}
	})
	return db, proxy
}

// serverKinds are the databases reached over the network, which a proxy
// can cut.
var serverKinds = []string{"postgres", "mysql"}

// TestLostWriteAnswerCountedOnce cuts the connection right after the
// writer sends COMMIT (the server commits; the answer is lost), instead of
// sending it (nothing is committed, but the writer cannot know), or right
// after it sends the first statement of the transaction (nothing is
// committed, and the writer knows): every occurrence is counted exactly
// once.
func TestLostWriteAnswerCountedOnce(t *testing.T) {
	cases := []struct {
		name    string
		trigger string // what the cut connection sent last
		drop    bool   // the trigger never reaches the server
		parked  bool   // the write may have committed: the writer must check
		stored  bool   // the lost write had been stored
	}{
		{name: "commit answered by the server, answer lost", trigger: "commit", parked: true, stored: true},
		{name: "commit never reached the server", trigger: "commit", drop: true, parked: true},
		{name: "connection lost mid-transaction", trigger: "lost-answer-mid"},
	}
	for _, kind := range serverKinds {
		for _, tc := range cases {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				if kind == "mysql" && tc.trigger != "commit" {
					// Under load, a MariaDB connection sometimes fails on its
					// own ("invalid connection", "unexpected EOF") before the
					// proxy sees the trigger, so the case tests nothing one
					// run in twenty. What it checks (a write known not to
					// have committed is retried) does not depend on the
					// database; the COMMIT cases do, and run on MariaDB.
					t.Skip("flaky on MariaDB: the connection may fail before the cut")
				}
				tdb := openTestDB(t, kind)
				db, proxy := openThroughCutProxy(t, tdb)
				var logs syncBuffer
				cfg := hzConfig(db, &logs)
				cfg.FlushInterval = time.Hour // only Flush writes: the test decides the passes
				notes := &coalesceNotifier{}
				cfg.SendNotification = true
				cfg.Notifier = notes
				cfg.RecipientEmail = []string{"team@example.com"}
				cfg.EmailSender = "errmon@example.com"
				m := hzNew(t, cfg)
				t.Cleanup(func() { _ = m.Close() })
				m.Record(nil, errors.New("lost-answer warmup"))
				hzFlushUntilStored(t, m)

				const n = 250
				msgs := []string{"lost-answer-mid a", "lost-answer-mid b", "lost-answer-mid c"}
				want := map[string]int64{"lost-answer warmup": 1}
				for i := 0; i < n; i++ {
					msg := msgs[i%len(msgs)]
					m.Record(nil, errors.New(msg))
					want[msg]++
				}

				proxy.arm(tc.trigger, tc.drop)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				err := m.Flush(ctx)
				cancel()
				if proxy.cuts.Load() != 1 {
					t.Fatalf("the proxy cut %d connections, want 1: the test tests nothing (Flush: %v)", proxy.cuts.Load(), err)
				}
				if err == nil {
					t.Fatal("Flush succeeded although the answer to its write was lost")
				}
				t.Logf("Flush with the answer lost: %v", err)
				wantErr := fmt.Sprintf("%d occurrences of %d errors not stored yet (kept in memory to retry)", n, len(msgs))
				if tc.parked {
					wantErr = fmt.Sprintf("%d occurrences of %d errors not stored yet, as far as known", n, len(msgs))
				}
				if !strings.Contains(err.Error(), wantErr) {
					t.Errorf("Flush = %v, want it to say %q", err, wantErr)
				}
				if st := m.Stats(); st.Pending != n || st.PendingErrors != len(msgs) {
					t.Errorf("while unresolved: Stats = %+v, want %d occurrences of %d errors pending", st, n, len(msgs))
				}

				ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
				err = m.Flush(ctx)
				cancel()
				if err != nil {
					t.Fatalf("second Flush: %v", err)
				}
				hzSameCounts(t, hzCounts(t, tdb.DB), want)
				var total int64
				tdb.DB.Model(&errmon.ErrorRecord{}).Select("COALESCE(SUM(count), 0)").Scan(&total)
				if total != n+1 {
					t.Errorf("Count total = %d, want exactly %d", total, n+1)
				}
				st := m.Stats()
				if st.Dropped != 0 || st.Pending != 0 || st.PendingErrors != 0 || st.Stored != n+1 || st.Recorded != n+1 {
					t.Errorf("Stats = %+v, want %d recorded and stored, nothing pending or dropped", st, n+1)
				}
				if got := strings.Contains(logs.String(), "a write whose answer was lost had been stored"); got != tc.stored {
					t.Errorf("log says the lost write was stored: %v, want %v; log:\n%s", got, tc.stored, logs.String())
				}
				for _, msg := range msgs {
					if h := hourlyTotalByMessage(t, tdb.DB, msg); h != want[msg] {
						t.Errorf("hourly total of %q = %d, want %d", msg, h, want[msg])
					}
				}
				// Each new error is announced once, whether its write's answer
				// was lost (and the write found stored) or it was written again.
				for hash, rec := range rowsByHash(t, tdb.DB) {
					if got := notes.reasons(hash); got[errmon.ReasonNew] != 1 || len(got) != 1 {
						t.Errorf("alerts for %q: %v, want one %q", rec.Message, got, errmon.ReasonNew)
					}
				}
				var receipts int64
				tdb.DB.Model(&store.ErrorWrite{}).Count(&receipts)
				if receipts < 2 {
					t.Errorf("%d write receipts, want at least the warmup's and the lost write's", receipts)
				}
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
		}
	}
}

func hourlyTotalByMessage(t *testing.T, db *gorm.DB, msg string) int64 {
	t.Helper()
	var rec errmon.ErrorRecord
	if err := db.Where("message = ?", msg).First(&rec).Error; err != nil {
		t.Fatalf("read %q: %v", msg, err)
	}
	return hourlyTotal(t, db, rec.Hash)
}

// TestLostWriteAnswerAtClose: when the answer to Close's last write is
// lost, Close cannot tell whether it was stored, and says so.
func TestLostWriteAnswerAtClose(t *testing.T) {
	for _, kind := range serverKinds {
		t.Run(kind, func(t *testing.T) { testLostWriteAnswerAtClose(t, openTestDB(t, kind)) })
	}
}

func testLostWriteAnswerAtClose(t *testing.T, tdb testDB) {
	db, proxy := openThroughCutProxy(t, tdb)
	var logs syncBuffer
	cfg := hzConfig(db, &logs)
	cfg.FlushInterval = time.Hour
	m := hzNew(t, cfg)
	m.Record(nil, errors.New("lost-answer warmup"))
	hzFlushUntilStored(t, m)
	for i := 0; i < 7; i++ {
		m.Record(nil, errors.New("lost at close"))
	}
	proxy.arm("commit", false)
	err := m.Close()
	if proxy.cuts.Load() != 1 {
		t.Fatalf("the proxy cut %d connections, want 1: the test tests nothing", proxy.cuts.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "7 occurrences of 1 errors not stored") {
		t.Errorf("Close = %v, want it to report 7 occurrences of 1 errors not stored", err)
	}
	if !strings.Contains(logs.String(), "closed with errors not stored") {
		t.Errorf("Close did not log what it could not store; log:\n%s", logs.String())
	}
}

// TestPruneWriteReceipts: the writer's prune (at start, then hourly)
// deletes receipts older than store.ReceiptRetention and keeps the others,
// an hour either side of it.
func TestPruneWriteReceipts(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs syncBuffer
		first := hzNew(t, hzConfig(tdb.DB, &logs)) // creates the tables
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		old := store.ErrorWrite{Token: store.NewToken(), WrittenAt: store.DBTime(now.Add(-store.ReceiptRetention - time.Hour))}
		recent := store.ErrorWrite{Token: store.NewToken(), WrittenAt: store.DBTime(now.Add(-store.ReceiptRetention + time.Hour))}
		if err := tdb.DB.Create([]store.ErrorWrite{old, recent}).Error; err != nil {
			t.Fatal(err)
		}
		cfg := hzConfig(tdb.DB, &logs)
		cfg.FlushInterval = time.Hour
		m := hzNew(t, cfg)
		t.Cleanup(func() { _ = m.Close() })
		hzFlushUntilStored(t, m) // the writer prunes before it serves this
		var left []string
		if err := tdb.DB.Model(&store.ErrorWrite{}).Where("token IN ?", []string{old.Token, recent.Token}).
			Pluck("token", &left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0] != recent.Token {
			t.Errorf("receipts left after prune: %v, want only the recent one %s", left, recent.Token)
		}
		if text := logs.String(); strings.Contains(text, "could not prune") {
			t.Errorf("prune failed:\n%s", text)
		}
	})
}
