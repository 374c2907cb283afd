package faultproxy

import (
	"context"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const topic = "t"

// cluster starts an in-process cluster of n brokers with topic (6
// partitions, spread over the brokers).
func cluster(t *testing.T, n int) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(n), kfake.SeedTopics(6, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func proxy(t *testing.T, c *kfake.Cluster) *Proxy {
	t.Helper()
	p, err := New(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// dialLog records the address of every broker connection a client makes.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, conn net.Conn, err error) {
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = append(d.addrs, conn.RemoteAddr().String())
}

func (d *dialLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.addrs)
}

// client is a kgo client that reaches the cluster through p. Short request
// timeouts let a request lost in a blackhole be retried within seconds.
func client(t *testing.T, p *Proxy, log *dialLog, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := []kgo.Opt{
		kgo.SeedBrokers(p.Addrs()...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequestTimeoutOverhead(2 * time.Second),
		kgo.ProduceRequestTimeout(2 * time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	if log != nil {
		all = append(all, kgo.WithHooks(log))
	}
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// direct is a client on the cluster itself, consuming partition 0 of topic
// from the start.
func direct(t *testing.T, c *kfake.Cluster) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// waitRecord polls cl until a record with value v arrives, and returns it.
func waitRecord(t *testing.T, cl *kgo.Client, v string) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("record %q not read within 30s", v)
		}
		var found *kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == v && found == nil {
				found = r
			}
		})
		if found != nil {
			return found
		}
	}
}

// waitFor waits up to 30s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type result struct {
	r   *kgo.Record
	err error
}

// produceAsync produces value v to partition 0 and returns the promise's
// channel.
func produceAsync(cl *kgo.Client, v string) <-chan result {
	ch := make(chan result, 1)
	cl.Produce(context.Background(), &kgo.Record{Partition: 0, Value: []byte(v)}, func(r *kgo.Record, err error) {
		ch <- result{r, err}
	})
	return ch
}

func produceSync(t *testing.T, cl *kgo.Client, partition int32, v string) *kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := cl.ProduceSync(ctx, &kgo.Record{Partition: partition, Value: []byte(v)}).First()
	if err != nil {
		t.Fatalf("producing %q: %v", v, err)
	}
	return r
}

func await(t *testing.T, ch <-chan result, what string) *kgo.Record {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("%s: %v", what, res.err)
		}
		return res.r
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: promise did not fire within 60s", what)
		return nil
	}
}

func proxyAddrs(p *Proxy) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.all {
		out = append(out, l.addr)
	}
	return out
}

// TestAllTrafficThroughProxy: a producer and a group consumer on a 3-broker
// cluster connect only to the proxy's listeners (the brokers' advertised
// addresses are rewritten), one per broker, and get their records.
func TestAllTrafficThroughProxy(t *testing.T) {
	c := cluster(t, 3)
	// Seed the proxy with one broker: the other two are found through
	// Metadata.
	p, err := New(c.ListenAddrs()[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var log dialLog
	prod := client(t, p, &log)
	for part := range int32(6) {
		produceSync(t, prod, part, "v"+strconv.Itoa(int(part)))
	}
	cons := client(t, p, &log, kgo.ConsumeTopics(topic), kgo.ConsumerGroup("g"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(got) < 6 && ctx.Err() == nil {
		cons.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if len(got) != 6 {
		t.Fatalf("consumed %d of 6 records through the proxy", len(got))
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("committing through the proxy: %v", err)
	}
	own := proxyAddrs(p)
	if len(own) != 3 {
		t.Errorf("proxy has %d listeners, want 3 (one per broker): %v", len(own), own)
	}
	dials := log.list()
	if len(dials) == 0 {
		t.Fatal("no connection recorded")
	}
	for _, a := range dials {
		if !slices.Contains(own, a) {
			t.Errorf("client connected to %s, not a proxy listener %v", a, own)
		}
	}
	st := p.Stats()
	if st.Rewritten == 0 || st.ProduceForwarded < 6 || st.BytesToBroker == 0 || st.BytesToClient == 0 {
		t.Errorf("stats %+v: want rewritten responses, 6+ produce requests, bytes both ways", st)
	}
	if st.ProtocolErrors != 0 {
		t.Errorf("protocol errors: %d (%s)", st.ProtocolErrors, st.LastError)
	}
	if len(st.ProducerIDs) != 1 {
		t.Errorf("producer ids %v, want the one idempotent producer", st.ProducerIDs)
	}
}

// TestBlackhole: a produce sent during a blackhole does not complete; once
// the partition heals, the client's retry does.
func TestBlackhole(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	var log dialLog
	cl := client(t, p, &log)
	produceSync(t, cl, 0, "before")

	p.Blackhole(true)
	ch := produceAsync(cl, "during")
	waitFor(t, "the produce request dropped", func() bool { return p.Stats().ProduceDropped > 0 })
	// A negative can only be shown over a window: through a working proxy
	// the produce completes in milliseconds.
	select {
	case res := <-ch:
		t.Fatalf("produce completed through a blackhole: %v %v", res.r, res.err)
	case <-time.After(1500 * time.Millisecond):
	}
	p.Blackhole(false)
	r := await(t, ch, "produce after the blackhole")
	if got := waitRecord(t, direct(t, c), "during"); got.Offset != r.Offset {
		t.Errorf("record at offset %d, promise says %d", got.Offset, r.Offset)
	}
	own := proxyAddrs(p)
	for _, a := range log.list() {
		if !slices.Contains(own, a) {
			t.Errorf("client connected to %s, not a proxy listener %v", a, own)
		}
	}
}

// TestBlackholeAtNextProduce: the partition begins with the next produce
// request, which is dropped; after the partition heals, the client's retry
// lands it once.
func TestBlackholeAtNextProduce(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	cl := client(t, p, nil)
	produceSync(t, cl, 0, "before")
	p.BlackholeAtNextProduce()
	if st := p.Stats(); st.Blackholed {
		t.Fatal("blackholed before any produce")
	}
	// Other traffic goes through while armed.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Ping(ctx); err != nil {
		t.Fatalf("ping while armed: %v", err)
	}
	ch := produceAsync(cl, "x")
	waitFor(t, "the produce request dropped", func() bool { st := p.Stats(); return st.Blackholed && st.ProduceDropped > 0 })
	select {
	case res := <-ch:
		t.Fatalf("produce completed through the partition: %v %v", res.r, res.err)
	case <-time.After(1500 * time.Millisecond):
	}
	p.Blackhole(false)
	r := await(t, ch, "produce after the partition")
	produceSync(t, cl, 0, "marker")
	d := direct(t, c)
	xs, marker := 0, false
	for !marker && ctx.Err() == nil {
		d.PollFetches(ctx).EachRecord(func(rec *kgo.Record) {
			switch string(rec.Value) {
			case "x":
				xs++
				if rec.Offset != r.Offset {
					t.Errorf("x at offset %d, promise says %d", rec.Offset, r.Offset)
				}
			case "marker":
				marker = true
			}
		})
	}
	if !marker || xs != 1 {
		t.Errorf("read marker %v, x %d times; want the marker and x once", marker, xs)
	}
}

// TestCut: Cut closes the client's connections; it reconnects and produces.
func TestCut(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	cl := client(t, p, nil)
	produceSync(t, cl, 0, "before")
	before := p.Stats()
	if before.OpenConnections == 0 {
		t.Fatal("no open connection after a produce")
	}
	p.Cut()
	waitFor(t, "connections closed", func() bool { return p.Stats().OpenConnections < before.OpenConnections })
	produceSync(t, cl, 0, "after")
	if after := p.Stats(); after.Connections <= before.Connections {
		t.Errorf("connections accepted %d after the cut, %d before: the client did not reconnect", after.Connections, before.Connections)
	}
	waitRecord(t, direct(t, c), "after")
}

// TestHoldProduceResponses: with responses held, the record is in the log
// while the producer's promise has not fired; releasing fires it, with the
// offset the record has.
func TestHoldProduceResponses(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	cl := client(t, p, nil, kgo.ProduceRequestTimeout(30*time.Second))
	produceSync(t, cl, 0, "warm")

	p.HoldProduceResponses(true)
	ch := produceAsync(cl, "held")
	rec := waitRecord(t, direct(t, c), "held")
	waitFor(t, "a held response", func() bool { return p.Stats().HeldNow > 0 })
	select {
	case res := <-ch:
		t.Fatalf("promise fired while its response was held: %v %v", res.r, res.err)
	default:
	}
	if st := p.Stats(); st.ProduceHeld == 0 {
		t.Errorf("stats %+v: no produce response counted as held", st)
	}
	p.HoldProduceResponses(false)
	r := await(t, ch, "produce after release")
	if r.Offset != rec.Offset {
		t.Errorf("promise says offset %d, the record is at %d", r.Offset, rec.Offset)
	}
	if st := p.Stats(); st.HeldNow != 0 {
		t.Errorf("%d responses still held after release", st.HeldNow)
	}
}

// TestDropHeldResponses: a held response dropped with its connection makes
// the idempotent producer retry a write that landed: the promise fires with
// the original offset and the log has the record once.
func TestDropHeldResponses(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	cl := client(t, p, nil, kgo.ProduceRequestTimeout(30*time.Second))
	produceSync(t, cl, 0, "warm")

	p.HoldProduceResponses(true)
	ch := produceAsync(cl, "x")
	d := direct(t, c)
	rec := waitRecord(t, d, "x")
	waitFor(t, "a held response", func() bool { return p.Stats().HeldNow > 0 })
	forwarded := p.Stats().ProduceForwarded
	if n := p.DropHeldResponses(); n == 0 {
		t.Fatal("no held response dropped")
	}
	// The retry's response is not held (or, if it already was, released).
	p.HoldProduceResponses(false)
	r := await(t, ch, "produce after the drop")
	if r.Offset != rec.Offset {
		t.Errorf("promise says offset %d, the record is at %d", r.Offset, rec.Offset)
	}
	if st := p.Stats(); st.ProduceForwarded <= forwarded {
		t.Errorf("produce requests forwarded %d, %d before the drop: no retry", st.ProduceForwarded, forwarded)
	}
	produceSync(t, cl, 0, "marker")
	// Read up to the marker: "x" must be there once.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	xs, marker := 1, false // waitRecord consumed the first "x"
	for !marker && ctx.Err() == nil {
		d.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			switch string(r.Value) {
			case "x":
				xs++
			case "marker":
				marker = true
			}
		})
	}
	if !marker {
		t.Fatal("marker not read")
	}
	if xs != 1 {
		t.Errorf("record x is %d times in the log, want once", xs)
	}
}

// TestDelay: every frame is delayed, so a round trip takes at least twice
// the delay. Only a lower bound is asserted (machines are shared).
func TestDelay(t *testing.T) {
	c := cluster(t, 1)
	p := proxy(t, c)
	cl := client(t, p, nil, kgo.ProduceRequestTimeout(30*time.Second))
	produceSync(t, cl, 0, "warm")
	const d = 250 * time.Millisecond
	p.Delay(d)
	t0 := time.Now()
	produceSync(t, cl, 0, "slow")
	if el := time.Since(t0); el < 2*d {
		t.Errorf("produce took %v through a %v delay each way, want at least %v", el, d, 2*d)
	}
	p.Delay(0)
	produceSync(t, cl, 0, "fast")
}

// TestCloseEndsConnections: Close returns with clients connected, and the
// listeners refuse new connections.
func TestCloseEndsConnections(t *testing.T) {
	c := cluster(t, 1)
	p, err := New(c.ListenAddrs())
	if err != nil {
		t.Fatal(err)
	}
	cl := client(t, p, nil)
	produceSync(t, cl, 0, "x")
	addr := p.Addrs()[0]
	p.Close()
	if cn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		cn.Close()
		t.Errorf("dialing %s after Close succeeded", addr)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(nil); err == nil {
		t.Error("New(nil): no error")
	}
	if _, err := New([]string{"no-port"}); err == nil {
		t.Error("New with an address without a port: no error")
	}
}
