package avro_test

// Record is the 10-field record that every serde module benchmarks; keep its
// fields and sample value identical across serde/json, serde/proto,
// serde/avro and serde/msgpack.
type Record struct {
	ID        int64    `avro:"id"`
	Name      string   `avro:"name"`
	Email     string   `avro:"email"`
	Age       int32    `avro:"age"`
	Score     float64  `avro:"score"`
	Active    bool     `avro:"active"`
	Tags      []string `avro:"tags"`
	CreatedAt int64    `avro:"created_at"` // unix milliseconds
	Country   string   `avro:"country"`
	Balance   float64  `avro:"balance"`
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

// recordSchema is the Avro schema of Record.
const recordSchema = `{
  "type": "record", "name": "Record", "namespace": "kstreams.bench",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "name", "type": "string"},
    {"name": "email", "type": "string"},
    {"name": "age", "type": "int"},
    {"name": "score", "type": "double"},
    {"name": "active", "type": "boolean"},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "created_at", "type": "long"},
    {"name": "country", "type": "string"},
    {"name": "balance", "type": "double"}
  ]
}`
