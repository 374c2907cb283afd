package join

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/kstreams-go/kstreams/core/table"
)

// ForeignKeyTopics names the two topics through which a foreign-key join's
// sides exchange records, with their partition counts; the application
// creates them if missing. A count of 0 (best left so) takes the count the
// topic must have (see kstreams.Through).
type ForeignKeyTopics struct {
	// Subscription carries the left rows' subscriptions, keyed by foreign
	// key: it must have the right table topic's partition count.
	Subscription           string
	SubscriptionPartitions int32
	// Response carries the right side's answers, keyed by left key: it
	// must have the left table topic's partition count.
	Response           string
	ResponsePartitions int32
}

// ForeignKey adds an inner foreign-key join of two tables (Kafka Streams'
// KTable.join with a foreign-key extractor, KIP-213): each row of left
// refers to a row of right by the foreign key foreignKey computes from it,
// and the result, keyed like left, holds joiner's value for every left row
// whose foreign key right holds. The node returned forwards the result's
// updates: *VOut, nil when a left row stops joining (deleted, its foreign
// key changed to one right lacks, or its right row deleted).
//
// The two tables need no co-partitioning. A left row's change is sent to
// the right side through topics.Subscription, keyed by foreign key; the
// right side keeps the subscriptions in the store "<name>-subscriptions"
// (on the backend supplier returns; changelogged) and answers through
// topics.Response, keyed by left key, both for the
// subscription and for every later change of the right row. Each
// subscription carries a hash of the left value it was sent for; an
// answer whose hash is not the current left value's is stale (the row
// changed since) and is dropped, so a left row whose foreign key changes
// never joins its old right row again. The left value serde must encode
// equal values to equal bytes. The inner join also keeps which left keys
// have a result, in the store "<name>-results" (see subscribeProc in the
// source: it closes a race Kafka Streams leaves open).
//
// Results are timestamped as in Kafka Streams: with the later of the left
// change's and the right row's timestamps for a left change, with the right
// change's for a right change.
//
// The join is nodes named "<name>-subscribe", "<name>-subscription" (the
// repartition of topics.Subscription), "<name>-subscription-join",
// "<name>-foreign-join", "<name>-responses", "<name>-response" (the
// repartition of topics.Response) and "<name>" (the node returned).
func ForeignKey[K, L, FK, R, VOut any](left table.Table[K, L], right table.Table[FK, R], name string,
	foreignKey func(key K, l L) (FK, error), joiner func(key K, l L, r R) (VOut, error), topics ForeignKeyTopics, supplier store.Supplier) kstreams.Node[K, *VOut] {
	if foreignKey == nil || joiner == nil {
		addError(left.Changes(), fmt.Errorf("foreign-key join %s: nil foreign-key extractor or joiner", name))
	}
	return foreignKeyJoin(left, right, name, foreignKey, false, func(key K, l L, r *R) (*VOut, error) {
		if r == nil {
			return nil, nil
		}
		out, err := joiner(key, l, *r)
		return &out, err
	}, topics, supplier)
}

// ForeignKeyLeft adds a left foreign-key join of two tables: as
// ForeignKey, but every left row has a result, joined with a nil right
// value where right lacks its foreign key (Kafka Streams' KTable.leftJoin
// with a foreign-key extractor).
func ForeignKeyLeft[K, L, FK, R, VOut any](left table.Table[K, L], right table.Table[FK, R], name string,
	foreignKey func(key K, l L) (FK, error), joiner func(key K, l L, r *R) (VOut, error), topics ForeignKeyTopics, supplier store.Supplier) kstreams.Node[K, *VOut] {
	if foreignKey == nil || joiner == nil {
		addError(left.Changes(), fmt.Errorf("foreign-key left join %s: nil foreign-key extractor or joiner", name))
	}
	return foreignKeyJoin(left, right, name, foreignKey, true, func(key K, l L, r *R) (*VOut, error) {
		out, err := joiner(key, l, r)
		return &out, err
	}, topics, supplier)
}

func foreignKeyJoin[K, L, FK, R, VOut any](left table.Table[K, L], right table.Table[FK, R], name string,
	foreignKey func(key K, l L) (FK, error), leftJoin bool, join func(key K, l L, r *R) (*VOut, error), topics ForeignKeyTopics, supplier store.Supplier) kstreams.Node[K, *VOut] {
	b := left.Changes().Builder()
	if b == nil {
		return kstreams.Node[K, *VOut]{}
	}
	if topics.Subscription == "" || topics.Response == "" || topics.Subscription == topics.Response {
		b.AddError(fmt.Errorf("foreign-key join %s: the subscription and response topics must be named, and differ (got %q and %q)", name, topics.Subscription, topics.Response))
		return kstreams.Node[K, *VOut]{}
	}
	hasher := &valueHasher[L]{values: left.Values(), topic: topics.Subscription}
	subs := kstreams.AddStore(b, store.KeyValue(name+"-subscriptions", serde.Bytes, serde.Bytes, supplier))
	// An inner join keeps the left keys that have a result (see
	// subscribeProc); a left join's every left row has one.
	var results *kstreams.Store[store.KeyValueStore[K, []byte]]
	leftStores := []kstreams.AnyStore{left.Store()}
	var subscribeOpts []kstreams.ProcessOption
	if !leftJoin {
		st := kstreams.AddStore(b, store.KeyValue(name+"-results", left.Keys(), serde.Bytes, supplier))
		results = &st
		leftStores = append(leftStores, st)
		subscribeOpts = append(subscribeOpts, kstreams.WithStores(st))
	}

	// Left side: each change of a left row subscribes to its foreign key
	// (and unsubscribes from the old one).
	subscribe := kstreams.Process(left.Changes(), name+"-subscribe", func() kstreams.Processor[K, table.Change[L], FK, subscription[K]] {
		return &subscribeProc[K, L, FK]{foreignKey: foreignKey, leftJoin: leftJoin, hasher: hasher, fks: right.Keys(), topic: topics.Subscription, results: results}
	}, subscribeOpts...)
	subscriptions := kstreams.Through(subscribe, name+"-subscription", topics.Subscription, topics.SubscriptionPartitions,
		right.Keys(), serde.Serde[subscription[K]](subscriptionSerde[K]{left.Keys()}))

	// Right side: subscriptions are kept and answered; right changes answer
	// every subscription of their key.
	fromSubs := kstreams.Process(subscriptions, name+"-subscription-join", func() kstreams.Processor[FK, subscription[K], K, response[R]] {
		return &subscriptionJoinProc[K, FK, R]{subs: subs, right: right, fks: right.Keys(), keys: left.Keys(), topic: topics.Subscription}
	}, kstreams.WithStores(subs, right.Store()))
	fromRight := kstreams.Process(right.Changes(), name+"-foreign-join", func() kstreams.Processor[FK, table.Change[R], K, response[R]] {
		return &foreignJoinProc[K, FK, R]{subs: subs, fks: right.Keys(), keys: left.Keys(), topic: topics.Subscription}
	}, kstreams.WithStores(subs))
	answers := kstreams.Merge(name+"-responses", fromSubs, fromRight)
	responses := kstreams.Through(answers, name+"-response", topics.Response, topics.ResponsePartitions,
		left.Keys(), serde.Serde[response[R]](responseSerde[R]{right.Values()}),
		kstreams.WithPartitioner(func(r kstreams.Record[K, response[R]], _ []byte, _ int32) int32 { return r.Value.partition }))

	// Left side again: answers for the current left value are joined.
	return kstreams.Process(responses, name, func() kstreams.Processor[K, response[R], K, *VOut] {
		return &resolveProc[K, L, R, VOut]{left: left, hasher: hasher, leftJoin: leftJoin, join: join, results: results}
	}, kstreams.WithStores(leftStores...))
}

// valueHasher hashes left values: the first 16 bytes of the SHA-256 of
// their encoding.
type valueHasher[L any] struct {
	values serde.Serde[L]
	topic  string
}

func (h *valueHasher[L]) hash(v L) ([]byte, error) {
	enc, err := h.values.Serialize(nil, h.topic, nil, v)
	if err != nil {
		return nil, fmt.Errorf("encoding a left value to hash it: %w", err)
	}
	sum := sha256.Sum256(enc)
	return sum[:hashLen:hashLen], nil
}

// subscribeProc turns a left row's change into subscriptions, as Kafka
// Streams' SubscriptionSendProcessorSupplier decides them, but for one
// case.
//
// Kafka Streams' inner join asks for an answer only if the right row
// exists when a left row is inserted or keeps its foreign key, reasoning
// that the row had no result before, or one its right row's deletion
// removed. On a cluster the removal may never happen: the deletion's
// answer, or the tombstone of the row's own deletion, reaches the left
// side after the row changed again, and is dropped as stale. The row's
// earlier result then stays, joined with a right row (or for a left row)
// that no longer exists. So the inner join keeps the left keys that have
// a result (results), and asks for an answer either way when the key has
// one: the answer, for the current value, then removes it. Processing one
// record at a time (the test driver, Kafka Streams' TopologyTestDriver)
// the two behave the same.
type subscribeProc[K, L, FK any] struct {
	foreignKey func(key K, l L) (FK, error)
	leftJoin   bool
	hasher     *valueHasher[L]
	fks        serde.Serde[FK]
	topic      string
	results    *kstreams.Store[store.KeyValueStore[K, []byte]] // inner joins only
	hasResult  store.KeyValueStore[K, []byte]
	pc         kstreams.ProcessorContext[FK, subscription[K]]
}

func (p *subscribeProc[K, L, FK]) Init(pc kstreams.ProcessorContext[FK, subscription[K]]) (err error) {
	p.pc = pc
	if p.results != nil {
		p.hasResult, err = p.results.Get(pc)
	}
	return err
}

func (p *subscribeProc[K, L, FK]) Process(ctx context.Context, r kstreams.Record[K, table.Change[L]]) error {
	c := r.Value
	if c.New == nil && c.Old == nil {
		return nil // a tombstone of a row the table did not hold
	}
	var oldFK, newFK FK
	var oldEnc, newEnc []byte
	var err error
	if c.Old != nil {
		if oldFK, oldEnc, err = p.extract(r.Key, *c.Old); err != nil {
			return err
		}
	}
	var hash []byte
	if c.New != nil {
		if newFK, newEnc, err = p.extract(r.Key, *c.New); err != nil {
			return err
		}
		if hash, err = p.hasher.hash(*c.New); err != nil {
			return fmt.Errorf("join %s: %w", p.pc.Node(), err)
		}
	}
	send := func(fk FK, instr instruction) error {
		out := kstreams.Record[FK, subscription[K]]{Key: fk, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin,
			Value: subscription[K]{instr: instr, hash: hash, partition: p.pc.TaskID().Partition, key: r.Key}}
		return p.pc.Forward(ctx, out)
	}
	changed := c.Old != nil && c.New != nil && !bytes.Equal(oldEnc, newEnc)
	switch {
	case c.New == nil && p.leftJoin:
		return send(oldFK, unsubscribeAndPropagateOwnTime)
	case c.New == nil:
		return send(oldFK, unsubscribeAndPropagate)
	case changed:
		if err := send(oldFK, unsubscribe); err != nil {
			return err
		}
		return send(newFK, propagateNullIfMissing)
	case p.leftJoin:
		return send(newFK, propagateNullIfMissing)
	default:
		// An inner join's new row, or one whose foreign key stayed: with no
		// right row there is nothing to remove, unless the key still has a
		// result (see subscribeProc).
		_, has, err := p.hasResult.Get(r.Key)
		if err != nil {
			return fmt.Errorf("join %s: reading the results: %w", p.pc.Node(), err)
		}
		if has {
			return send(newFK, propagateNullIfMissing)
		}
		return send(newFK, propagateIfFound)
	}
}

func (p *subscribeProc[K, L, FK]) extract(key K, v L) (FK, []byte, error) {
	fk, err := p.foreignKey(key, v)
	if err != nil {
		return fk, nil, fmt.Errorf("join %s: extracting the foreign key: %w", p.pc.Node(), err)
	}
	enc, err := p.fks.Serialize(nil, p.topic, nil, fk)
	if err != nil {
		return fk, nil, fmt.Errorf("join %s: encoding the foreign key: %w", p.pc.Node(), err)
	}
	return fk, enc, nil
}

func (p *subscribeProc[K, L, FK]) Close() error { return nil }

// subscriptionJoinProc keeps the subscriptions and answers them with the
// right row.
type subscriptionJoinProc[K, FK, R any] struct {
	subs  kstreams.Store[store.KeyValueStore[[]byte, []byte]]
	right table.Table[FK, R]
	fks   serde.Serde[FK]
	keys  serde.Serde[K]
	topic string
	kv    store.KeyValueStore[[]byte, []byte]
	rows  table.Reader[FK, R]
	pc    kstreams.ProcessorContext[K, response[R]]
}

func (p *subscriptionJoinProc[K, FK, R]) Init(pc kstreams.ProcessorContext[K, response[R]]) (err error) {
	p.pc = pc
	if p.kv, err = p.subs.Get(pc); err != nil {
		return err
	}
	p.rows, err = p.right.Reader(pc)
	return err
}

func (p *subscriptionJoinProc[K, FK, R]) Process(ctx context.Context, r kstreams.Record[FK, subscription[K]]) error {
	s := r.Value
	fk, err := p.fks.Serialize(nil, p.topic, nil, r.Key)
	if err != nil {
		return fmt.Errorf("join %s: encoding the foreign key: %w", p.pc.Node(), err)
	}
	k, err := p.keys.Serialize(nil, p.topic, nil, s.key)
	if err != nil {
		return fmt.Errorf("join %s: encoding the left key: %w", p.pc.Node(), err)
	}
	sk := subscriptionKey(fk, k)
	switch s.instr {
	case unsubscribe, unsubscribeAndPropagate, unsubscribeAndPropagateOwnTime:
		err = p.kv.Delete(sk)
	default:
		err = p.kv.Put(sk, encodeStored(s.hash, s.partition))
	}
	if err != nil {
		return fmt.Errorf("join %s: writing a subscription: %w", p.pc.Node(), err)
	}
	if s.instr == unsubscribe {
		return nil
	}
	row, found, err := p.rows.GetRow(r.Key)
	if err != nil {
		return fmt.Errorf("join %s: reading table %s: %w", p.pc.Node(), p.right.Name(), err)
	}
	out := kstreams.Record[K, response[R]]{Key: s.key, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin,
		Value: response[R]{hash: s.hash, partition: s.partition}}
	if found && s.instr != unsubscribeAndPropagateOwnTime {
		out.Timestamp = latest(r.Timestamp, row.Timestamp)
	}
	switch s.instr {
	case propagateIfFound:
		if !found {
			return nil
		}
		out.Value.value = &row.Value
	case propagateNullIfMissing:
		if found {
			out.Value.value = &row.Value
		}
	}
	return p.pc.Forward(ctx, out)
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (p *subscriptionJoinProc[K, FK, R]) Close() error { return nil }

// foreignJoinProc answers every subscription of a right row that changed.
type foreignJoinProc[K, FK, R any] struct {
	subs  kstreams.Store[store.KeyValueStore[[]byte, []byte]]
	fks   serde.Serde[FK]
	keys  serde.Serde[K]
	topic string
	kv    store.KeyValueStore[[]byte, []byte]
	pc    kstreams.ProcessorContext[K, response[R]]
}

func (p *foreignJoinProc[K, FK, R]) Init(pc kstreams.ProcessorContext[K, response[R]]) (err error) {
	p.pc = pc
	p.kv, err = p.subs.Get(pc)
	return err
}

func (p *foreignJoinProc[K, FK, R]) Process(ctx context.Context, r kstreams.Record[FK, table.Change[R]]) error {
	fk, err := p.fks.Serialize(nil, p.topic, nil, r.Key)
	if err != nil {
		return fmt.Errorf("join %s: encoding the foreign key: %w", p.pc.Node(), err)
	}
	// Collect first: forwarding while iterating would hold the store's
	// iterator across the downstream's work.
	type answer struct {
		key       K
		hash      []byte
		partition int32
	}
	var answers []answer
	for e, err := range p.kv.Prefix(subscriptionPrefix(fk)) {
		if err != nil {
			return fmt.Errorf("join %s: reading the subscriptions: %w", p.pc.Node(), err)
		}
		kb, err := leftKeyOf(e.Key)
		if err != nil {
			return fmt.Errorf("join %s: %w", p.pc.Node(), err)
		}
		k, err := p.keys.Deserialize(p.topic, nil, bytes.Clone(kb))
		if err != nil {
			return fmt.Errorf("join %s: decoding a subscribed left key: %w", p.pc.Node(), err)
		}
		hash, partition, err := decodeStored(e.Value)
		if err != nil {
			return fmt.Errorf("join %s: %w", p.pc.Node(), err)
		}
		answers = append(answers, answer{k, bytes.Clone(hash), partition})
	}
	for _, a := range answers {
		out := kstreams.Record[K, response[R]]{Key: a.key, Timestamp: r.Timestamp, Headers: r.Headers, Origin: r.Origin,
			Value: response[R]{hash: a.hash, value: r.Value.New, partition: a.partition}}
		if err := p.pc.Forward(ctx, out); err != nil {
			return err
		}
	}
	return nil
}

func (p *foreignJoinProc[K, FK, R]) Close() error { return nil }

// resolveProc joins the answers that are for the current left value and
// drops the stale ones.
type resolveProc[K, L, R, VOut any] struct {
	left      table.Table[K, L]
	hasher    *valueHasher[L]
	leftJoin  bool
	join      func(key K, l L, r *R) (*VOut, error)
	results   *kstreams.Store[store.KeyValueStore[K, []byte]] // inner joins only
	hasResult store.KeyValueStore[K, []byte]
	rows      table.Reader[K, L]
	pc        kstreams.ProcessorContext[K, *VOut]
}

func (p *resolveProc[K, L, R, VOut]) Init(pc kstreams.ProcessorContext[K, *VOut]) (err error) {
	p.pc = pc
	if p.results != nil {
		if p.hasResult, err = p.results.Get(pc); err != nil {
			return err
		}
	}
	p.rows, err = p.left.Reader(pc)
	return err
}

func (p *resolveProc[K, L, R, VOut]) Process(ctx context.Context, r kstreams.Record[K, response[R]]) error {
	cur, found, err := p.rows.Get(r.Key)
	if err != nil {
		return fmt.Errorf("join %s: reading table %s: %w", p.pc.Node(), p.left.Name(), err)
	}
	var hash []byte
	if found {
		if hash, err = p.hasher.hash(cur); err != nil {
			return fmt.Errorf("join %s: %w", p.pc.Node(), err)
		}
	}
	if !bytes.Equal(hash, r.Value.hash) || (hash == nil) != (r.Value.hash == nil) {
		return nil // an answer for a left value that has changed since
	}
	var out *VOut
	if found && (r.Value.value != nil || p.leftJoin) {
		if out, err = p.join(r.Key, cur, r.Value.value); err != nil {
			return fmt.Errorf("join %s: %w", p.pc.Node(), err)
		}
	}
	if p.hasResult != nil {
		if out != nil {
			err = p.hasResult.Put(r.Key, []byte{})
		} else {
			err = p.hasResult.Delete(r.Key)
		}
		if err != nil {
			return fmt.Errorf("join %s: writing the results: %w", p.pc.Node(), err)
		}
	}
	return p.pc.Forward(ctx, kstreams.WithValue(r, out))
}

func (p *resolveProc[K, L, R, VOut]) Close() error { return nil }
