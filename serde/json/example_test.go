package json_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kstreams-go/kstreams/serde/json"
)

func ExampleNew() {
	type Order struct {
		ID    int64   `json:"id"`
		Item  string  `json:"item"`
		Price float64 `json:"price"`
	}
	s := json.New[Order](json.Strict())

	b, err := s.Serialize(nil, "orders", nil, Order{ID: 7, Item: "book", Price: 12.5})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", b)

	o, err := s.Deserialize("orders", nil, b)
	fmt.Printf("%+v %v\n", o, err)

	_, err = s.Deserialize("orders", nil, []byte(`{"id":8,"coupon":"X"}`))
	fmt.Println(err != nil)
	// Output:
	// {"id":7,"item":"book","price":12.5}
	// {ID:7 Item:book Price:12.5} <nil>
	// true
}

func ExampleNewRegistry() {
	reg := srfake.New() // an in-process schema registry, for the example
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}

	type Order struct {
		ID int64 `json:"id"`
	}
	s, err := json.NewRegistry[Order](context.Background(), client, "orders-value",
		`{"type":"object","properties":{"id":{"type":"integer"}}}`)
	if err != nil {
		panic(err)
	}
	b, err := s.Serialize(nil, "orders", nil, Order{ID: 7})
	if err != nil {
		panic(err)
	}
	fmt.Printf("schema id %d, % x | %s\n", s.ID(), b[:5], b[5:])

	o, err := s.Deserialize("orders", nil, b)
	fmt.Printf("%+v %v\n", o, err)

	_, err = s.Deserialize("orders", nil, []byte(`{"id":7}`))
	fmt.Println(err)
	// Output:
	// schema id 1, 00 00 00 00 01 | {"id":7}
	// {ID:7} <nil>
	// json: decoding schema-registry header: magic byte is 0x7b, want 0x00: data is not in the schema-registry wire format: 5 byte header for value is missing or does not have 0 magic byte
}
