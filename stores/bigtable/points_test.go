package bigtable

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// The point set against a model (a map, sorted on demand): random writes,
// rewrites and range deletions over few keys (empty and 0x00/0xff keys
// among them), checked after every step by lookups and ordered walks.
func TestPointSetModel(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"", "\x00", "a", "a\x00", "ab", "b", "ba", "\xff", "\xff\xff", "m", "z"}
	key := func() []byte { return []byte(alphabet[rnd.IntN(len(alphabet))] + alphabet[rnd.IntN(len(alphabet))]) }
	s := newPointSet()
	model := map[string]string{}
	for step := range 5000 {
		switch op := rnd.IntN(10); {
		case op < 6:
			k, v := key(), fmt.Appendf(nil, "v%d", step)
			tag := byte(tagValue)
			if op == 5 {
				tag, v = tagDeleted, nil
			}
			s.Set(k, tag, v)
			model[string(k)] = string(append([]byte{tag}, v...))
			for i := range k {
				k[i] = 'X'
			}
		case op < 8:
			lo, hi := key(), key()
			if op == 7 {
				hi = nil
			}
			s.DeleteRange(lo, hi)
			for k := range model {
				if k >= string(lo) && (hi == nil || k < string(hi)) {
					delete(model, k)
				}
			}
		default:
			lo, hi := key(), key()
			var got, want []string
			s.Range(lo, hi, func(k, tagged []byte) bool {
				got = append(got, string(k)+"="+string(tagged))
				return true
			})
			var keys []string
			for k := range model {
				if k >= string(lo) && k < string(hi) {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				want = append(want, k+"="+model[k])
			}
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Range(%q, %q) = %q; want %q", step, lo, hi, got, want)
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("step %d: Len %d; want %d", step, s.Len(), len(model))
		}
		for _, a := range alphabet {
			for _, b := range alphabet {
				k := a + b
				v, ok := s.Get([]byte(k))
				mv, mok := model[k]
				if ok != mok || !bytes.Equal(v, []byte(mv)) {
					t.Fatalf("step %d: Get(%q) = %q, %v; want %q, %v", step, k, v, ok, mv, mok)
				}
			}
		}
	}
	var all []string
	s.Range(nil, nil, func(k, _ []byte) bool { all = append(all, string(k)); return true })
	if !slices.IsSorted(all) || len(all) != len(model) {
		t.Fatalf("full walk %q: not sorted, or not the model's %d keys", all, len(model))
	}
}
