// Package registry is the Confluent schema-registry plumbing that the
// kstreams serde modules with a registry variant (serde/avro, serde/json,
// serde/proto) share, so that they frame data, talk to the registry and word
// their errors alike: registering a serde's schema ([Register]), the
// wire-format header ([AppendHeader], [DecodeID]) and the resolution of
// schema ids a serde did not register itself ([Cache]).
//
// What is specific to a format stays in its module: protobuf's message
// index after the header, Avro's resolution of a writer schema against the
// reader's. The registry client is franz-go's [sr.Client].
//
// Errors carry no format prefix; a serde adds its own ("avro: ...").
package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// DefaultLookupTimeout is the default bound on a registry request made while
// deserializing, when a [Cache] resolves a schema id it has not seen before.
const DefaultLookupTimeout = 10 * time.Second

// Register registers s under subject and returns its id. With lookupOnly it
// instead looks up the id of the schema already registered under subject,
// and fails if there is none: that is for applications that may not
// register schemas (Confluent's auto.register.schemas=false).
func Register(ctx context.Context, client *sr.Client, subject string, s sr.Schema, lookupOnly bool) (int, error) {
	if client == nil {
		return 0, errors.New("nil *sr.Client")
	}
	if lookupOnly {
		ss, err := client.LookupSchema(ctx, subject, s)
		if err != nil {
			return 0, fmt.Errorf("looking up %s schema under subject %q: %w", s.Type, subject, err)
		}
		return ss.ID, nil
	}
	id, err := client.RegisterSchema(ctx, subject, s, -1, -1)
	if err != nil {
		return 0, fmt.Errorf("registering %s schema under subject %q: %w", s.Type, subject, err)
	}
	return id, nil
}

// Cache resolves schema ids that a serde did not register itself (data
// written with another version of the schema) through the registry, once per
// id, and keeps what build made of each schema. Failed lookups are not
// cached, so that a transient registry error does not stick. A Cache is safe
// for concurrent use.
type Cache[V any] struct {
	client  *sr.Client
	timeout time.Duration
	want    sr.SchemaType
	build   func(sr.Schema) (V, error)

	mu sync.RWMutex
	m  map[int]V
}

// NewCache returns a Cache that looks schema ids up with client, each request
// bounded by timeout (0 or less for [DefaultLookupTimeout]), accepts only
// schemas of type want, and keeps build's result for each. A serde that only
// needs to know that an id exists and has the right type builds struct{}.
func NewCache[V any](client *sr.Client, timeout time.Duration, want sr.SchemaType, build func(sr.Schema) (V, error)) *Cache[V] {
	if timeout <= 0 {
		timeout = DefaultLookupTimeout
	}
	return &Cache[V]{client: client, timeout: timeout, want: want, build: build, m: make(map[int]V)}
}

// Get returns what build made of the schema with the given id, looking it up
// in the registry the first time. Its errors say whether the registry does
// not know the id (they then wrap the registry's *sr.ResponseError), the
// lookup failed, the schema has another type, or build failed.
func (c *Cache[V]) Get(id int) (V, error) {
	c.mu.RLock()
	v, ok := c.m[id]
	c.mu.RUnlock()
	if ok {
		return v, nil
	}
	var zero V
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	s, err := c.client.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && sr.IsNotFoundError(re.ErrorCode) {
			return zero, fmt.Errorf("schema id %d is unknown to the registry: %w", id, err)
		}
		return zero, fmt.Errorf("looking up schema id %d in the registry: %w", id, err)
	}
	if s.Type != c.want {
		return zero, fmt.Errorf("schema id %d is a %s schema, want %s", id, s.Type, c.want)
	}
	if v, err = c.build(s); err != nil {
		return zero, fmt.Errorf("schema id %d: %w", id, err)
	}
	c.mu.Lock()
	c.m[id] = v
	c.mu.Unlock()
	return v, nil
}
