package redis

import (
	"fmt"
	"strings"

	"github.com/kstreams-go/kstreams/core/store"
)

// instanceKeys are the Redis keys of one store instance.
type instanceKeys struct {
	prefix string // {ks:<app>:<store>:<partition>}
	meta   string // hash: owner epoch, owner, layout, changelog offset
	data   string // hash: key → value
	index  string // sorted set: every key, score 0, for ordered ranges
}

func keysOf(bctx store.BackendContext) instanceKeys {
	prefix := fmt.Sprintf("{ks:%s:%s:%d}", escapeName(bctx.App), escapeName(bctx.Store), bctx.Partition)
	return instanceKeys{
		prefix: prefix,
		meta:   prefix + ":meta",
		data:   prefix + ":data",
		index:  prefix + ":index",
	}
}

// escapeName writes the bytes of a name that would make key prefixes
// ambiguous or break the hash tag (':', '{', '}', '%', and bytes outside
// printable ASCII) as %XX, so distinct names give distinct prefixes.
func escapeName(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == ':' || c == '{' || c == '}' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
