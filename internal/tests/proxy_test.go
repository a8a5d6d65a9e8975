package tests

import (
	"bytes"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// faultProxy forwards TCP connections to a database server and causes the
// network faults of the fault tests:
//
//   - partition makes every connection, old and new, hang without an
//     answer (a black hole); heal lets the traffic through again.
//   - arm makes it forward the next client message containing a trigger
//     (case-insensitive), then cut that connection before relaying
//     anything the server answers, and disarm; armed to drop, it cuts the
//     connection without forwarding the message. cuts counts the cuts.
type faultProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	gate     chan struct{} // closed while traffic may flow
	conns    []net.Conn
	wg       sync.WaitGroup
	trigger  atomic.Pointer[string]
	drop     atomic.Bool
	cuts     atomic.Int64
}

// startFaultProxy listens on a free loopback port and forwards to
// upstream (host:port), traffic flowing; it closes when the test ends.
func startFaultProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{ln: ln, upstream: upstream, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *faultProxy) addr() string { return p.ln.Addr().String() }

func (p *faultProxy) currentGate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gate
}

// partition holds every byte, in both directions and on every connection,
// and every new connection, until heal.
func (p *faultProxy) partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

func (p *faultProxy) heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// arm makes the proxy cut the connection that next sends trigger, after
// forwarding it or, with drop, instead.
func (p *faultProxy) arm(trigger string, drop bool) {
	trigger = strings.ToLower(trigger)
	p.drop.Store(drop)
	p.trigger.Store(&trigger)
}

func (p *faultProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *faultProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			<-p.currentGate() // a new connection waits for the network
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				return
			}
			p.track(up)
			var cut atomic.Bool
			p.wg.Add(2)
			go p.clientToServer(up, c, &cut)
			go p.serverToClient(c, up, &cut)
		}()
	}
}

// clientToServer forwards the client's messages, holding each while
// partitioned; after forwarding one that contains the armed trigger, it
// closes the client's side at once, so that the server's answer can never
// reach it.
func (p *faultProxy) clientToServer(up, c net.Conn, cut *atomic.Bool) {
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
			<-p.currentGate()
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

// serverToClient relays the server's answers, holding each while
// partitioned, unless the connection was cut: then it drops the first
// answer and closes the server's side.
func (p *faultProxy) serverToClient(c, up net.Conn, cut *atomic.Bool) {
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
			<-p.currentGate()
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) close() {
	p.heal()
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pgAddr returns host:port of a key=value or URL PostgreSQL DSN.
func pgAddr(dsn string) string {
	host, port := "127.0.0.1", "5432"
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		if h := u.Hostname(); h != "" {
			host = h
		}
		if p := u.Port(); p != "" {
			port = p
		}
		return net.JoinHostPort(host, port)
	}
	for _, kv := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		}
	}
	return net.JoinHostPort(host, port)
}
