// Package faultproxy is a TCP proxy for Kafka traffic that injects network
// faults on demand: cut connections, a network partition (blackhole),
// latency, and Produce responses held back after their requests landed.
// Tests and the chaos harness put it between ONE client (a kstreams
// instance) and the brokers, to make the stale-owner cases (an instance
// that lost its partitions while its writes were in flight) deterministic
// instead of lucky.
//
// A Kafka client connects to the addresses the brokers advertise, not to
// the ones it was given, so the proxy reads the Kafka framing: it rewrites
// the broker addresses in Metadata and FindCoordinator responses to its own
// listeners (one per broker, added as brokers are discovered) and passes
// every other frame through byte for byte. It does not speak TLS or SASL.
//
// Every fault applies to the connections open when it is switched and to
// those accepted later.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards one client's Kafka traffic to the brokers through
// loopback listeners, with switchable faults. Its methods are safe for
// concurrent use.
type Proxy struct {
	mu        sync.Mutex
	closed    bool
	seeds     []*listener
	all       []*listener
	byNode    map[int32]*listener
	byTarget  map[string]*listener
	conns     map[*conn]struct{}
	producers map[int64]struct{}
	lastErr   error
	wg        sync.WaitGroup

	blackhole atomic.Bool
	armed     atomic.Bool // BlackholeAtNextProduce
	hold      atomic.Bool
	delay     atomic.Int64 // time.Duration

	accepted, produceForwarded, produceHeld     atomic.Int64
	produceDropped                              atomic.Int64
	bytesToBroker, bytesToClient, framesDropped atomic.Int64
	rewritten, protocolErrors                   atomic.Int64
}

// listener accepts the client's connections for one broker and dials that
// broker for each.
type listener struct {
	ln     net.Listener
	addr   string // the proxy's address, 127.0.0.1:port
	mu     sync.Mutex
	target string // the broker's address
	node   int32  // -1 until a Metadata response names the broker
}

func (l *listener) getTarget() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.target
}

// New starts a proxy with one listener on 127.0.0.1 for each of the
// bootstrap brokers (host:port). Give the client Addrs instead of brokers.
func New(brokers []string) (*Proxy, error) {
	if len(brokers) == 0 {
		return nil, errors.New("faultproxy: no brokers")
	}
	p := &Proxy{
		byNode:    map[int32]*listener{},
		byTarget:  map[string]*listener{},
		conns:     map[*conn]struct{}{},
		producers: map[int64]struct{}{},
	}
	for _, b := range brokers {
		if _, _, err := splitHostPort(b); err != nil {
			p.Close()
			return nil, fmt.Errorf("faultproxy: broker %q: %w", b, err)
		}
		p.mu.Lock()
		l, err := p.listenLocked(b, -1)
		p.mu.Unlock()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.seeds = append(p.seeds, l)
	}
	return p, nil
}

// listenLocked opens a listener for target (node -1: a bootstrap address).
func (p *Proxy) listenLocked(target string, node int32) (*listener, error) {
	if p.closed {
		return nil, errors.New("faultproxy: proxy closed")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listening for broker %s: %w", target, err)
	}
	l := &listener{ln: ln, addr: ln.Addr().String(), target: target, node: node}
	p.byTarget[target] = l
	p.all = append(p.all, l)
	if node >= 0 {
		p.byNode[node] = l
	}
	p.wg.Add(1)
	go p.accept(l)
	return l, nil
}

// listenerFor returns the proxy address standing for broker node at
// host:port, opening a listener for a broker not seen yet; it is the
// addrMapper of the proxy's response rewriting.
func (p *Proxy) listenerFor(node int32, host string, port int32) (string, int32, error) {
	target := net.JoinHostPort(host, fmt.Sprint(port))
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.byNode[node]
	switch {
	case l != nil:
		// A broker restarted on another address keeps its listener.
		l.mu.Lock()
		if l.target != target {
			l.target = target
			p.byTarget[target] = l
		}
		l.mu.Unlock()
	case p.byTarget[target] != nil && p.byTarget[target].node < 0:
		// A bootstrap listener turns out to be this node's.
		l = p.byTarget[target]
		l.mu.Lock()
		l.node = node
		l.mu.Unlock()
		p.byNode[node] = l
	default:
		var err error
		if l, err = p.listenLocked(target, node); err != nil {
			return "", 0, err
		}
	}
	return splitHostPort(l.addr)
}

func (p *Proxy) accept(l *listener) {
	defer p.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.recordError(fmt.Errorf("faultproxy: accepting on %s: %w", l.addr, err))
			}
			return
		}
		p.accepted.Add(1)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			target := l.getTarget()
			b, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				p.recordError(fmt.Errorf("faultproxy: dialing broker %s: %w", target, err))
				c.Close()
				return
			}
			cn := newConn(p, c, b)
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				cn.close()
				return
			}
			p.conns[cn] = struct{}{}
			p.mu.Unlock()
			cn.run()
			p.mu.Lock()
			delete(p.conns, cn)
			p.mu.Unlock()
		}()
	}
}

// Addrs returns the bootstrap addresses to give the client, one per broker
// passed to New, in the same order.
func (p *Proxy) Addrs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, len(p.seeds))
	for i, l := range p.seeds {
		out[i] = l.addr
	}
	return out
}

// Close closes the listeners and every connection, and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for _, l := range p.all {
		l.ln.Close()
	}
	conns := p.connsLocked()
	p.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	p.wg.Wait()
}

func (p *Proxy) connsLocked() []*conn {
	out := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		out = append(out, c)
	}
	return out
}

func (p *Proxy) openConns() []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connsLocked()
}

// Cut closes every open connection now, with what is queued or held in it;
// the client reconnects.
func (p *Proxy) Cut() {
	for _, c := range p.openConns() {
		c.close()
	}
}

// Blackhole switches a network partition on or off. While on, connections
// are still accepted, but nothing is forwarded in either direction: every
// frame that arrives, or was delayed and is due, is dropped, and is never
// delivered later (the client learns of the loss by its request timeouts).
// Connections stay open across the partition; Cut after turning it off to
// emulate connections that did not survive it.
func (p *Proxy) Blackhole(on bool) {
	if !on {
		p.armed.Store(false)
	}
	p.blackhole.Store(on)
}

// BlackholeAtNextProduce arms a network partition that begins with the
// client's next Produce request: that request is dropped (it never reaches
// the broker) and Blackhole is on from then on, until Blackhole(false),
// which also disarms it. A client's writes are bursts of a few
// milliseconds; this makes "partitioned with a write in flight"
// deterministic instead of a matter of timing.
func (p *Proxy) BlackholeAtNextProduce() { p.armed.Store(true) }

// Delay delays every frame forwarded from now on, in both directions, by d
// (0: no delay). It adds latency, not a bandwidth limit: frames still
// stream, each d after it arrived.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(max(d, 0))) }

// HoldProduceResponses switches holding of Produce responses. While on,
// Produce requests are forwarded to the broker (their records land), but
// each connection holds back their responses, and every response after a
// held one on that connection, so that it keeps its order: the client has
// written and does not know it. Turning it off releases what is held, in
// order. See DropHeldResponses to make the client retry instead.
func (p *Proxy) HoldProduceResponses(on bool) {
	p.hold.Store(on)
	if on {
		return
	}
	for _, c := range p.openConns() {
		c.release()
	}
}

// DropHeldResponses discards every held response and closes the
// connections they were held on (a client cannot skip a response), so that
// the client retries requests that did land. Holding stays switched as it
// was. It returns the number of responses dropped.
func (p *Proxy) DropHeldResponses() int {
	n := 0
	for _, c := range p.openConns() {
		if d := c.dropHeld(); d > 0 {
			n += d
			c.close()
		}
	}
	return n
}

// Stats are the proxy's counters since New.
type Stats struct {
	// Connections is the number of client connections accepted.
	Connections int64 `json:"connections"`
	// OpenConnections is the number of connections open now.
	OpenConnections int `json:"open_connections"`
	// Blackholed reports whether the partition is on now (by Blackhole or
	// BlackholeAtNextProduce).
	Blackholed bool `json:"blackholed"`
	// Listeners is the number of listeners: bootstrap addresses plus
	// brokers discovered with a different address.
	Listeners int `json:"listeners"`
	// ProduceForwarded counts Produce requests forwarded to a broker.
	ProduceForwarded int64 `json:"produce_forwarded"`
	// ProduceDropped counts Produce requests dropped by Blackhole (never
	// delivered to a broker).
	ProduceDropped int64 `json:"produce_dropped"`
	// ProduceHeld counts Produce responses held by HoldProduceResponses.
	ProduceHeld int64 `json:"produce_held"`
	// HeldNow is the number of responses (of any key) held right now.
	HeldNow int `json:"held_now"`
	// BytesToBroker and BytesToClient count the bytes forwarded each way.
	BytesToBroker int64 `json:"bytes_to_broker"`
	BytesToClient int64 `json:"bytes_to_client"`
	// FramesDropped counts frames dropped by Blackhole and
	// DropHeldResponses (not those lost by Cut).
	FramesDropped int64 `json:"frames_dropped"`
	// Rewritten counts Metadata and FindCoordinator responses whose broker
	// addresses were rewritten.
	Rewritten int64 `json:"rewritten"`
	// ProtocolErrors counts connections closed because a frame could not
	// be parsed (or a dial failed); LastError is the latest such error.
	ProtocolErrors int64  `json:"protocol_errors"`
	LastError      string `json:"last_error,omitempty"`
	// ProducerIDs are the idempotent producer ids seen in the record
	// batches of forwarded Produce requests, ascending: they identify the
	// proxied client's writes in a topic.
	ProducerIDs []int64 `json:"producer_ids"`
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	s := Stats{
		OpenConnections: len(p.conns),
		Blackholed:      p.blackhole.Load(),
		Listeners:       len(p.all),
	}
	if p.lastErr != nil {
		s.LastError = p.lastErr.Error()
	}
	for id := range p.producers {
		s.ProducerIDs = append(s.ProducerIDs, id)
	}
	conns := p.connsLocked()
	p.mu.Unlock()
	slices.Sort(s.ProducerIDs)
	for _, c := range conns {
		s.HeldNow += c.heldCount()
	}
	s.Connections = p.accepted.Load()
	s.ProduceForwarded = p.produceForwarded.Load()
	s.ProduceDropped = p.produceDropped.Load()
	s.ProduceHeld = p.produceHeld.Load()
	s.BytesToBroker = p.bytesToBroker.Load()
	s.BytesToClient = p.bytesToClient.Load()
	s.FramesDropped = p.framesDropped.Load()
	s.Rewritten = p.rewritten.Load()
	s.ProtocolErrors = p.protocolErrors.Load()
	return s
}

func (p *Proxy) recordError(err error) {
	p.protocolErrors.Add(1)
	p.mu.Lock()
	p.lastErr = err
	p.mu.Unlock()
}

// dropRequest counts a request dropped by Blackhole.
func (p *Proxy) dropRequest(f frame) {
	p.framesDropped.Add(1)
	if f.key == keyProduce {
		p.produceDropped.Add(1)
	}
}

func (p *Proxy) sawProducers(ids []int64) {
	if len(ids) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		p.producers[id] = struct{}{}
	}
}
