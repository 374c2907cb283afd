#!/usr/bin/env bash
# Runs every test of every module in go.work with the race detector (the
# integration tests on the embedded cluster), then the core integration suite
# again on a real Apache Kafka 4.x broker started by tools/kafka/kafka.sh, then
# the reliability suite (tools/chaos, shortened) on real brokers.
#
# Usage: tools/test.sh [--no-kafka] [--no-chaos] [--no-bench] [--soak] [extra go test flags]
#
#   --no-kafka   skip the real-broker suite, chaos and the benchmark harness (no Java needed)
#   --no-chaos   skip the chaos scenarios
#   --no-bench   skip the quick run of the Kafka Streams comparison harness
#   --soak       run the long chaos soak instead of the short scenarios (~30 min)
#
# The real broker needs Java 17+ and Maven (installed with apt-get when
# missing, as root) and fetches its jars from Maven Central once
# (tools/kafka/dist). If it cannot run, the suite is reported SKIPPED, and
# the run fails when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

kafka=1 chaos=short bench=1
gotest=()
for a in "$@"; do
  case "$a" in
    --no-kafka) kafka=0 ;;
    --no-chaos) chaos="" ;;
    --no-bench) bench=0 ;;
    --soak) chaos=long ;;
    *) gotest+=("$a") ;;
  esac
done

failed=0
fail() { echo "test.sh: FAILED: $*"; failed=1; }

# 1. Unit tests and the embedded-cluster (kfake) integration suite.
for dir in $(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p'); do
  echo "=== module $dir"
  if ! (cd "$dir" && go vet ./... && go test -race -count=1 ${gotest[@]+"${gotest[@]}"} ./...); then
    fail "module $dir"
  fi
done

# 2. The same integration suite on a real Apache Kafka broker.
if ((kafka)); then
  run_dir="$root/tools/kafka/run/test-$$"
  stop_broker() { tools/kafka/kafka.sh stop -d "$run_dir" || true; }
  echo "=== real Apache Kafka: core integration suite"
  if brokers="$(tools/kafka/kafka.sh start -n 1 -d "$run_dir")"; then
    trap stop_broker EXIT
    echo "broker at $brokers (logs in $run_dir)"
    # Every test of package kstreams: those that take testBrokers (the
    # integration suite: group, restart, poison, async, TestRealKafka*) run
    # on this broker; the TestRealKafka* that bounce brokers start their own.
    if ! (cd core && KSTREAMS_TEST_BROKERS="$brokers" KSTREAMS_TEST_KAFKA_SH="$root/tools/kafka/kafka.sh" \
      go test -race -count=1 ${gotest[@]+"${gotest[@]}"} ./); then
      fail "core integration suite on Apache Kafka (broker logs in $run_dir)"
    fi
    stop_broker
    trap - EXIT
    [[ $failed == 1 ]] || rm -rf "$run_dir"
  elif [[ ${CI:-} == true ]]; then
    fail "could not start Apache Kafka (see the messages above)"
  else
    echo "test.sh: SKIPPED the real-broker suite: could not start Apache Kafka (see above; needs Java 17+ and Maven Central)"
    chaos=""
    bench=0
  fi
fi

# 3. The reliability suite: kill -9, broker bounces, scaling, lost state,
# poison records, on clusters of its own.
if ((kafka)) && [[ -n $chaos ]]; then
  echo "=== chaos ($chaos)"
  if ! (cd tools && go run ./chaos -mode "$chaos"); then
    fail "chaos ($chaos)"
  fi
fi

# 4. The kstreams vs Kafka Streams / parallel-consumer harness, quick sizes:
# keeps it working; the figures are not checked (see docs/benchmarks/).
if ((kafka)) && ((bench)); then
  echo "=== benchmark harness (tools/bench/ks -quick)"
  if ! (cd tools && go run ./bench/ks -quick); then
    fail "tools/bench/ks -quick"
  fi
fi
exit $failed
