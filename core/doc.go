// Package kstreams is a stream processing library for Apache Kafka: typed
// topologies of processors with state stores, run on franz-go with
// at-least-once delivery.
//
// A topology is built with package-level generic functions that return typed
// node handles, so wiring a processor to a parent of another type does not
// compile:
//
//	b := kstreams.NewBuilder()
//	lines := kstreams.Source(b, "lines", []string{"text"}, serde.String, serde.String)
//	words := kstreams.FlatMap(lines, "split", splitWords)
//	kstreams.Sink(words, "out", "words", serde.String, serde.String)
//	topo, err := b.Build()
//
// Processors look like net/http handlers: a small interface (Init, Process,
// Close) plus function adapters (Map, Filter, FlatMap, ForEach) for the
// stateless cases. State lives in stores declared once with AddStore, which
// returns a typed handle (Store): attach it to processors with WithStores
// and get the task's store in Init with its Get; see package store.
//
// The topology runs on Kafka with App (see NewApp), and without a broker in
// tests with package kstreamstest.
package kstreams
