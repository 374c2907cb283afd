package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster is an Apache Kafka cluster run by tools/kafka/kafka.sh.
type cluster struct {
	script  string // path of kafka.sh
	dir     string
	nodes   int
	brokers []string
}

func (c *cluster) sh(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{c.script}, append(args, "-d", c.dir)...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kafka.sh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func startCluster(ctx context.Context, script, dir string, nodes int) (*cluster, error) {
	c := &cluster{script: script, dir: dir, nodes: nodes}
	out, err := c.sh(ctx, "start", "-n", strconv.Itoa(nodes))
	if err != nil {
		return nil, err
	}
	c.brokers = strings.Split(out, ",")
	return c, nil
}

func (c *cluster) stop() {
	if _, err := c.sh(context.Background(), "stop"); err != nil {
		logf("stopping cluster %s: %v", c.dir, err)
	}
}

// stopNode stops node n (1-based), with SIGKILL if kill.
func (c *cluster) stopNode(ctx context.Context, n int, kill bool) error {
	args := []string{"stop-node", strconv.Itoa(n)}
	if kill {
		args = append(args, "-9")
	}
	_, err := c.sh(ctx, args...)
	return err
}

// startNode restarts node n and waits until the cluster answers.
func (c *cluster) startNode(ctx context.Context, n int) error {
	_, err := c.sh(ctx, "start-node", strconv.Itoa(n))
	return err
}

func (c *cluster) client(opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...)}, opts...)...)
}

// createTopics creates topics with partitions partitions and the broker's
// default replication factor.
func (c *cluster) createTopics(ctx context.Context, partitions int32, topics ...string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, -1, nil, topics...)
	if err == nil {
		err = resps.Error()
	}
	if err != nil {
		return fmt.Errorf("creating topics %v: %w", topics, err)
	}
	return waitTopics(ctx, cl, partitions, topics...)
}

// waitTopics waits until every broker's metadata has the topics with
// leaders for all their partitions. A broker learns of a new topic from the
// controller a moment after CreateTopics returns, and an application that
// asks that broker meanwhile is told the topic does not exist.
func waitTopics(ctx context.Context, cl *kgo.Client, partitions int32, topics ...string) error {
	adm := kadm.NewClient(cl)
	var last error
	for attempt := 0; attempt < 150 && ctx.Err() == nil; attempt++ {
		if attempt > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		bs, err := adm.ListBrokers(ctx)
		if err != nil {
			last = err
			continue
		}
		last = nil
		for _, b := range bs {
			req := kmsg.NewPtrMetadataRequest()
			for _, t := range topics {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(t)
				req.Topics = append(req.Topics, rt)
			}
			resp, err := cl.Broker(int(b.NodeID)).Request(ctx, req)
			if err != nil {
				last = err
				break
			}
			for _, t := range resp.(*kmsg.MetadataResponse).Topics {
				ready := t.ErrorCode == 0 && int32(len(t.Partitions)) == partitions
				for _, p := range t.Partitions {
					ready = ready && p.ErrorCode == 0 && p.Leader >= 0
				}
				if !ready {
					last = fmt.Errorf("broker %d: topic %s not ready", b.NodeID, topicName(t.Topic))
				}
			}
		}
		if last == nil {
			return nil
		}
	}
	return fmt.Errorf("topics %v not visible on every broker: %v", topics, last)
}

// coordinator returns the node (1-based, as kafka.sh numbers them: node ids
// are 1..n) that coordinates group.
func (c *cluster) coordinator(ctx context.Context, group string) (int, error) {
	cl, err := c.client()
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp := kadm.NewClient(cl).FindGroupCoordinators(ctx, group)
	for _, r := range resp {
		if r.Err != nil {
			return 0, r.Err
		}
		return int(r.NodeID), nil
	}
	return 0, fmt.Errorf("no coordinator for %s", group)
}

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

func topicName(p *string) string {
	if p == nil {
		return "?"
	}
	return *p
}
