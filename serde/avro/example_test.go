package avro_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/kstreams-go/kstreams/serde/avro"
)

type Order struct {
	ID    int64   `avro:"id"`
	Item  string  `avro:"item"`
	Price float64 `avro:"price"`
}

const orderSchema = `{"type":"record","name":"Order","fields":[
	{"name":"id","type":"long"},
	{"name":"item","type":"string"},
	{"name":"price","type":"double"}]}`

func ExampleNew() {
	s, err := avro.New[Order](orderSchema)
	if err != nil {
		panic(err)
	}
	b, err := s.Serialize(nil, "orders", nil, Order{ID: 7, Item: "book", Price: 12.5})
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)

	o, err := s.Deserialize("orders", nil, b)
	fmt.Printf("%+v %v\n", o, err)

	_, err = s.Deserialize("orders", nil, b[:4])
	fmt.Println(err)
	// Output:
	// 0e 08 62 6f 6f 6b 00 00 00 00 00 00 29 40
	// {ID:7 Item:book Price:12.5} <nil>
	// avro: decoding avro_test.Order: Item: unexpected EOF
}

func ExampleNewRegistry() {
	reg := srfake.New() // an in-process schema registry, for the example
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}

	s, err := avro.NewRegistry[Order](context.Background(), client, "orders-value", orderSchema)
	if err != nil {
		panic(err)
	}
	b, err := s.Serialize(nil, "orders", nil, Order{ID: 7, Item: "book", Price: 12.5})
	if err != nil {
		panic(err)
	}
	fmt.Printf("schema id %d, header % x\n", s.ID(), b[:5])

	o, err := s.Deserialize("orders", nil, b)
	fmt.Printf("%+v %v\n", o, err)

	_, err = s.Deserialize("orders", nil, []byte{0, 0, 0, 0, 42, 0})
	fmt.Println(err)
	// Output:
	// schema id 1, header 00 00 00 00 01
	// {ID:7 Item:book Price:12.5} <nil>
	// avro: schema id 42 is unknown to the registry: schema not found
}
