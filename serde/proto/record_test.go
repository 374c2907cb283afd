package proto_test

import "github.com/kstreams-go/kstreams/serde/proto/internal/testpb"

// sampleRecord is the 10-field record that every serde module benchmarks
// (testpb.Record); keep its value identical across serde/json, serde/proto,
// serde/avro and serde/msgpack.
func sampleRecord() *testpb.Record {
	return &testpb.Record{
		Id:        1234567890,
		Name:      "Ada Lovelace",
		Email:     "ada@example.com",
		Age:       36,
		Score:     98.5,
		Active:    true,
		Tags:      []string{"math", "engines", "poetry"},
		CreatedAt: 1700000000123,
		Country:   "GB",
		Balance:   10432.75,
	}
}
