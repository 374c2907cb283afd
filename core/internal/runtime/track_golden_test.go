package runtime

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// goldenMeta is one line of testdata/commit-metadata.golden.
type goldenMeta struct {
	line      int
	kind      string // both, decode, error
	committed int64
	meta      string
	offsets   []int64
}

func readGoldenMeta(t *testing.T) []goldenMeta {
	t.Helper()
	f, err := os.Open("testdata/commit-metadata.golden")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []goldenMeta
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			t.Fatalf("golden line %d: %d fields, want 4: %q", n, len(fields), line)
		}
		c := goldenMeta{line: n, kind: fields[0], meta: fields[2]}
		if c.committed, err = strconv.ParseInt(fields[1], 10, 64); err != nil {
			t.Fatalf("golden line %d: committed: %v", n, err)
		}
		if c.meta == "-" {
			c.meta = ""
		}
		if c.offsets, err = parseRanges(fields[3]); err != nil {
			t.Fatalf("golden line %d: offsets: %v", n, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

// parseRanges parses "a-b,c,d-e" ("-": none).
func parseRanges(s string) ([]int64, error) {
	if s == "-" {
		return nil, nil
	}
	var out []int64
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseInt(lo, 10, 64)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.ParseInt(hi, 10, 64); err != nil {
				return nil, err
			}
		}
		for o := a; o <= b; o++ {
			out = append(out, o)
		}
	}
	return out, nil
}

// TestCommitMetadataGolden: the metadata of earlier commits keeps decoding
// to the same offsets, and the encoder still writes the same bytes.
func TestCommitMetadataGolden(t *testing.T) {
	cases := readGoldenMeta(t)
	kinds := map[string]int{}
	for _, c := range cases {
		kinds[c.kind]++
		t.Run(fmt.Sprintf("line%d", c.line), func(t *testing.T) {
			got, err := decodeDone(c.committed, c.meta)
			switch c.kind {
			case "both":
				if enc := encodeDone(c.committed, c.offsets); enc != c.meta {
					t.Errorf("encodeDone(%d, %d offsets) = %q, want the pinned %q", c.committed, len(c.offsets), enc, c.meta)
				}
				fallthrough
			case "decode":
				if err != nil || !slices.Equal(got, c.offsets) {
					t.Errorf("decodeDone(%d, %q) = %v, %v; want %v", c.committed, c.meta, got, err, c.offsets)
				}
			case "error":
				if !errors.Is(err, errBadMetadata) {
					t.Errorf("decodeDone(%d, %q) = %v, %v; want errBadMetadata", c.committed, c.meta, got, err)
				}
			default:
				t.Fatalf("unknown kind %q", c.kind)
			}
		})
	}
	if kinds["both"] < 5 || kinds["decode"] < 3 || kinds["error"] < 3 {
		t.Fatalf("golden file has %v cases: too few of a kind", kinds)
	}
}

// TestCommitMetadataLayout spells out the format documented in track.go,
// byte by byte, for one commit of each form.
func TestCommitMetadataLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed int64
		done      []int64
		raw       []byte // after the prefix, before base64
	}{
		// Runs: 'r', then (gap, length) uvarint pairs. 101-103: gap 0 after
		// 100, 3 long; 200-201: gap 96 after 103, 2 long; 5000: gap 4798
		// (uvarint 0xbe 0x25) after 201, 1 long.
		{"runs", 100, []int64{101, 102, 103, 200, 201, 5000}, []byte{'r', 0, 3, 96, 2, 0xbe, 0x25, 1}},
		// Bitset: 'b', then bit i (least significant first) for C+1+i.
		// 7, 9, ..., 23 above 5: bits 1, 3, 5, ..., 17.
		{"bitset", 5, []int64{7, 9, 11, 13, 15, 17, 19, 21, 23}, []byte{'b', 0xaa, 0xaa, 0x02}},
		// A single offset: bitset (2 bytes) beats runs (3 bytes).
		{"one", 100, []int64{101}, []byte{'b', 0x01}},
		// A run longer than 127: its length is a two-byte uvarint.
		{"long run", 0, func() []int64 {
			var d []int64
			for o := int64(1); o <= 300; o++ {
				d = append(d, o)
			}
			return d
		}(), []byte{'r', 0, 0xac, 0x02}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := encodeDone(tc.committed, tc.done)
			want := "ks1" + base64.RawStdEncoding.EncodeToString(tc.raw)
			if meta != want {
				t.Fatalf("encodeDone = %q, want %q (raw %x)", meta, want, tc.raw)
			}
			got, err := decodeDone(tc.committed, want)
			if err != nil || !slices.Equal(got, tc.done) {
				t.Fatalf("decodeDone(%q) = %v, %v", want, got, err)
			}
		})
	}
}
