package store

import "fmt"

// BatchGetter is implemented by backends that read many keys in one round
// trip (a remote store: Redis's HMGET, Bigtable's ReadRows with a row
// list), so that a batch processor reads all the keys of its batch at once
// (see KeyValueStore.GetMany). Backends without it are read with one Get
// per key: GetMany (the function) hides the difference.
//
// A backend that wraps another (changelogging, metrics) implements
// BatchGetter by calling GetMany(inner, keys), so that the inner backend's
// batch read is not lost behind the wrapper.
type BatchGetter interface {
	// GetMany returns, for each keys[i], its value in values[i] and whether
	// it was found in found[i], as Get would (the writes that returned
	// before the call included). Keys may repeat. The returned slices may
	// be retained by the caller; keys stay owned by the caller.
	GetMany(keys [][]byte) (values [][]byte, found []bool, err error)
}

// GetMany reads keys from b: in one GetMany call if b implements
// BatchGetter, else with one Get per key.
func GetMany(b Backend, keys [][]byte) (values [][]byte, found []bool, err error) {
	if bg, ok := b.(BatchGetter); ok {
		values, found, err = bg.GetMany(keys)
		if err == nil && (len(values) != len(keys) || len(found) != len(keys)) {
			return nil, nil, fmt.Errorf("store: GetMany of %d keys returned %d values and %d found flags", len(keys), len(values), len(found))
		}
		return values, found, err
	}
	values, found = make([][]byte, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		values[i], found[i], err = b.Get(k)
		if err != nil {
			return nil, nil, fmt.Errorf("store: reading key %d of %d: %w", i+1, len(keys), err)
		}
	}
	return values, found, nil
}

// GetMany reads many keys at once: in one round trip if the store's backend
// implements BatchGetter (the Redis and Bigtable stores do), else with one
// Get per key. values[i] and found[i] answer keys[i].
func (s *kvStore[K, V]) GetMany(keys []K) (values []V, found []bool, err error) {
	if len(keys) == 0 {
		return nil, nil, nil
	}
	raw := make([][]byte, len(keys))
	var buf []byte
	for i, key := range keys {
		// The encoded keys share one buffer: the backend does not keep them.
		start := len(buf)
		buf, err = s.encodeKey(buf, key)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (key %d of %d)", err, i+1, len(keys))
		}
		raw[i] = buf[start:len(buf):len(buf)]
	}
	// A grown buffer leaves earlier keys in the old array, still valid.
	vals, found, err := GetMany(s.b, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("store %s: get many: %w", s.name, err)
	}
	values = make([]V, len(keys))
	for i, v := range vals {
		if !found[i] {
			continue
		}
		if values[i], err = s.values.Deserialize(s.topic, nil, v); err != nil {
			return nil, nil, fmt.Errorf("store %s: decoding the value of key %d of %d (%x): %w", s.name, i+1, len(keys), raw[i], err)
		}
	}
	return values, found, nil
}
