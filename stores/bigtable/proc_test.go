package bigtable

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
func startEmulatorProcess(tb testing.TB, rtt time.Duration) *emulator {
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
	e := &emulator{table: testTable, rpcs: new(atomic.Int64), calls: &methodCalls{}, addr: strings.TrimSpace(line), rtt: rtt, proc: cmd.Process}
	ctx := context.Background()
	e.admin, err = bigtable.NewAdminClient(ctx, "proj", "inst", option.WithGRPCConn(dial(tb, e.addr, nil, nil, 0)))
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

// serverCPU returns the CPU time (user and system) the emulator's child
// process used so far, from /proc (zero where there is none).
func (e *emulator) serverCPU() time.Duration {
	if e.proc == nil {
		return 0
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.proc.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces, in parentheses):
	// utime and stime are the 12th and 13th, in clock ticks (USER_HZ, 100
	// on Linux).
	rest := stat[strings.LastIndexByte(string(stat), ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	sys, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(user+sys) * 10 * time.Millisecond
}
