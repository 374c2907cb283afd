package faultproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// frame is one Kafka frame in flight through the proxy.
type frame struct {
	data []byte    // size prefix included
	due  time.Time // when to forward it (zero: now)
	key  int16     // the request's API key, or of the request a response answers (-1: unknown)
	corr int32
	pids []int64 // producer ids of a Produce request
}

// reqInfo is what a connection remembers of a request until its response.
type reqInfo struct{ key, version int16 }

// conn is one client connection and the broker connection dialed for it.
// Four goroutines move frames: client → queue → broker, broker → queue →
// client. Faults are looked at when a frame arrives and again when it is
// due, so a frame delayed into a partition is dropped too.
type conn struct {
	p              *Proxy
	client, broker net.Conn
	once           sync.Once
	done           chan struct{}

	mu       sync.Mutex
	inflight map[int32]reqInfo // by correlation id

	writeMu sync.Mutex // serializes writes to the client (writer and release)
	heldMu  sync.Mutex
	held    []frame // responses held back, in order
}

func newConn(p *Proxy, client, broker net.Conn) *conn {
	return &conn{p: p, client: client, broker: broker, done: make(chan struct{}), inflight: map[int32]reqInfo{}}
}

// run forwards until either side closes or the proxy closes the conn.
func (c *conn) run() {
	up := make(chan frame, 64)
	down := make(chan frame, 64)
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); c.readClient(up) }()
	go func() { defer wg.Done(); c.writeBroker(up) }()
	go func() { defer wg.Done(); c.readBroker(down) }()
	go func() { defer wg.Done(); c.writeClient(down) }()
	wg.Wait()
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.client.Close()
		c.broker.Close()
	})
}

// fail closes the connection; an error that is not an ordinary close is
// recorded in the proxy's stats.
func (c *conn) fail(err error) {
	select {
	case <-c.done:
		// Closed by the proxy (Cut, Close): the error is the consequence.
	default:
		if errors.Is(err, errFrameSize) || errors.Is(err, errShortFrame) || errors.Is(err, errProtocol) {
			c.p.recordError(err)
		}
	}
	c.close()
}

// errProtocol marks errors from parsing a frame's content.
var errProtocol = errors.New("faultproxy: protocol")

func (c *conn) dueTime() time.Time {
	if d := time.Duration(c.p.delay.Load()); d > 0 {
		return time.Now().Add(d)
	}
	return time.Time{}
}

// wait waits until f is due; false if the connection closed meanwhile.
func (c *conn) wait(f frame) bool {
	if f.due.IsZero() {
		return true
	}
	d := time.Until(f.due)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.done:
		return false
	}
}

func (c *conn) readClient(up chan frame) {
	for {
		data, err := readFrame(c.client)
		if err != nil {
			c.fail(err)
			return
		}
		h, err := parseRequestHeader(data[4:])
		if err != nil {
			c.fail(fmt.Errorf("%w: client request: %w", errProtocol, err))
			return
		}
		f := frame{data: data, key: h.Key, corr: h.CorrelationID}
		answered := true
		switch h.Key {
		case keyProduce:
			info, err := parseProduce(h)
			if err != nil {
				c.fail(fmt.Errorf("%w: %w", errProtocol, err))
				return
			}
			answered = info.acks != 0
			f.pids = info.producerIDs
		case keyMetadata, keyFindCoordinator:
			if !h.Known {
				// Its response could not be rewritten, and the client would
				// bypass the proxy: refuse it loudly instead.
				c.fail(fmt.Errorf("%w: request key %d v%d is newer than this proxy knows (kmsg)", errProtocol, h.Key, h.Version))
				return
			}
		}
		if h.Key == keyProduce && c.p.armed.CompareAndSwap(true, false) {
			c.p.blackhole.Store(true)
		}
		if c.p.blackhole.Load() {
			c.p.dropRequest(f)
			continue
		}
		if answered {
			c.mu.Lock()
			c.inflight[h.CorrelationID] = reqInfo{key: h.Key, version: h.Version}
			c.mu.Unlock()
		}
		f.due = c.dueTime()
		select {
		case up <- f:
		case <-c.done:
			return
		}
	}
}

func (c *conn) writeBroker(up chan frame) {
	for {
		var f frame
		select {
		case f = <-up:
		case <-c.done:
			return
		}
		if !c.wait(f) {
			return
		}
		if c.p.blackhole.Load() {
			c.p.dropRequest(f)
			c.mu.Lock()
			delete(c.inflight, f.corr)
			c.mu.Unlock()
			continue
		}
		// Counted before the write: the broker's answer can reach the
		// client (and a test read the stats) before Write returns here.
		if f.key == keyProduce {
			c.p.produceForwarded.Add(1)
			c.p.sawProducers(f.pids)
		}
		c.p.bytesToBroker.Add(int64(len(f.data)))
		if _, err := c.broker.Write(f.data); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *conn) readBroker(down chan frame) {
	for {
		data, err := readFrame(c.broker)
		if err != nil {
			c.fail(err)
			return
		}
		if len(data) < 8 {
			c.fail(fmt.Errorf("%w: broker response of %d bytes", errShortFrame, len(data)-4))
			return
		}
		corr := int32(binary.BigEndian.Uint32(data[4:]))
		c.mu.Lock()
		info, ok := c.inflight[corr]
		delete(c.inflight, corr)
		c.mu.Unlock()
		f := frame{data: data, key: -1, corr: corr}
		if ok {
			f.key = info.key
			if info.key == keyMetadata || info.key == keyFindCoordinator {
				if f.data, err = rewriteResponse(data[4:], info.key, info.version, c.p.listenerFor); err != nil {
					c.fail(fmt.Errorf("%w: broker response: %w", errProtocol, err))
					return
				}
				c.p.rewritten.Add(1)
			}
		}
		if c.p.blackhole.Load() {
			c.p.framesDropped.Add(1)
			continue
		}
		f.due = c.dueTime()
		select {
		case down <- f:
		case <-c.done:
			return
		}
	}
}

func (c *conn) writeClient(down chan frame) {
	for {
		var f frame
		select {
		case f = <-down:
		case <-c.done:
			return
		}
		if !c.wait(f) {
			return
		}
		if err := c.deliver(f); err != nil {
			c.fail(err)
			return
		}
	}
}

// deliver writes a response to the client, or holds it: a Produce response
// while holding is on, and any response behind a held one (a client reads
// its responses in order).
func (c *conn) deliver(f frame) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if c.p.blackhole.Load() {
		c.p.framesDropped.Add(1)
		return nil
	}
	c.heldMu.Lock()
	if c.p.hold.Load() && (f.key == keyProduce || len(c.held) > 0) {
		c.held = append(c.held, f)
		c.heldMu.Unlock()
		if f.key == keyProduce {
			c.p.produceHeld.Add(1)
		}
		return nil
	}
	c.heldMu.Unlock()
	return c.writeClientLocked(f)
}

func (c *conn) writeClientLocked(f frame) error {
	if _, err := c.client.Write(f.data); err != nil {
		return err
	}
	c.p.bytesToClient.Add(int64(len(f.data)))
	return nil
}

// release writes the held responses, in order, ahead of any later one.
func (c *conn) release() {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.heldMu.Lock()
	held := c.held
	c.held = nil
	c.heldMu.Unlock()
	for _, f := range held {
		if c.p.blackhole.Load() {
			c.p.framesDropped.Add(1)
			continue
		}
		if err := c.writeClientLocked(f); err != nil {
			c.fail(err)
			return
		}
	}
}

// dropHeld discards the held responses and returns how many there were.
func (c *conn) dropHeld() int {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	n := len(c.held)
	c.held = nil
	c.p.framesDropped.Add(int64(n))
	return n
}

func (c *conn) heldCount() int {
	c.heldMu.Lock()
	defer c.heldMu.Unlock()
	return len(c.held)
}
