package faultproxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxFrameSize bounds one Kafka frame. Brokers refuse requests above
// socket.request.max.bytes (100 MiB by default); a fetch response can be
// larger than the client's fetch.max.bytes only by one batch. A size above
// this bound is garbage, not a frame.
const maxFrameSize = 256 << 20

// Kafka API keys the proxy looks into.
const (
	keyProduce         int16 = 0
	keyMetadata        int16 = 3
	keyFindCoordinator int16 = 10
)

var (
	// errShortFrame is returned for a frame whose fields run past its end.
	errShortFrame = errors.New("faultproxy: frame too short")
	// errFrameSize is returned for a size prefix that cannot be a frame's.
	errFrameSize = errors.New("faultproxy: frame size out of range")
)

// readFrame reads one size-prefixed Kafka frame from r and returns it whole,
// size prefix included (ready to forward as is).
func readFrame(r io.Reader) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || n > maxFrameSize {
		return nil, fmt.Errorf("%w: %d not in [0, %d]", errFrameSize, n, maxFrameSize)
	}
	// Grow the buffer as bytes arrive rather than trusting the prefix: a
	// garbage size must not allocate hundreds of megabytes up front.
	const chunk = 64 << 10
	frame := make([]byte, 4, 4+min(int(n), chunk))
	copy(frame, size[:])
	for remaining := int(n); remaining > 0; {
		step := min(remaining, max(cap(frame)-len(frame), chunk))
		frame = slices.Grow(frame, step)
		got, err := io.ReadFull(r, frame[len(frame):len(frame)+step])
		frame = frame[:len(frame)+got]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("faultproxy: reading a %d-byte frame: %w", n, err)
		}
		remaining -= step
	}
	return frame, nil
}

// requestHeader is the header of a client request (request header v1, or v2
// for flexible versions).
type requestHeader struct {
	Key, Version  int16
	CorrelationID int32
	ClientID      *string
	// Known reports whether kmsg knows this key and version; Flexible and
	// body are only meaningful then.
	Known    bool
	Flexible bool
	// body is the request body: the payload after the header.
	body []byte
}

// parseRequestHeader parses the header of a request payload (a frame
// without its size prefix).
func parseRequestHeader(payload []byte) (requestHeader, error) {
	var h requestHeader
	if len(payload) < 8 {
		return h, fmt.Errorf("faultproxy: request header: %w (%d bytes)", errShortFrame, len(payload))
	}
	h.Key = int16(binary.BigEndian.Uint16(payload[0:]))
	h.Version = int16(binary.BigEndian.Uint16(payload[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(payload[4:]))
	if h.Version < 0 {
		return h, fmt.Errorf("faultproxy: request key %d has negative version %d", h.Key, h.Version)
	}
	rest := payload[8:]
	// The client id is a nullable string with an int16 length, even in
	// flexible headers (KIP-482 kept it for compatibility).
	if len(rest) < 2 {
		return h, fmt.Errorf("faultproxy: request key %d client id: %w", h.Key, errShortFrame)
	}
	l := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	switch {
	case l < -1:
		return h, fmt.Errorf("faultproxy: request key %d: client id length %d", h.Key, l)
	case l >= 0:
		if len(rest) < int(l) {
			return h, fmt.Errorf("faultproxy: request key %d client id: %w", h.Key, errShortFrame)
		}
		id := string(rest[:l])
		h.ClientID = &id
		rest = rest[l:]
	}
	req := kmsg.RequestForKey(h.Key)
	if req == nil || h.Version > req.MaxVersion() {
		return h, nil
	}
	h.Known = true
	req.SetVersion(h.Version)
	h.Flexible = req.IsFlexible()
	if h.Flexible {
		n, err := skipTags(rest)
		if err != nil {
			return h, fmt.Errorf("faultproxy: request key %d v%d header: %w", h.Key, h.Version, err)
		}
		rest = rest[n:]
	}
	h.body = rest
	return h, nil
}

// skipTags returns the length of the tagged-field section at the start of
// b: a uvarint count, then per field a uvarint tag, a uvarint size and the
// data.
func skipTags(b []byte) (int, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, fmt.Errorf("tagged fields: bad count: %w", errShortFrame)
	}
	off := n
	for i := uint64(0); i < count; i++ {
		_, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return 0, fmt.Errorf("tagged field %d: bad tag: %w", i, errShortFrame)
		}
		off += n
		size, n := binary.Uvarint(b[off:])
		if n <= 0 {
			return 0, fmt.Errorf("tagged field %d: bad size: %w", i, errShortFrame)
		}
		off += n
		if size > uint64(len(b)-off) {
			return 0, fmt.Errorf("tagged field %d: %d bytes: %w", i, size, errShortFrame)
		}
		off += int(size)
	}
	return off, nil
}

// produceInfo is what the proxy reads from a Produce request: whether the
// broker answers it (acks 0 gets no response) and the idempotent producer
// ids of its record batches.
type produceInfo struct {
	acks        int16
	producerIDs []int64
}

// parseProduce decodes a Produce request's body.
func parseProduce(h requestHeader) (produceInfo, error) {
	if !h.Known {
		return produceInfo{}, fmt.Errorf("faultproxy: Produce v%d is newer than this proxy knows (kmsg)", h.Version)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(h.body); err != nil {
		return produceInfo{}, fmt.Errorf("faultproxy: decoding Produce v%d: %w", h.Version, err)
	}
	info := produceInfo{acks: req.Acks}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			// A v2 record batch: base offset (8), length (4), leader epoch (4),
			// magic (1), crc (4), attributes (2), last offset delta (4), first
			// and max timestamps (8+8), then the producer id.
			r := p.Records
			if len(r) >= 51 && r[16] == 2 {
				id := int64(binary.BigEndian.Uint64(r[43:]))
				if id >= 0 && (len(info.producerIDs) == 0 || info.producerIDs[len(info.producerIDs)-1] != id) {
					info.producerIDs = append(info.producerIDs, id)
				}
			}
		}
	}
	return info, nil
}

// addrMapper maps a broker's advertised address (node id, host, port) to
// the proxy listener that stands for it.
type addrMapper func(node int32, host string, port int32) (string, int32, error)

// responseHeaderLen returns the length of a response header: the
// correlation id, plus tagged fields for flexible responses.
func responseHeaderLen(payload []byte, flexible bool) (int, error) {
	if len(payload) < 4 {
		return 0, fmt.Errorf("faultproxy: response header: %w", errShortFrame)
	}
	if !flexible {
		return 4, nil
	}
	n, err := skipTags(payload[4:])
	if err != nil {
		return 0, fmt.Errorf("faultproxy: response header: %w", err)
	}
	return 4 + n, nil
}

// rewriteResponse rewrites the broker addresses in a Metadata or
// FindCoordinator response payload (frame without size prefix) of the
// given version with mapAddr, and returns the new frame, size prefix
// included. Any other key is an error: the caller forwards those as they
// are.
func rewriteResponse(payload []byte, key, version int16, mapAddr addrMapper) ([]byte, error) {
	if key != keyMetadata && key != keyFindCoordinator {
		return nil, fmt.Errorf("faultproxy: no address rewriting for key %d", key)
	}
	resp := kmsg.ResponseForKey(key)
	if version < 0 || version > resp.MaxVersion() {
		return nil, fmt.Errorf("faultproxy: %T v%d is newer than this proxy knows (kmsg)", resp, version)
	}
	resp.SetVersion(version)
	hl, err := responseHeaderLen(payload, resp.IsFlexible())
	if err != nil {
		return nil, err
	}
	if err := resp.ReadFrom(payload[hl:]); err != nil {
		return nil, fmt.Errorf("faultproxy: decoding %T v%d: %w", resp, version, err)
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		for i := range r.Brokers {
			b := &r.Brokers[i]
			if b.Host, b.Port, err = mapAddr(b.NodeID, b.Host, b.Port); err != nil {
				return nil, err
			}
		}
	case *kmsg.FindCoordinatorResponse:
		// An error response (no coordinator yet) carries node -1 and no
		// host: nothing to map.
		if version < 4 {
			if r.NodeID >= 0 && r.Host != "" {
				if r.Host, r.Port, err = mapAddr(r.NodeID, r.Host, r.Port); err != nil {
					return nil, err
				}
			}
		}
		for i := range r.Coordinators {
			c := &r.Coordinators[i]
			if c.NodeID >= 0 && c.Host != "" {
				if c.Host, c.Port, err = mapAddr(c.NodeID, c.Host, c.Port); err != nil {
					return nil, err
				}
			}
		}
	}
	out := make([]byte, 4, 4+len(payload)+64)
	out = append(out, payload[:hl]...)
	out = resp.AppendTo(out)
	if len(out)-4 > maxFrameSize {
		return nil, fmt.Errorf("faultproxy: rewritten %T is %d bytes", resp, len(out)-4)
	}
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out, nil
}

// splitHostPort splits a listener address into host and int32 port.
func splitHostPort(addr string) (string, int32, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("faultproxy: address %q: %w", addr, err)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("faultproxy: port of %q: %w", addr, err)
	}
	return host, int32(port), nil
}
