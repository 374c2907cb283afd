package kstreams_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/store/memory"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// saslListener is the SASL_SSL listener of a broker started with
// kafka.sh start --sasl-ssl.
type saslListener struct {
	brokers        []string
	user, password string
	roots          *x509.CertPool // trusts the broker's certificate
}

// saslBroker returns the plaintext bootstrap addresses and the SASL_SSL
// listener (TLS, SCRAM-SHA-512) of a broker started by kafka.sh with
// --sasl-ssl: the one of KSTREAMS_TEST_BROKERS when KSTREAMS_TEST_KAFKA_DIR
// names its run directory and it has that listener (tools/test.sh starts it
// so), else a one-node broker of its own.
func saslBroker(t *testing.T) ([]string, saslListener) {
	t.Helper()
	sh := os.Getenv("KSTREAMS_TEST_KAFKA_SH")
	if sh == "" {
		t.Skip("SKIPPED: TLS and SASL are tested on a real broker with a SASL_SSL listener, which the test starts with kafka.sh: set KSTREAMS_TEST_KAFKA_SH to tools/kafka/kafka.sh (tools/test.sh does)")
	}
	var plain []string
	dir := os.Getenv("KSTREAMS_TEST_KAFKA_DIR")
	if _, err := os.Stat(filepath.Join(dir, "sasl.env")); dir != "" && err == nil && os.Getenv("KSTREAMS_TEST_BROKERS") != "" {
		plain = testBrokers(t)
	} else {
		dir = t.TempDir()
		plain = strings.Split(kafkaSh(t, sh, dir, "start", "--sasl-ssl"), ",")
		t.Cleanup(func() { kafkaSh(t, sh, dir, "stop") })
	}
	var l saslListener
	for line := range strings.Lines(kafkaSh(t, sh, dir, "sasl")) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "bootstrap":
			l.brokers = strings.Split(v, ",")
		case "user":
			l.user = v
		case "password":
			l.password = v
		case "ca":
			pem, err := os.ReadFile(v)
			if err != nil {
				t.Fatal(err)
			}
			l.roots = x509.NewCertPool()
			if !l.roots.AppendCertsFromPEM(pem) {
				t.Fatalf("no certificate in %s", v)
			}
		}
	}
	if len(l.brokers) == 0 || l.user == "" || l.password == "" || l.roots == nil {
		t.Fatalf("kafka.sh sasl printed an incomplete listener: %+v", l)
	}
	return plain, l
}

// kgoOpts are the options that connect through the listener as user with
// password, trusting roots.
func (l saslListener) kgoOpts(user, password string, roots *x509.CertPool) []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()),
	}
}

// logSink collects the application's and franz-go's log lines.
type logSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// options are an App's options to run through the listener, logging
// everything (franz-go at debug level) to logs.
func (l saslListener) options(appID, user, password string, roots *x509.CertPool, logs *logSink) []kstreams.Option {
	kgoLog := kgo.BasicLogger(logs, kgo.LogLevelDebug, func() string { return "kgo: " })
	return []kstreams.Option{
		kstreams.WithBrokers(l.brokers...), kstreams.WithApplicationID(appID),
		kstreams.WithCommitInterval(200 * time.Millisecond),
		kstreams.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		kstreams.WithKgoOptions(append(l.kgoOpts(user, password, roots), kgo.WithLogger(kgoLog))...),
	}
}

// runUntilError runs an App that must fail and returns Run's error; it
// fails the test if Run has not returned within the timeout (a hang).
func runUntilError(t *testing.T, topo *kstreams.Topology, timeout time.Duration, opts ...kstreams.Option) error {
	t.Helper()
	app, err := kstreams.NewApp(topo, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- app.Run(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil; want an error")
		}
		t.Logf("Run failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(timeout):
		cancel()
		err := <-done
		t.Fatalf("Run did not fail within %v (it returned %v when cancelled)", timeout, err)
		return nil
	}
}

// noSecret fails the test if a password appears in any of the texts.
func noSecret(t *testing.T, what string, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			line := ""
			sc := bufio.NewScanner(strings.NewReader(text))
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				if strings.Contains(sc.Text(), s) {
					line = sc.Text()
					break
				}
			}
			t.Errorf("%s contains a password: %q", what, strings.ReplaceAll(line, s, "<PASSWORD>"))
		}
	}
}

// TestRealKafkaTLSAndSASL runs an App through a broker's SASL_SSL listener
// (TLS with the test CA, SCRAM-SHA-512), then Apps with a wrong password
// and without the CA: those fail Run with an error that names
// authentication or the certificate, within the start-up retry bound, not
// a hang. No password appears in any log line (franz-go's at debug level
// included) or error.
func TestRealKafkaTLSAndSASL(t *testing.T) {
	t.Parallel()
	plain, l := saslBroker(t)
	const wrongPassword = "not-the-password-4b1d"

	t.Run("runs", func(t *testing.T) {
		in, out, appID := uniqueName(t, "in"), uniqueName(t, "out"), uniqueName(t, "app")
		// Topics and input through the plaintext listener; the App uses
		// only the SASL_SSL one.
		createTopics(t, plain, 2, in, out)
		results := collect(t, plain, out)
		inputs := map[string]string{}
		sendIDs(t, newClient(t, plain), in, 0, 200, 10, inputs)
		var logs logSink
		a := startApp(t, countingTopology(t, in, out, memory.Supplier()), l.options(appID, l.user, l.password, l.roots, &logs)...)
		waitFor(t, 60*time.Second, "200 outputs", func() bool { return len(outputIDs(results.snapshot())) >= 200 })
		if err := a.stop(t); err != nil {
			t.Fatalf("Run: %v", err)
		}
		checkNoLoss(t, inputs, results.snapshot())
		// The App's changelog was written through the listener too.
		if !strings.Contains(logs.String(), "SCRAM-SHA-512") {
			t.Errorf("franz-go's debug log does not show the SCRAM-SHA-512 authentication")
		}
		noSecret(t, "the logs", logs.String(), l.password)
	})

	t.Run("wrong password", func(t *testing.T) {
		in, out := uniqueName(t, "in"), uniqueName(t, "out")
		createTopics(t, plain, 1, in, out)
		var logs logSink
		err := runUntilError(t, countingTopology(t, in, out, memory.Supplier()), 90*time.Second,
			l.options(uniqueName(t, "app"), l.user, wrongPassword, l.roots, &logs)...)
		if msg := strings.ToLower(err.Error()); !strings.Contains(msg, "authentication") {
			t.Errorf("the error does not name authentication: %v", err)
		}
		noSecret(t, "the error", fmt.Sprintf("%v %+v", err, err), wrongPassword, l.password)
		noSecret(t, "the logs", logs.String(), wrongPassword, l.password)
	})

	t.Run("untrusted certificate", func(t *testing.T) {
		in, out := uniqueName(t, "in"), uniqueName(t, "out")
		createTopics(t, plain, 1, in, out)
		var logs logSink
		// The system's roots, which do not hold the test CA.
		err := runUntilError(t, countingTopology(t, in, out, memory.Supplier()), 90*time.Second,
			l.options(uniqueName(t, "app"), l.user, l.password, nil, &logs)...)
		var unknown x509.UnknownAuthorityError
		if msg := err.Error(); !strings.Contains(msg, "certificate") || !errors.As(err, &unknown) {
			t.Errorf("the error does not name the certificate (want an x509.UnknownAuthorityError in its chain): %v", err)
		}
		noSecret(t, "the error", fmt.Sprintf("%v %+v", err, err), l.password)
		noSecret(t, "the logs", logs.String(), l.password)
	})
}
