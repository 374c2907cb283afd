package faultproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// encodeRequest frames req as a client sends it: size, header (v1, or v2
// with no tagged fields for flexible versions), body.
func encodeRequest(req kmsg.Request, corr int32, clientID *string) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if clientID == nil {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	} else {
		b = binary.BigEndian.AppendUint16(b, uint16(len(*clientID)))
		b = append(b, *clientID...)
	}
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// encodeResponse frames resp as a broker sends it: size, correlation id,
// (tagged fields if flexible), body.
func encodeResponse(resp kmsg.Response, corr int32) []byte {
	b := make([]byte, 4, 64)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	if resp.IsFlexible() {
		b = append(b, 0)
	}
	b = resp.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func TestReadFrame(t *testing.T) {
	good := []byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0}
	r := bytes.NewReader(good)
	f, err := readFrame(r)
	if err != nil || !bytes.Equal(f, good[:7]) {
		t.Fatalf("readFrame = %q, %v; want the first frame", f, err)
	}
	if f, err := readFrame(r); err != nil || len(f) != 4 {
		t.Fatalf("empty frame: %q, %v", f, err)
	}
	if _, err := readFrame(r); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"negative size", []byte{0xff, 0xff, 0xff, 0xfe}, errFrameSize},
		{"oversized", []byte{0x7f, 0, 0, 0}, errFrameSize},
		{"truncated body", []byte{0, 0, 0, 9, 1, 2}, io.ErrUnexpectedEOF},
		{"truncated size", []byte{0, 0}, io.ErrUnexpectedEOF},
	} {
		if _, err := readFrame(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestParseRequestHeader(t *testing.T) {
	id := "client-1"
	for _, v := range []int16{0, 4, 8, 9, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(v)
		frame := encodeRequest(req, 77, &id)
		h, err := parseRequestHeader(frame[4:])
		if err != nil {
			t.Fatalf("Metadata v%d: %v", v, err)
		}
		if h.Key != keyMetadata || h.Version != v || h.CorrelationID != 77 || h.ClientID == nil || *h.ClientID != id || !h.Known || h.Flexible != (v >= 9) {
			t.Errorf("Metadata v%d: header %+v", v, h)
		}
		back := kmsg.NewPtrMetadataRequest()
		back.SetVersion(v)
		if err := back.ReadFrom(h.body); err != nil {
			t.Errorf("Metadata v%d: body does not decode: %v", v, err)
		}
	}
	// A null client id, and a key this proxy does not know.
	frame := encodeRequest(&kmsg.ApiVersionsRequest{Version: 4}, 1, nil)
	if h, err := parseRequestHeader(frame[4:]); err != nil || h.ClientID != nil || !h.Flexible {
		t.Errorf("ApiVersions v4, null client id: %+v, %v", h, err)
	}
	unknown := []byte{0x7f, 0x00, 0, 1, 0, 0, 0, 5, 0, 1, 'x'}
	if h, err := parseRequestHeader(unknown); err != nil || h.Known || h.CorrelationID != 5 {
		t.Errorf("unknown key: %+v, %v", h, err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"short", []byte{0, 3, 0}},
		{"no client id", []byte{0, 3, 0, 1, 0, 0, 0, 1}},
		{"client id past the end", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 9, 'a'}},
		{"client id length -2", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xfe}},
		{"negative version", []byte{0, 3, 0xff, 0xff, 0, 0, 0, 1, 0, 0}},
		{"flexible, no tags", []byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 0}},
		{"flexible, tag past the end", []byte{0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 1, 0, 5, 'a'}},
	} {
		if _, err := parseRequestHeader(tc.in); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

func TestParseProduce(t *testing.T) {
	batch := kmsg.RecordBatch{Magic: 2, ProducerID: 4242, NumRecords: 1, Records: []byte{1, 2, 3}}
	for _, v := range []int16{3, 7, 9, 11} {
		for _, acks := range []int16{0, -1} {
			req := kmsg.NewPtrProduceRequest()
			req.SetVersion(v)
			req.Acks = acks
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "t"
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = batch.AppendTo(nil)
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			frame := encodeRequest(req, 3, nil)
			h, err := parseRequestHeader(frame[4:])
			if err != nil {
				t.Fatal(err)
			}
			info, err := parseProduce(h)
			if err != nil {
				t.Fatalf("Produce v%d: %v", v, err)
			}
			if info.acks != acks || !slices.Equal(info.producerIDs, []int64{4242}) {
				t.Errorf("Produce v%d acks %d: %+v", v, acks, info)
			}
		}
	}
}

// testMapper maps node n to 127.0.0.1:(1000+n) and records what it saw.
type testMapper struct{ seen []string }

func (m *testMapper) mapAddr(node int32, host string, port int32) (string, int32, error) {
	m.seen = append(m.seen, fmt.Sprintf("%d=%s:%d", node, host, port))
	return "127.0.0.1", 1000 + node, nil
}

func TestRewriteMetadata(t *testing.T) {
	for v := int16(0); v <= kmsg.NewPtrMetadataResponse().MaxVersion(); v++ {
		resp := kmsg.NewPtrMetadataResponse()
		resp.SetVersion(v)
		for _, n := range []int32{1, 2, 3} {
			b := kmsg.NewMetadataResponseBroker()
			b.NodeID, b.Host, b.Port = n, fmt.Sprintf("broker%d.example", n), 9092
			resp.Brokers = append(resp.Brokers, b)
		}
		topic := kmsg.NewMetadataResponseTopic()
		topic.Topic = kmsg.StringPtr("t")
		topic.Partitions = append(topic.Partitions, kmsg.NewMetadataResponseTopicPartition())
		resp.Topics = append(resp.Topics, topic)
		frame := encodeResponse(resp, 9)
		var m testMapper
		out, err := rewriteResponse(frame[4:], keyMetadata, v, m.mapAddr)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if got := int(binary.BigEndian.Uint32(out)); got != len(out)-4 {
			t.Fatalf("v%d: size prefix %d, frame %d", v, got, len(out)-4)
		}
		if corr := int32(binary.BigEndian.Uint32(out[4:])); corr != 9 {
			t.Errorf("v%d: correlation id %d", v, corr)
		}
		if len(m.seen) != 3 || m.seen[0] != "1=broker1.example:9092" {
			t.Errorf("v%d: mapper saw %v", v, m.seen)
		}
		back := kmsg.NewPtrMetadataResponse()
		back.SetVersion(v)
		hl, _ := responseHeaderLen(out[4:], back.IsFlexible())
		if err := back.ReadFrom(out[4+hl:]); err != nil {
			t.Fatalf("v%d: rewritten response does not decode: %v", v, err)
		}
		for _, b := range back.Brokers {
			if b.Host != "127.0.0.1" || b.Port != 1000+b.NodeID {
				t.Errorf("v%d: broker %d at %s:%d", v, b.NodeID, b.Host, b.Port)
			}
		}
		// Everything but the addresses is as it was.
		for i := range back.Brokers {
			back.Brokers[i].Host, back.Brokers[i].Port = resp.Brokers[i].Host, resp.Brokers[i].Port
		}
		if !bytes.Equal(back.AppendTo(nil), resp.AppendTo(nil)) {
			t.Errorf("v%d: rewriting changed more than the addresses", v)
		}
	}
}

func TestRewriteFindCoordinator(t *testing.T) {
	for v := int16(0); v <= kmsg.NewPtrFindCoordinatorResponse().MaxVersion(); v++ {
		resp := kmsg.NewPtrFindCoordinatorResponse()
		resp.SetVersion(v)
		resp.NodeID, resp.Host, resp.Port = 2, "b2", 9000
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID, c.Host, c.Port = "g", 3, "b3", 9001
		noCoord := kmsg.NewFindCoordinatorResponseCoordinator()
		noCoord.Key, noCoord.NodeID, noCoord.ErrorCode = "h", -1, 15
		resp.Coordinators = []kmsg.FindCoordinatorResponseCoordinator{c, noCoord}
		frame := encodeResponse(resp, 1)
		var m testMapper
		out, err := rewriteResponse(frame[4:], keyFindCoordinator, v, m.mapAddr)
		if err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		back := kmsg.NewPtrFindCoordinatorResponse()
		back.SetVersion(v)
		hl, _ := responseHeaderLen(out[4:], back.IsFlexible())
		if err := back.ReadFrom(out[4+hl:]); err != nil {
			t.Fatalf("v%d: %v", v, err)
		}
		if v < 4 {
			if back.Host != "127.0.0.1" || back.Port != 1002 || len(m.seen) != 1 {
				t.Errorf("v%d: coordinator %s:%d, mapper saw %v", v, back.Host, back.Port, m.seen)
			}
			continue
		}
		if len(back.Coordinators) != 2 || back.Coordinators[0].Host != "127.0.0.1" || back.Coordinators[0].Port != 1003 ||
			back.Coordinators[1].Host != "" || len(m.seen) != 1 {
			t.Errorf("v%d: coordinators %+v, mapper saw %v", v, back.Coordinators, m.seen)
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	var m testMapper
	if _, err := rewriteResponse([]byte{0, 0, 0, 1}, keyProduce, 3, m.mapAddr); err == nil {
		t.Error("Produce: no error")
	}
	if _, err := rewriteResponse([]byte{0, 0, 0, 1}, keyMetadata, 999, m.mapAddr); err == nil {
		t.Error("unknown version: no error")
	}
	if _, err := rewriteResponse([]byte{0, 0, 0, 1, 0, 0, 0, 9}, keyMetadata, 1, m.mapAddr); err == nil {
		t.Error("truncated Metadata: no error")
	}
	if _, err := rewriteResponse([]byte{0, 0}, keyFindCoordinator, 1, m.mapAddr); err == nil {
		t.Error("no correlation id: no error")
	}
	failing := func(int32, string, int32) (string, int32, error) { return "", 0, errors.New("no listener") }
	resp := kmsg.NewPtrMetadataResponse()
	resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: "h", Port: 1}}
	if _, err := rewriteResponse(encodeResponse(resp, 1)[4:], keyMetadata, 0, failing); err == nil {
		t.Error("mapper error not returned")
	}
}
