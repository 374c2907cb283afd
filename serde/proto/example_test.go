package proto_test

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/kstreams-go/kstreams/serde/proto"
	"github.com/kstreams-go/kstreams/serde/proto/internal/testpb"
)

func ExampleNew() {
	// Any generated message type works; this one ships with protobuf.
	s := proto.New[*wrapperspb.StringValue]()

	b, err := s.Serialize(nil, "greetings", nil, wrapperspb.String("hello"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("% x\n", b)

	v, err := s.Deserialize("greetings", nil, b)
	fmt.Println(v.GetValue(), err)

	_, err = s.Deserialize("greetings", nil, b[:3])
	fmt.Println(err != nil)

	// A nil message is a tombstone; a nil value decodes to a nil message.
	tomb, _ := s.Serialize(nil, "greetings", nil, nil)
	v, _ = s.Deserialize("greetings", nil, tomb)
	fmt.Println(tomb == nil, v == nil)
	// Output:
	// 0a 05 68 65 6c 6c 6f
	// hello <nil>
	// true
	// true true
}

func ExampleNewRegistry() {
	reg := srfake.New() // an in-process schema registry, for the example
	defer reg.Close()
	client, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		panic(err)
	}

	// testpb.Schema is the text of the .proto file that declares testpb.Record.
	s, err := proto.NewRegistry[*testpb.Record](context.Background(), client, "records-value", testpb.Schema)
	if err != nil {
		panic(err)
	}
	b, err := s.Serialize(nil, "records", nil, &testpb.Record{Id: 7, Name: "Ada"})
	if err != nil {
		panic(err)
	}
	fmt.Printf("schema id %d, message index %v, header % x\n", s.ID(), s.Index(), b[:7])

	r, err := s.Deserialize("records", nil, b)
	fmt.Println(r.GetId(), r.GetName(), err)
	// Output:
	// schema id 1, message index [1], header 00 00 00 00 01 02 02
	// 7 Ada <nil>
}
