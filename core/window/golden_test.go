package window_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/window"
)

// TestKeysGolden pins the bytes of window keys and stamped aggregates
// (testdata/keys.golden): the current code must decode what earlier versions
// wrote to the same keys, windows and aggregates, encode them to the same
// bytes, and keep the key lines in encoding order.
func TestKeysGolden(t *testing.T) {
	f, err := os.Open("testdata/keys.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ks, ss := window.KeySerde(serde.String), window.StampedSerde(serde.String)
	parseTime := func(n int, s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		return ts
	}
	unquote := func(n int, s string) string {
		v, err := strconv.Unquote(s)
		if err != nil {
			t.Fatalf("line %d: %s: %v", n, s, err)
		}
		return v
	}
	var prevKey []byte
	keys, stamped := 0, 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		want, err := hex.DecodeString(fields[len(fields)-1])
		if err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		switch {
		case fields[0] == "key" && len(fields) == 5:
			keys++
			k := window.Key[string]{Key: unquote(n, fields[1]), Window: window.Window{Start: parseTime(n, fields[2]), End: parseTime(n, fields[3])}}
			got, err := ks.Serialize(nil, "t", nil, k)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("line %d: %v encodes to %x, %v; the pinned bytes are %x", n, k, got, err, want)
			}
			dec, err := ks.Deserialize("t", nil, want)
			if err != nil || dec.Key != k.Key || !dec.Window.Start.Equal(k.Window.Start) || !dec.Window.End.Equal(k.Window.End) {
				t.Errorf("line %d: %x decodes to %v, %v; want %v", n, want, dec, err, k)
			}
			if dec.Window.Start.Location() != time.UTC || dec.Window.End.Location() != time.UTC {
				t.Errorf("line %d: decoded bounds are not in UTC: %v", n, dec.Window)
			}
			if prevKey != nil && bytes.Compare(prevKey, want) >= 0 {
				t.Errorf("line %d: %x does not sort after the previous key's %x", n, want, prevKey)
			}
			prevKey = want
		case fields[0] == "stamped" && len(fields) == 4:
			stamped++
			v := window.Stamped[string]{Timestamp: parseTime(n, fields[1]), Value: unquote(n, fields[2])}
			got, err := ss.Serialize(nil, "t", nil, v)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("line %d: %+v encodes to %x, %v; the pinned bytes are %x", n, v, got, err, want)
			}
			dec, err := ss.Deserialize("t", nil, want)
			if err != nil || dec.Value != v.Value || !dec.Timestamp.Equal(v.Timestamp) {
				t.Errorf("line %d: %x decodes to %+v, %v; want %+v", n, want, dec, err, v)
			}
		default:
			t.Fatalf("line %d: unknown line %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if keys < 5 || stamped < 2 {
		t.Fatalf("%d key lines and %d stamped lines: too few", keys, stamped)
	}
}
