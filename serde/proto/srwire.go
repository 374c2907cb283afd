package proto

// This file is the schema-registry plumbing shared (by copy) with the avro and
// proto serde modules: registry options, the header error, and the cache of
// schema ids resolved through the registry. Keep the copies in step.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
)

// DefaultLookupTimeout is the default bound on a registry request made while
// deserializing. See [LookupTimeout].
const DefaultLookupTimeout = 10 * time.Second

type registryConfig struct {
	lookupOnly bool
	timeout    time.Duration
	refs       []sr.SchemaReference // proto only
}

// LookupOnly makes [NewRegistry] look up the id of the schema already
// registered under the subject instead of registering it. Use it where
// applications may not register schemas (Confluent's
// auto.register.schemas=false); NewRegistry then fails if the schema is not
// registered.
func LookupOnly() Option { return func(c *config) { c.registry.lookupOnly = true } }

// LookupTimeout bounds each registry request that Deserialize makes to
// resolve a schema id it has not seen before (default
// [DefaultLookupTimeout]). Deserialize has no context of its own; a lookup
// happens once per id and its result is cached.
func LookupTimeout(d time.Duration) Option {
	return func(c *config) { c.registry.timeout = d }
}

// registerSchema registers (or, with LookupOnly, looks up) s under subject
// and returns its id.
func registerSchema(ctx context.Context, client *sr.Client, subject string, s sr.Schema, rc registryConfig) (int, error) {
	if client == nil {
		return 0, errors.New("nil *sr.Client")
	}
	if rc.lookupOnly {
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

// headerError explains why data does not start with a schema-registry header.
// It wraps err (sr.ErrBadHeader) so that errors.Is still matches it.
func headerError(data []byte, err error) error {
	switch {
	case len(data) < 5:
		return fmt.Errorf("%d bytes, shorter than the 5-byte schema-registry header (magic byte 0, 4-byte schema id): %w", len(data), err)
	case data[0] != 0:
		return fmt.Errorf("magic byte is 0x%02x, want 0x00: data is not in the schema-registry wire format: %w", data[0], err)
	}
	return err
}

// schemaCache resolves schema ids that a serde did not register itself (data
// written with another version of the schema) through the registry, once per
// id, and keeps the result. Failed lookups are not cached, so that a
// transient registry error does not stick.
type schemaCache[V any] struct {
	client  *sr.Client
	timeout time.Duration
	want    sr.SchemaType
	build   func(sr.Schema) (V, error)

	mu sync.RWMutex
	m  map[int]V
}

func newSchemaCache[V any](client *sr.Client, timeout time.Duration, want sr.SchemaType, build func(sr.Schema) (V, error)) *schemaCache[V] {
	if timeout <= 0 {
		timeout = DefaultLookupTimeout
	}
	return &schemaCache[V]{client: client, timeout: timeout, want: want, build: build, m: make(map[int]V)}
}

func (c *schemaCache[V]) get(id int) (V, error) {
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
