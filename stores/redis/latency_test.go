package redis

import (
	"net"
	"sync"
	"testing"
	"time"
)

// delayProxy forwards TCP connections to a target, holding every chunk of
// bytes for delay in each direction (a round trip then costs 2×delay more).
// Chunks are delayed from the moment they are read, not one after another,
// so pipelined traffic keeps its throughput, as on a long network path.
// It stands in for core's fault proxy, which other modules cannot import.
func delayProxy(tb testing.TB, target string, delay time.Duration) (addr string) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var conns sync.WaitGroup
	tb.Cleanup(func() {
		l.Close()
		conns.Wait()
	})
	go func() {
		for {
			down, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			conns.Add(2)
			go func() { defer conns.Done(); pipeDelayed(up, down, delay) }()
			go func() { defer conns.Done(); pipeDelayed(down, up, delay) }()
		}
	}()
	return l.Addr().String()
}

type chunk struct {
	due  time.Time
	data []byte
}

// pipeDelayed copies src to dst, each chunk delay after it was read, and
// closes both when either side ends.
func pipeDelayed(dst, src net.Conn, delay time.Duration) {
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				chunks <- chunk{due: time.Now().Add(delay), data: buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range chunks {
		// Timers fire late on a loaded machine: the benchmarks report
		// the round trip measured through the proxy.
		time.Sleep(time.Until(c.due))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range chunks { // let the reader end
	}
}
