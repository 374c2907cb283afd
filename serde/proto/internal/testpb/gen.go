// Package testpb holds generated protobuf messages for the serde/proto tests.
package testpb

import _ "embed"

//go:generate protoc --go_out=. --go_opt=paths=source_relative testpb.proto

// Schema is the source of testpb.proto, as registered in a schema registry.
//
//go:embed testpb.proto
var Schema string
