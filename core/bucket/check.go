package bucket

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxNameLen is the longest object name a Bucket accepts, in bytes (S3's
// and GCS's limit).
const MaxNameLen = 1024

// CheckName returns an error if name is not a valid object name: empty,
// longer than MaxNameLen, not valid UTF-8, or holding a NUL, CR or LF.
// Drivers call it before they reach the service.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("empty object name")
	case len(name) > MaxNameLen:
		return fmt.Errorf("object name of %d bytes, the limit is %d", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("object name %q is not valid UTF-8", name)
	}
	for _, c := range []byte(name) {
		if c == 0 || c == '\r' || c == '\n' {
			return fmt.Errorf("object name %q holds a NUL, CR or LF byte", name)
		}
	}
	return nil
}

// CheckConditional checks, with a few requests on a new object under
// prefix (deleted afterwards), that b refuses the writes its conditions
// forbid: a second IfAbsent creation, and an IfMatch with a stale version.
// It returns an error wrapping ErrConditionalWritesIgnored if b accepted
// either, so that state needing fencing is not kept where a stale owner
// could overwrite its successor.
func CheckConditional(ctx context.Context, b Bucket, prefix string) error {
	var nonce [8]byte
	rand.Read(nonce[:])
	name := fmt.Sprintf("%sconditional-write-probe-%x", prefix, nonce)
	put := func(data string, cond Cond) (string, error) {
		return b.Put(ctx, name, bytes.NewReader([]byte(data)), int64(len(data)), cond)
	}
	defer b.Delete(context.WithoutCancel(ctx), name)
	v1, err := put("first", IfAbsent)
	if err != nil {
		return fmt.Errorf("checking conditional writes on %s: creating the probe: %w", name, err)
	}
	_, err = put("second", IfAbsent)
	switch {
	case err == nil:
		return fmt.Errorf("checking conditional writes on %s: a second create-if-absent was accepted: %w", name, ErrConditionalWritesIgnored)
	case !errors.Is(err, ErrPreconditionFailed):
		return fmt.Errorf("checking conditional writes on %s: second create-if-absent: %w", name, err)
	}
	v2, err := put("third", IfMatch(v1))
	if err != nil {
		return fmt.Errorf("checking conditional writes on %s: compare-and-swap on the current version: %w", name, err)
	}
	if v2 == v1 {
		return fmt.Errorf("checking conditional writes on %s: a rewrite kept version %q: %w", name, v1, ErrConditionalWritesIgnored)
	}
	_, err = put("fourth", IfMatch(v1))
	switch {
	case err == nil:
		return fmt.Errorf("checking conditional writes on %s: a compare-and-swap on a stale version was accepted: %w", name, ErrConditionalWritesIgnored)
	case !errors.Is(err, ErrPreconditionFailed):
		return fmt.Errorf("checking conditional writes on %s: compare-and-swap on a stale version: %w", name, err)
	}
	return nil
}
