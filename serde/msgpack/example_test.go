package msgpack_test

import (
	"fmt"

	"github.com/kstreams-go/kstreams/serde/msgpack"
)

func ExampleNew() {
	type Order struct {
		ID    int64   `msgpack:"id"`
		Item  string  `msgpack:"item"`
		Price float64 `msgpack:"price"`
	}
	s := msgpack.New[Order]()

	b, err := s.Serialize(nil, "orders", nil, Order{ID: 7, Item: "book", Price: 12.5})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d bytes: % x\n", len(b), b[:4])

	o, err := s.Deserialize("orders", nil, b)
	fmt.Printf("%+v %v\n", o, err)

	_, err = s.Deserialize("orders", nil, b[:len(b)-1])
	fmt.Println(err)

	// A nil pointer is a tombstone.
	tomb, err := msgpack.New[*Order]().Serialize(nil, "orders", nil, nil)
	fmt.Println(tomb == nil, err)
	// Output:
	// 30 bytes: 83 a2 69 64
	// {ID:7 Item:book Price:12.5} <nil>
	// msgpack: decoding msgpack_test.Order: truncated data
	// true <nil>
}
