package registry_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kstreams-go/kstreams/serde/registry"
)

// A registry serde registers its schema once, frames every value with the
// id, and resolves ids it did not register through a Cache.
func Example() {
	reg := srfake.New() // an in-process registry; use the real one's URL
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	id, err := registry.Register(ctx, client, "greetings-value", sr.Schema{Schema: `{"type": "string"}`, Type: sr.TypeJSON}, false)
	if err != nil {
		panic(err)
	}
	data := append(registry.AppendHeader(nil, id, nil), `"hello"`...)
	fmt.Printf("% x\n", data[:5])

	known := registry.NewCache(client, 0, sr.TypeJSON, func(s sr.Schema) (string, error) { return s.Schema, nil })
	gotID, payload, err := registry.DecodeID(data)
	if err != nil {
		panic(err)
	}
	schema, err := known.Get(gotID)
	fmt.Println(gotID, string(payload), schema, err)

	_, _, err = registry.DecodeID([]byte(`"hello"`))
	fmt.Println(err)
	// Output:
	// 00 00 00 00 01
	// 1 "hello" {"type": "string"} <nil>
	// decoding schema-registry header: magic byte is 0x22, want 0x00: data is not in the schema-registry wire format: 5 byte header for value is missing or does not have 0 magic byte
}
