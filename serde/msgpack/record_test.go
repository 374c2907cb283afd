package msgpack_test

// Record is the 10-field record that every serde module benchmarks; keep its
// fields and sample value identical across serde/json, serde/proto,
// serde/avro and serde/msgpack.
type Record struct {
	ID        int64    `msgpack:"id"`
	Name      string   `msgpack:"name"`
	Email     string   `msgpack:"email"`
	Age       int32    `msgpack:"age"`
	Score     float64  `msgpack:"score"`
	Active    bool     `msgpack:"active"`
	Tags      []string `msgpack:"tags"`
	CreatedAt int64    `msgpack:"created_at"` // unix milliseconds
	Country   string   `msgpack:"country"`
	Balance   float64  `msgpack:"balance"`
}

func sampleRecord() Record {
	return Record{
		ID:        1234567890,
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
