package bigtable

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/bigtable"
	"cloud.google.com/go/bigtable/bttest"
	"google.golang.org/api/option"
)

// serveEnv makes the test binary an emulator process (see startEmulatorProcess).
const serveEnv = "KSTREAMS_BTTEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(serveEnv) == "1" {
		srv, err := bttest.NewServer("127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(srv.Addr)
		io.Copy(io.Discard, os.Stdin) // serve until the parent closes stdin or exits
		srv.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startEmulatorProcess runs the emulator in a child process (this test
// binary), so that the benchmark's process spends its CPU on the store and
// the client library only, as it would against a real Bigtable.
func startEmulatorProcess(tb testing.TB) *emulator {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("emulator process: %v", err)
	}
	e := &emulator{table: testTable, rpcs: new(atomic.Int64), addr: strings.TrimSpace(line)}
	ctx := context.Background()
	e.admin, err = bigtable.NewAdminClient(ctx, "proj", "inst", option.WithGRPCConn(dial(tb, e.addr, nil, 0)))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.admin.Close() })
	if err := CreateTable(ctx, e.admin, e.table); err != nil {
		tb.Fatal(err)
	}
	e.client = e.newClient(tb)
	return e
}
