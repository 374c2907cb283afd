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

// KeyNames are the Redis keys holding one store instance.
type KeyNames struct {
	// Meta is a hash: epoch (the owner epoch), owner (epoch/token of the
	// current owner), layout (the key layout's version) and offset (the
	// changelog offset the data covers, absent if none).
	Meta string
	// Data is a hash from each key of the store to its value.
	Data string
	// Index is a sorted set of every key of the store, all with score 0, in
	// byte order for ranges.
	Index string
}

// Keys returns the names of the Redis keys of a store instance (application
// id, store name, partition), for inspection and cleanup. Deleting them
// while no owner runs drops the instance; its next owner restores it from
// its changelog, if it has one.
func Keys(app, storeName string, partition int32) KeyNames {
	k := keysOf(store.BackendContext{App: app, Store: storeName, Partition: partition})
	return KeyNames{Meta: k.meta, Data: k.data, Index: k.index}
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
