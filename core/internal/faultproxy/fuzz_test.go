package faultproxy

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzFrame feeds arbitrary bytes to everything the proxy parses: the
// framing, the request header, a Produce body, and the Metadata and
// FindCoordinator response rewriting at every version. Garbage must give an
// error, never a panic; what parses must re-frame consistently.
func FuzzFrame(f *testing.F) {
	id := "seed"
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	f.Add(encodeRequest(md, 1, &id))
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.SetVersion(4)
	fc.CoordinatorKeys = []string{"g"}
	f.Add(encodeRequest(fc, 2, nil))
	pr := kmsg.NewPtrProduceRequest()
	pr.SetVersion(9)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = (&kmsg.RecordBatch{Magic: 2, ProducerID: 7}).AppendTo(nil)
	rt.Partitions = append(rt.Partitions, rp)
	pr.Topics = append(pr.Topics, rt)
	f.Add(encodeRequest(pr, 3, &id))
	for _, v := range []int16{1, 9, 12} {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(v)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "h", Port: 9092}}
		f.Add(encodeResponse(resp, 4))
	}
	fresp := kmsg.NewPtrFindCoordinatorResponse()
	fresp.SetVersion(4)
	fresp.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{{Key: "g", NodeID: 1, Host: "h", Port: 1}}
	f.Add(encodeResponse(fresp, 5))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})

	mapAddr := func(node int32, _ string, _ int32) (string, int32, error) { return "127.0.0.1", node & 0xffff, nil }
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := readFrame(bytes.NewReader(data))
		if err != nil {
			return
		}
		payload := fr[4:]
		if h, err := parseRequestHeader(payload); err == nil && h.Key == keyProduce && h.Known {
			_, _ = parseProduce(h)
		}
		for _, key := range []int16{keyMetadata, keyFindCoordinator} {
			maxV := kmsg.ResponseForKey(key).MaxVersion()
			for v := int16(0); v <= maxV; v++ {
				out, err := rewriteResponse(payload, key, v, mapAddr)
				if err != nil {
					continue
				}
				// A rewritten frame is a frame: it reads back whole.
				back, err := readFrame(bytes.NewReader(out))
				if err != nil || !bytes.Equal(back, out) {
					t.Fatalf("key %d v%d: rewritten frame does not read back: %v", key, v, err)
				}
				if !bytes.Equal(out[4:8], payload[:4]) {
					t.Fatalf("key %d v%d: correlation id changed", key, v)
				}
			}
		}
	})
}
