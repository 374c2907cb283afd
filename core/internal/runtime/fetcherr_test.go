package runtime

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestFatalFetchError(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"kicked from the group: franz-go rejoins", &kgo.ErrGroupSession{Err: kerr.UnknownMemberID}, false},
		{"stale generation: franz-go rejoins", &kgo.ErrGroupSession{Err: kerr.IllegalGeneration}, false},
		{"group not authorized", &kgo.ErrGroupSession{Err: kerr.GroupAuthorizationFailed}, true},
		{"invalid group id", &kgo.ErrGroupSession{Err: kerr.InvalidGroupID}, true},
		{"topic not authorized", kerr.TopicAuthorizationFailed, true},
		{"wrapped non-retriable", fmt.Errorf("fetch: %w", kerr.TopicAuthorizationFailed), true},
		{"leader moved", kerr.NotLeaderForPartition, false},
		{"connection lost", io.EOF, false},
		{"plain error", errors.New("boom"), false},
	} {
		if got := fatalFetchError(c.err); got != c.want {
			t.Errorf("%s: fatalFetchError(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

func TestTransientStartupErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"broker closed the connection", fmt.Errorf("creating topic: %w", &kgo.ErrFirstReadEOF{}), true},
		{"connection refused", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{"retriable kafka error", kerr.NotController, true},
		{"EOF", io.EOF, true},
		{"topic authorization", kerr.TopicAuthorizationFailed, false},
		{"invalid config", kerr.InvalidConfig, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("%s: transient(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
