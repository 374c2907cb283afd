package kstreams

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// refusedKgoOptions are the franz-go options WithKgoOptions refuses, by
// function name, with what to use instead. Every group option not in
// allowedGroupOptions is refused too: the runtime owns the consumer group.
var refusedKgoOptions = map[string]string{
	// Consumer options: the runtime chooses what it reads, from where.
	"ConsumeTopics":        "the sources' topics are the topology's",
	"ConsumeRegex":         "the sources' topics are the topology's",
	"ConsumeExcludeTopics": "the sources' topics are the topology's",
	"ConsumePartitions":    "tasks are assigned by the consumer group",
	"ConsumeResetOffset":   "partitions without a committed offset are read from the start",
	"ConsumeStartOffset":   "partitions without a committed offset are read from the start",
	"FetchIsolationLevel":  "the runtime sets it (read_committed with WithTransactions)",
	"KeepControlRecords":   "the runtime must not see transaction markers",
	// Producer options: outputs, changelogs and dead letters must reach the
	// partitions the runtime chose, once each, in order.
	"RecordPartitioner":                  "records go to the partitions kstreams chose (changelog partition = task partition); a sink's own partitioning is kstreams.WithPartitioner",
	"RackAwarePartitioning":              "records go to the partitions kstreams chose",
	"DefaultProduceTopicAlways":          "it would send every record, changelogs included, to one topic",
	"TransactionalID":                    "use kstreams.WithTransactions",
	"TransactionTimeout":                 "use kstreams.WithTransactions, which sets it",
	"DisableIdempotentWrite":             "changelogs rely on idempotent, ordered writes",
	"RequiredAcks":                       "changelogs and outputs need acks from all in-sync replicas",
	"ManualFlushing":                     "the runtime produces as it processes and flushes at commits",
	"AllowIdempotentProduceCancellation": "a cancelled produce could be written twice",
}

// allowedGroupOptions are the group options WithKgoOptions accepts: they
// tune the group without changing what the runtime relies on.
var allowedGroupOptions = map[string]bool{
	"HeartbeatInterval":         true,
	"RequireStableFetchOffsets": true,
}

// groupOptionAdvice says what to use instead of some refused group options.
var groupOptionAdvice = map[string]string{
	"ConsumerGroup":      "the group is the application id (kstreams.WithApplicationID)",
	"SessionTimeout":     "use kstreams.WithSessionTimeout (the runtime's ownership lease follows it)",
	"RebalanceTimeout":   "use kstreams.WithRebalanceTimeout",
	"Balancers":          "kstreams assigns tasks with its own balancer",
	"DisableAutoCommit":  "kstreams commits itself (kstreams.WithCommitInterval)",
	"AutoCommitInterval": "kstreams commits itself (kstreams.WithCommitInterval)",
	"AutoCommitMarks":    "kstreams commits itself (kstreams.WithCommitInterval)",
	"InstanceID":         "static membership is not supported",
}

// checkKgoOption returns an error naming o if WithKgoOptions refuses it.
func checkKgoOption(o kgo.Opt) error {
	if o == nil {
		return fmt.Errorf("a nil kgo.Opt")
	}
	name, kind := kgoOptionName(o)
	if name == "" {
		return fmt.Errorf("cannot tell which franz-go option a %T is, so cannot check that it is safe (a franz-go version kstreams does not know?)", o)
	}
	if why, ok := refusedKgoOptions[name]; ok {
		return fmt.Errorf("kgo.%s breaks kstreams: %s", name, why)
	}
	if kind == "groupOpt" && !allowedGroupOptions[name] {
		why := groupOptionAdvice[name]
		if why == "" {
			why = "kstreams runs the consumer group itself"
		}
		return fmt.Errorf("kgo.%s is a consumer group option, which fights the runtime's group: %s (accepted group options: kgo.HeartbeatInterval, kgo.RequireStableFetchOffsets)", name, why)
	}
	return nil
}

// kgoOptionName returns the name of the kgo function that made o
// ("RecordPartitioner") and o's kind ("producerOpt"), or "" if it cannot
// tell. kgo.Opt has no public name: franz-go makes each option a struct
// holding a closure, and the closure's function name ends with the
// function that made it ("kgo.RecordPartitioner.func1"; when the call was
// inlined, "caller.RecordPartitioner.func1"). kgo's own Client.OptValue
// identifies options by function name the same way.
func kgoOptionName(o kgo.Opt) (name, kind string) {
	v := reflect.ValueOf(o)
	if v.Kind() != reflect.Struct || v.NumField() != 1 || v.Field(0).Kind() != reflect.Func || v.Field(0).IsNil() {
		return "", ""
	}
	fn := runtime.FuncForPC(v.Field(0).Pointer())
	if fn == nil {
		return "", ""
	}
	parts := strings.Split(fn.Name(), ".")
	// Drop the closure suffixes: "func1", and "1", "2" for nested ones.
	for len(parts) > 0 && (strings.HasPrefix(parts[len(parts)-1], "func") || isDigits(parts[len(parts)-1])) {
		parts = parts[:len(parts)-1]
	}
	if len(parts) == 0 {
		return "", ""
	}
	name = parts[len(parts)-1]
	if name == "" || name[0] < 'A' || name[0] > 'Z' {
		return "", ""
	}
	return name, v.Type().Name()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
