// Command faultproxy runs a faultproxy.Proxy as its own process, for test
// harnesses that cannot import core/internal (tools/chaos). It prints the
// proxy's bootstrap addresses and its control address on stdout, one line
// each:
//
//	bootstrap=127.0.0.1:40001[,127.0.0.1:40002...]
//	control=127.0.0.1:40100
//
// and takes commands over HTTP on the control address (loopback only):
//
//	POST /cut                  close every connection
//	POST /blackhole?on=1|0     network partition on/off
//	POST /blackhole-at-produce network partition from the client's next Produce request (dropped)
//	POST /delay?d=200ms        delay every frame (d=0: none)
//	POST /hold-produce?on=1|0  hold Produce responses / release them in order
//	POST /drop-held            drop held responses, closing their connections
//	GET  /stats                the proxy's counters, as JSON
//
// SIGTERM or SIGINT stop it.
//
//	go build -o faultproxy ./internal/faultproxy/cmd/faultproxy   # in core/
//	faultproxy -brokers 127.0.0.1:9092 -control 127.0.0.1:0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kstreams-go/kstreams/core/internal/faultproxy"
)

func main() {
	brokers := flag.String("brokers", "", "comma-separated broker addresses (host:port) to proxy")
	control := flag.String("control", "127.0.0.1:0", "address of the HTTP control API (keep it on loopback)")
	flag.Parse()
	if err := run(*brokers, *control); err != nil {
		fmt.Fprintln(os.Stderr, "faultproxy:", err)
		os.Exit(1)
	}
}

func run(brokers, control string) error {
	if brokers == "" {
		return errors.New("-brokers is required")
	}
	p, err := faultproxy.New(strings.Split(brokers, ","))
	if err != nil {
		return err
	}
	defer p.Close()
	ln, err := net.Listen("tcp", control)
	if err != nil {
		return fmt.Errorf("control listener: %w", err)
	}
	srv := &http.Server{Handler: handler(p), ReadHeaderTimeout: 10 * time.Second}
	fmt.Printf("bootstrap=%s\ncontrol=%s\n", strings.Join(p.Addrs(), ","), ln.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return fmt.Errorf("control server: %w", err)
	}
}

// handler is the control API of p.
func handler(p *faultproxy.Proxy) http.Handler {
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter) { fmt.Fprintln(w, "ok") }
	onOff := func(w http.ResponseWriter, r *http.Request) (bool, bool) {
		on, err := strconv.ParseBool(r.URL.Query().Get("on"))
		if err != nil {
			http.Error(w, "on must be 1 or 0", http.StatusBadRequest)
			return false, false
		}
		return on, true
	}
	mux.HandleFunc("POST /cut", func(w http.ResponseWriter, r *http.Request) {
		p.Cut()
		ok(w)
	})
	mux.HandleFunc("POST /blackhole", func(w http.ResponseWriter, r *http.Request) {
		if on, valid := onOff(w, r); valid {
			p.Blackhole(on)
			ok(w)
		}
	})
	mux.HandleFunc("POST /blackhole-at-produce", func(w http.ResponseWriter, r *http.Request) {
		p.BlackholeAtNextProduce()
		ok(w)
	})
	mux.HandleFunc("POST /hold-produce", func(w http.ResponseWriter, r *http.Request) {
		if on, valid := onOff(w, r); valid {
			p.HoldProduceResponses(on)
			ok(w)
		}
	})
	mux.HandleFunc("POST /delay", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			http.Error(w, "d must be a duration such as 200ms", http.StatusBadRequest)
			return
		}
		p.Delay(d)
		ok(w)
	})
	mux.HandleFunc("POST /drop-held", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]int{"dropped": p.DropHeldResponses()})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, p.Stats())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}
