module github.com/kstreams-go/kstreams/serde/proto

go 1.26.0

require (
	github.com/kstreams-go/kstreams/core v0.0.0-00010101000000-000000000000
	github.com/kstreams-go/kstreams/serde/registry v0.0.0-00010101000000-000000000000
	github.com/twmb/franz-go/pkg/sr v1.8.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	github.com/twmb/franz-go v1.22.3 // indirect
	github.com/twmb/franz-go/pkg/kmsg v1.15.1 // indirect
)

replace (
	github.com/kstreams-go/kstreams/core => ../../core
	github.com/kstreams-go/kstreams/serde/registry => ../registry
)
