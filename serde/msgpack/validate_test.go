package msgpack

import (
	"bytes"
	"strings"
	"testing"

	upstream "github.com/vmihailenco/msgpack/v5"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		data []byte
		want string // "" for valid
	}{
		{[]byte{0x00}, ""},
		{[]byte{0xc0}, ""},
		{[]byte{0x92, 0x01, 0xa1, 'x'}, ""},
		{[]byte{0x81, 0xa1, 'k', 0x90}, ""},
		{[]byte{0xc4, 0x02, 0xff, 0xff}, ""},                  // bin8
		{[]byte{0xd6, 0xff, 0, 0, 0, 1}, ""},                  // fixext4 (timestamp)
		{[]byte{0xc7, 0x01, 0x05, 0xaa}, ""},                  // ext8
		{[]byte{0xdc, 0x00, 0x02, 0xc2, 0xc3}, ""},            // array16
		{[]byte{0xcb, 0, 0, 0, 0, 0, 0, 0, 0}, ""},            // float64
		{[]byte{}, "truncated"},                               // nothing
		{[]byte{0x92, 0x01}, "declares 2 values but only 1"},  // short array
		{[]byte{0x91}, "declares 1 values but only 0"},        // empty array body
		{[]byte{0xa2, 'x'}, "truncated"},                      // short string
		{[]byte{0xcd, 0x01}, "truncated"},                     // short uint16
		{[]byte{0xc7, 0x02, 0x05, 0xaa}, "truncated"},         // short ext8
		{[]byte{0xc1}, "not a MessagePack type"},              // reserved
		{[]byte{0x01, 0x02}, "1 bytes left after the value"},  // two values
		{[]byte{0xde, 0x00, 0x01, 0xa1}, "declares 2 values"}, // map16 counts keys and values
		{[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "declares 4294967295 values"},
	} {
		err := validate(tc.data)
		if tc.want == "" && err != nil {
			t.Errorf("% x: %v, want valid", tc.data, err)
		}
		if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("% x: got %v, want an error containing %q", tc.data, err, tc.want)
		}
	}
	deep := append(bytes.Repeat([]byte{0x91}, MaxDepth), 0xc0)
	if err := validate(deep); err != nil {
		t.Errorf("nesting of MaxDepth: %v", err)
	}
	if err := validate(append([]byte{0x91}, deep...)); err == nil {
		t.Error("nesting of MaxDepth+1: no error")
	}
}

// FuzzValidate checks the validation pass against the upstream decoder: it
// must accept exactly the inputs that upstream reads as one value, nesting
// deeper than MaxDepth aside.
func FuzzValidate(f *testing.F) {
	for _, seed := range [][]byte{
		{0x92, 0x01, 0xa1, 'x'},
		{0x81, 0xa1, 'k', 0x90},
		{0xc7, 0x01, 0x05, 0xaa},
		{0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{0xdf, 0, 0, 0, 1, 0xa0, 0xc0},
		{0xdd, 0xff, 0xff, 0xff, 0xff},
		{0xc1},
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := validate(data)
		r := bytes.NewReader(data)
		skipErr := upstream.NewDecoder(r).Skip()
		oneValue := skipErr == nil && r.Len() == 0
		if err == nil && !oneValue {
			t.Fatalf("validate accepted % x; upstream: %v, %d bytes left", data, skipErr, r.Len())
		}
		if err != nil && oneValue && !strings.Contains(err.Error(), "nesting deeper") {
			t.Fatalf("validate rejected % x (%v), upstream reads it as one value", data, err)
		}
	})
}
