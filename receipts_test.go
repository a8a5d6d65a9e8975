package errmon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/errmon/errmon/internal/store"
	mysqldriver "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

// Lost answers: the database stores a write but the client never hears
// so. The writer must neither count the write twice (retrying it blindly)
// nor lose it (giving it up): it parks the write and asks its receipt.

// cutProxy forwards TCP connections to a database. Once armed with a
// trigger, it forwards the next client message containing the trigger
// (case-insensitive), then cuts that connection before relaying anything
// the server answers, and disarms; armed to drop, it cuts the connection
// without forwarding the message.
type cutProxy struct {
	ln       net.Listener
	upstream string
	trigger  atomic.Pointer[string]
	drop     atomic.Bool
	cuts     atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
	wg       sync.WaitGroup
}

func startCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// arm makes the proxy cut the connection that next sends trigger, after
// forwarding it or, with drop, instead.
func (p *cutProxy) arm(trigger string, drop bool) {
	trigger = strings.ToLower(trigger)
	p.drop.Store(drop)
	p.trigger.Store(&trigger)
}

func (p *cutProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		up, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			continue
		}
		p.track(up)
		var cut atomic.Bool
		p.wg.Add(2)
		go p.clientToServer(up, c, &cut)
		go p.serverToClient(c, up, &cut)
	}
}

// clientToServer forwards the client's messages; after forwarding one that
// contains the armed trigger, it closes the client's side at once, so that
// the server's answer can never reach it.
func (p *cutProxy) clientToServer(up, c net.Conn, cut *atomic.Bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	var tail []byte // the end of the previous read: a trigger may straddle two
	for {
		n, err := c.Read(buf)
		if n > 0 {
			seen := bytes.ToLower(append(tail, buf[:n]...))
			armed := p.trigger.Load()
			hit := armed != nil && bytes.Contains(seen, []byte(*armed)) &&
				p.trigger.CompareAndSwap(armed, nil)
			// Keep less than a trigger, so that a trigger already seen is
			// not seen again.
			tail = tail[:0]
			if armed != nil && !hit {
				tail = append(tail, seen[max(0, len(seen)-len(*armed)+1):]...)
			}
			if hit {
				cut.Store(true) // before the server can answer
			}
			if hit && p.drop.Load() {
				p.cuts.Add(1)
				c.Close()
				up.Close()
				return
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				c.Close()
				up.Close()
				return
			}
			if hit {
				p.cuts.Add(1)
				c.Close()
				// The server's side stays open until its answer arrives
				// (serverToClient drops it), so that what the server does
				// with the message is not affected by the cut.
				return
			}
		}
		if err != nil {
			c.Close()
			up.Close()
			return
		}
	}
}

// serverToClient relays the server's answers, unless the connection was
// cut: then it drops the first answer and closes the server's side.
func (p *cutProxy) serverToClient(c, up net.Conn, cut *atomic.Bool) {
	defer p.wg.Done()
	defer up.Close()
	defer c.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := up.Read(buf)
		if n > 0 {
			if cut.Load() {
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// openThroughCutProxy opens tdb's PostgreSQL schema through a cutProxy.
func openThroughCutProxy(t *testing.T, tdb testDB) (*gorm.DB, *cutProxy) {
	t.Helper()
	var dial gorm.Dialector
	var proxy *cutProxy
	switch tdb.Name {
	case "postgres":
		var schema, user, dbname string
		tdb.DB.Raw("SELECT current_schema()").Scan(&schema)
		tdb.DB.Raw("SELECT current_user").Scan(&user)
		tdb.DB.Raw("SELECT current_database()").Scan(&dbname)
		proxy = startCutProxy(t, hzPGAddr(pgDSN(t)))
		host, port, _ := net.SplitHostPort(proxy.addr())
		dial = postgres.Open(fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable search_path=%s connect_timeout=5",
			host, port, user, dbname, schema))
	case "mysql":
		// "user@tcp(host:port)/db?options": the same, through the proxy.
		cfg, err := mysqldriver.ParseDSN(tdb.DSN)
		if err != nil {
			t.Fatal(err)
		}
		proxy = startCutProxy(t, cfg.Addr)
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
				tdb.DB.Model(&ErrorRecord{}).Select("COALESCE(SUM(count), 0)").Scan(&total)
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
					if got := notes.reasons(hash); got[ReasonNew] != 1 || len(got) != 1 {
						t.Errorf("alerts for %q: %v, want one %q", rec.Message, got, ReasonNew)
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
	var rec ErrorRecord
	if err := db.Where("message = ?", msg).First(&rec).Error; err != nil {
		t.Fatalf("read %q: %v", msg, err)
	}
	return hourlyTotal(t, db, rec.Hash)
}

// TestQueueParkedBookkeeping: parked errors stay counted as pending (in
// Stats and against MaxPending) until resolved, and a new occurrence of a
// parked error adds no distinct error.
func TestQueueParkedBookkeeping(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	occ := func(hash string) *Occurrence { return &Occurrence{Hash: hash, Time: at} }
	for _, stored := range []bool{true, false} {
		t.Run(fmt.Sprintf("stored=%v", stored), func(t *testing.T) {
			q := &queue{pending: map[string]*pending{}, max: 2}
			for _, h := range []string{"a", "a", "b"} {
				if !q.add(occ(h)) {
					t.Fatalf("add %s dropped", h)
				}
			}
			batch := q.take()
			q.park(&parkedChunk{token: "t", items: batch})
			q.settle(0, nil)
			if occs, errs, _ := q.size(); occs != 3 || errs != 2 {
				t.Fatalf("parked: size = %d occurrences of %d errors, want 3 of 2", occs, errs)
			}
			if !q.add(occ("a")) {
				t.Fatal("a new occurrence of a parked error was dropped")
			}
			if q.add(occ("c")) {
				t.Fatal("a third distinct error was kept beyond max 2 while two are parked")
			}
			if occs, errs, dropped := q.size(); occs != 4 || errs != 2 || dropped != 1 {
				t.Fatalf("size = %d occurrences of %d errors, %d dropped; want 4 of 2, 1", occs, errs, dropped)
			}
			c := q.parkedChunks()
			if len(c) != 1 {
				t.Fatalf("%d parked chunks, want 1", len(c))
			}
			q.unpark(c[0], stored)
			occs, errs, _ := q.size()
			wantOccs, wantErrs := int64(1), 1 // the new occurrence of a
			if !stored {
				wantOccs, wantErrs = 4, 2 // merged back
			}
			if occs != wantOccs || errs != wantErrs || q.inflight != 0 || q.overlap != 0 || len(q.parkedN) != 0 {
				t.Fatalf("after unpark: %d occurrences of %d errors, inflight %d, overlap %d, parkedN %v; want %d of %d, 0, 0, empty",
					occs, errs, q.inflight, q.overlap, q.parkedN, wantOccs, wantErrs)
			}
			if !stored && q.pending["a"].count != 3 {
				t.Fatalf("a merged back with count %d, want 3", q.pending["a"].count)
			}
		})
	}
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

// TestPruneWriteReceipts: the hourly prune deletes receipts older than
// receiptRetention and keeps the others.
func TestPruneWriteReceipts(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		var logs syncBuffer
		m := hzNew(t, hzConfig(tdb.DB, &logs))
		t.Cleanup(func() { _ = m.Close() })
		now := time.Now()
		old := store.ErrorWrite{Token: store.NewToken(), WrittenAt: store.DBTime(now.Add(-store.ReceiptRetention - time.Hour))}
		recent := store.ErrorWrite{Token: store.NewToken(), WrittenAt: store.DBTime(now.Add(-store.ReceiptRetention + time.Hour))}
		if err := tdb.DB.Create([]store.ErrorWrite{old, recent}).Error; err != nil {
			t.Fatal(err)
		}
		m.prune()
		var left []string
		if err := tdb.DB.Model(&store.ErrorWrite{}).Where("token IN ?", []string{old.Token, recent.Token}).
			Pluck("token", &left).Error; err != nil {
			t.Fatal(err)
		}
		if len(left) != 1 || left[0] != recent.Token {
			t.Errorf("receipts left after prune: %v, want only the recent one %s", left, recent.Token)
		}
	})
}
