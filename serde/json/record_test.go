package json_test

// Record is the 10-field record that every serde module benchmarks; keep its
// fields and sample value identical across serde/json, serde/proto,
// serde/avro and serde/msgpack.
type Record struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Email     string   `json:"email"`
	Age       int32    `json:"age"`
	Score     float64  `json:"score"`
	Active    bool     `json:"active"`
	Tags      []string `json:"tags"`
	CreatedAt int64    `json:"created_at"` // unix milliseconds
	Country   string   `json:"country"`
	Balance   float64  `json:"balance"`
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
