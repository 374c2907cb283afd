package redis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	kstreams "github.com/kstreams-go/kstreams/core"
	"github.com/kstreams-go/kstreams/core/embedded"
	"github.com/kstreams-go/kstreams/core/serde"
	"github.com/kstreams-go/kstreams/core/store"
	"github.com/redis/go-redis/v9"
)

const (
	killApp   = "redis-kill"
	killIn    = "kill-in"
	killOut   = "kill-out"
	killEnv   = "KSTREAMS_REDIS_KILL_CHILD" // brokers|redis address: run as the killed instance
	killParts = 4
)

func countBothTopology(tb testing.TB, client redis.UniversalClient) *kstreams.Topology {
	supplier := Supplier(client)
	b := kstreams.NewBuilder()
	logged := kstreams.AddStore(b, store.KeyValue("logged", serde.String, serde.Int64, supplier))
	unlogged := kstreams.AddStore(b, store.KeyValue("unlogged", serde.String, serde.Int64, supplier, store.WithoutChangelog()))
	src := kstreams.Source(b, "src", []string{killIn}, serde.String, serde.String)
	counted := kstreams.Process(src, "count", func() kstreams.Processor[string, string, string, string] {
		return &countBoth{loggedStore: logged, unloggedStore: unlogged}
	}, kstreams.WithStores(logged, unlogged))
	kstreams.Sink(counted, "sink", killOut, serde.String, serde.String)
	topo, err := b.Build()
	if err != nil {
		tb.Fatal(err)
	}
	return topo
}

func killAppOptions(brokers []string) []kstreams.Option {
	return []kstreams.Option{kstreams.WithBrokers(brokers...), kstreams.WithApplicationID(killApp),
		kstreams.WithCommitInterval(50 * time.Millisecond), kstreams.WithSessionTimeout(time.Second)}
}

// TestKillHelper is the instance TestKillNineLosesNothing kills: it counts
// until SIGKILL.
func TestKillHelper(t *testing.T) {
	spec := os.Getenv(killEnv)
	if spec == "" {
		t.Skip("run by TestKillNineLosesNothing")
	}
	brokers, addr, _ := strings.Cut(spec, "|")
	client := redis.NewClient(&redis.Options{Addr: addr})
	app, err := kstreams.NewApp(countBothTopology(t, client), killAppOptions(strings.Split(brokers, ","))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Fatal(app.Run(context.Background())) // returns only on failure
}

// An instance counting into Redis is killed (SIGKILL) twice in the middle
// of its work, each time while another process owns nothing yet; a final
// instance finishes. No count is lost (every key's last count is at least
// its number of records, in the store with a changelog and the one
// without), what Redis holds at the end is what was last emitted, and the
// store without changelog, which keeps its input offsets, is exact.
func TestKillNineLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	const keys, records = 40, 8000
	addr := startRedis(t)
	rdb, _ := newClient(t, addr)
	c, err := embedded.NewCluster(embedded.Topic(killIn, killParts), embedded.Topic(killOut, killParts), embedded.MinSessionTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The input arrives while the instances run (200 records every 20 ms),
	// so that the kills land between commits.
	produced := make(chan error, 1)
	go func() {
		for batch := range records / 200 {
			recs := make([]embedded.Record[string, string], 200)
			for i := range recs {
				recs[i] = embedded.Record[string, string]{Key: fmt.Sprintf("k%02d", (batch*200+i)%keys), Value: "v"}
			}
			if err := embedded.Produce(ctx, c, killIn, serde.String, serde.String, recs...); err != nil {
				produced <- err
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		produced <- nil
	}()

	for kill := 1; kill <= 2; kill++ {
		child := exec.Command(os.Args[0], "-test.run=^TestKillHelper$")
		child.Env = append(os.Environ(), killEnv+"="+strings.Join(c.Brokers(), ",")+"|"+addr)
		var out strings.Builder
		child.Stdout, child.Stderr = &out, &out
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it has emitted a third (then two thirds) of the counts.
		_, err := embedded.ReadAtLeast(ctx, c, killOut, kill*records/3, serde.String, serde.String)
		child.Process.Kill()
		child.Wait()
		if err != nil {
			t.Fatalf("kill %d: %v; the child printed:\n%s", kill, err, out.String())
		}
	}

	if err := <-produced; err != nil {
		t.Fatal(err)
	}
	app, err := kstreams.NewApp(countBothTopology(t, rdb), killAppOptions(c.Brokers())...)
	if err != nil {
		t.Fatal(err)
	}
	appCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- app.Run(appCtx) }()
	var last map[string][2]int
	for {
		got, err := embedded.Read(ctx, c, killOut, serde.String, serde.String)
		if err != nil {
			t.Fatal(err)
		}
		last = map[string][2]int{}
		for _, r := range got {
			l, u, _ := strings.Cut(r.Value, "/")
			nl, _ := strconv.Atoi(l)
			nu, _ := strconv.Atoi(u)
			last[r.Key] = [2]int{nl, nu}
		}
		complete := len(last) == keys
		for _, n := range last {
			complete = complete && n[0] >= records/keys && n[1] >= records/keys
		}
		if complete {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("the final instance stopped: %v", err)
		case <-ctx.Done():
			t.Fatalf("counts after the kills never reached %d per key: %v", records/keys, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Let it commit what it emitted, then stop it (a flush and a commit).
	time.Sleep(300 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err := embedded.Read(ctx, c, killOut, serde.String, serde.String)
	if err != nil {
		t.Fatal(err)
	}
	partition := map[string]int32{}
	for _, r := range got {
		l, u, _ := strings.Cut(r.Value, "/")
		nl, _ := strconv.Atoi(l)
		nu, _ := strconv.Atoi(u)
		last[r.Key] = [2]int{nl, nu}
		partition[r.Key] = r.Partition
	}
	var over [2]int
	for k, n := range last {
		p := partition[k]
		for i, s := range []string{"logged", "unlogged"} {
			v, err := rdb.HGet(ctx, Keys(killApp, s, p).Data, k).Bytes()
			if err != nil {
				t.Fatalf("store %s, key %s: %v", s, k, err)
			}
			stored, err := serde.StoreForm(serde.Int64).Deserialize("", nil, v) // the bytes the store wrote
			if err != nil {
				t.Fatal(err)
			}
			if int(stored) != n[i] {
				t.Errorf("store %s, key %s: Redis holds %d, last emitted %d", s, k, stored, n[i])
			}
			over[i] += n[i] - records/keys
		}
	}
	t.Logf("after 2 kills, counts above the truth (records processed again, at-least-once): %d with changelog, %d without, of %d", over[0], over[1], records)
	// Without changelog the store keeps the input offsets with its data
	// (store.InputOffsetKeeper) and a restart resumes from them: exact.
	if over[1] != 0 {
		t.Errorf("the store without changelog counts %d above the truth: records applied twice", over[1])
	}
}
