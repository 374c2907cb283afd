#!/usr/bin/env bash
# Runs every test of every module in go.work with the race detector (the
# integration tests on the embedded cluster), a short fuzzing pass over every
# fuzz target, then the core integration suite again on a real Apache Kafka
# 4.x broker started by tools/kafka/kafka.sh, then the reliability suite
# (tools/chaos, shortened) on real brokers. It ends with a summary: what ran,
# what did not (and why), and every skipped test with its reason.
#
# Usage: tools/test.sh [--no-kafka] [--no-chaos] [--no-bench] [--no-fuzz] [--soak] [extra go test flags]
#
#   --no-kafka   skip the real-broker suite, chaos and the benchmark harness (no Java needed)
#   --no-chaos   skip the chaos scenarios
#   --no-bench   skip the quick run of the Kafka Streams comparison harness
#   --no-fuzz    skip the fuzzing pass
#   --soak       run the long chaos soak instead of the short scenarios (~30 min),
#                every scenario of the benchmark harness (the default runs the count),
#                the Kafka Streams differential check on 1000 cases instead of 30,
#                and the long real-broker tests (KSTREAMS_TEST_LONG=1)
#
# FUZZTIME (default 6s) is how long each fuzz target runs.
#
# The real broker needs Java 17+ and Maven (installed with apt-get when
# missing, as root) and fetches its jars from Maven Central once
# (tools/kafka/dist). If it cannot run, the suite is reported NOT RUN, and
# the run fails when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

kafka=1 chaos=short bench=1 fuzz=1 ksdiff_cases=30 java_ok=0
# The benchmark harness keeps working on one scenario (the count, both
# sides); --soak runs every scenario.
bench_only="-only count"
gotest=()
for a in "$@"; do
  case "$a" in
    --no-kafka) kafka=0 ;;
    --no-chaos) chaos="" ;;
    --no-bench) bench=0 ;;
    --no-fuzz) fuzz=0 ;;
    --soak) bench_only="" chaos=long ksdiff_cases=1000; export KSTREAMS_TEST_LONG=1 ;;
    *) gotest+=("$a") ;;
  esac
done

failed=0
fail() { echo "test.sh: FAILED: $*"; failed=1; }
notrun=() # stages that did not run, with the reason
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
skips="$work/skips"
: >"$skips"

# stage NAME prints a header and starts timing NAME; the summary lists how
# long each stage took (CI has a time budget: keep the total under 25 min).
timings=() stage_name="" stage_start=$SECONDS
stage() {
  [[ -z $stage_name ]] || timings+=("$(printf '%5ds  %s' $((SECONDS - stage_start)) "$stage_name")")
  stage_name="$1" stage_start=$SECONDS
  [[ -z $1 ]] || echo "=== $1"
}

# testreport turns go test -json into go test's usual output and collects
# the skipped tests with their reasons (tools/testreport).
report=""
if (cd tools && go build -o "$work/testreport" ./testreport); then
  report="$work/testreport"
else
  echo "test.sh: WARNING: could not build tools/testreport; skipped tests will not be listed"
fi

# run_tests MODULE ARGS...: go test with the race detector in the current
# directory, its skipped tests collected under MODULE.
run_tests() {
  local module="$1"
  shift
  if [[ -n $report ]]; then
    go test -race -count=1 -timeout 20m -json "$@" | "$report" -module "$module" -skips "$skips"
  else
    go test -race -count=1 -timeout 20m "$@"
  fi
}

modules=$(go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')

# 0. The servers the add-on modules' tests run against (tools/services).
for svc in tools/services/*.sh; do
  [[ -e $svc ]] || continue
  stage "service $svc"
  bash "$svc" || fail "installing the test service $svc"
done
export KSTREAMS_TEST_SERVICES=required

# 1. Unit tests and the embedded-cluster (kfake) integration suite.
for dir in $modules; do
  stage "module $dir"
  if ! (cd "$dir" && go vet ./... && run_tests "$dir" ${gotest[@]+"${gotest[@]}"} ./...); then
    fail "module $dir"
  fi
done

# 2. A short fuzzing pass over every fuzz target (their seed corpora in
# testdata/fuzz ran in step 1); a failing input is written to the target's
# testdata/fuzz directory.
# fuzz_target DIR PKG TARGET fuzzes one target. A worker that exits with
# status 70 lost its connection to go test's fuzzing coordinator (an internal
# error of the fuzzing engine, by Go's definition not caused by an input); the
# coordinator still records the input it had sent. That input is run once
# more on its own: if it fails or runs longer than the engine's 10 s limit it
# is a real failure; if not, the engine's error is printed and the target is
# fuzzed once more, and a second failure of any kind fails.
fuzz_target() {
  local dir="$1" pkg="$2" target="$3" out="$work/fuzz.out" id start took
  for attempt in 1 2; do
    if (cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "${FUZZTIME:-6s}" "$pkg") 2>&1 | tee "$out"; then
      return 0
    fi
    ((attempt == 1)) || return 1
    grep -q 'hung or terminated unexpectedly: exit status 70' "$out" || return 1
    id=$(sed -n "s|.*Failing input written to testdata/fuzz/${target}/\([0-9a-f]*\).*|\1|p" "$out" | head -1)
    [[ -n $id ]] || return 1
    start=$SECONDS
    if ! (cd "$dir" && go test -count=1 -timeout 5m -run "^${target}\$/^${id}\$" "$pkg"); then
      return 1
    fi
    took=$((SECONDS - start))
    ((took < 10)) || { echo "test.sh: input $id of $target took ${took}s (a hang)"; return 1; }
    echo "test.sh: NOTE: a fuzzing worker of $target exited with status 70 (lost its coordinator);"
    echo "test.sh: NOTE: the input it held, testdata/fuzz/$target/$id, passes on its own in ${took}s; fuzzing again"
    rm -f "$dir/${pkg#./}/testdata/fuzz/$target/$id"
  done
}

if ((fuzz)); then
  stage "fuzzing (${FUZZTIME:-6s} per target)"
  for dir in $modules; do
    # "path/to/pkg_test.go:func FuzzName(" for every fuzz target of the module.
    while IFS=: read -r file target; do
      [[ -n $file ]] || continue
      pkg="./$(dirname "${file#./}")"
      echo "--- fuzz $dir $pkg $target"
      fuzz_target "$dir" "$pkg" "$target" ||
        fail "fuzzing $target in $dir/$pkg (the failing input is in its testdata/fuzz/$target)"
    done < <(cd "$dir" && grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed 's/:func /:/' | sort)
  done
else
  notrun+=("fuzzing pass: --no-fuzz")
fi

# 3. The same integration suite on a real Apache Kafka broker.
if ((kafka)); then
  run_dir="$root/tools/kafka/run/test-$$"
  stop_broker() { tools/kafka/kafka.sh stop -d "$run_dir" || true; }
  stage "real Apache Kafka: core integration suite"
  # --sasl-ssl: TestRealKafkaTLSAndSASL uses the broker's SASL_SSL listener
  # (KSTREAMS_TEST_KAFKA_DIR) instead of starting a broker of its own.
  if brokers="$(tools/kafka/kafka.sh start -n 1 -d "$run_dir" --sasl-ssl)"; then
    java_ok=1
    trap 'stop_broker; rm -rf "$work"' EXIT
    echo "broker at $brokers (logs in $run_dir)"
    # Every test of package kstreams: those that take testBrokers (the
    # integration suite: group, restart, poison, async, TestRealKafka*) run
    # on this broker; the TestRealKafka* that bounce brokers start their own.
    if ! (cd core && KSTREAMS_TEST_BROKERS="$brokers" KSTREAMS_TEST_KAFKA_SH="$root/tools/kafka/kafka.sh" KSTREAMS_TEST_KAFKA_DIR="$run_dir" \
      run_tests "core (Apache Kafka)" ${gotest[@]+"${gotest[@]}"} ./); then
      fail "core integration suite on Apache Kafka (broker logs in $run_dir)"
    fi
    stop_broker
    trap 'rm -rf "$work"' EXIT
    [[ $failed == 1 ]] || rm -rf "$run_dir"
  else
    if [[ ${CI:-} == true ]]; then
      fail "could not start Apache Kafka (see the messages above)"
    fi
    notrun+=("real-broker suite: Apache Kafka could not be started (see above; needs Java 17+ and Maven Central)")
    [[ -z $chaos ]] || notrun+=("chaos ($chaos): no real broker")
    ((bench == 0)) || notrun+=("benchmark harness: no real broker")
    chaos=""
    bench=0
  fi
else
  notrun+=("real-broker suite: --no-kafka")
  [[ -z $chaos ]] || notrun+=("chaos ($chaos): --no-kafka")
  ((bench == 0)) || notrun+=("benchmark harness: --no-kafka")
  chaos=""
  bench=0
fi

# 3b. kstreams against Kafka Streams, record for record (tools/ksdiff): the
# same topologies on the same generated inputs in Kafka Streams'
# TopologyTestDriver and in kstreamstest. Needs the Java and Maven the broker
# needed; a few seconds for 30 cases.
if ((java_ok)); then
  stage "Kafka Streams differential check (tools/ksdiff, $ksdiff_cases cases)"
  if ! (cd tools && go run ./ksdiff -cases "$ksdiff_cases"); then
    fail "tools/ksdiff: kstreams differs from Kafka Streams (see the cases above)"
  fi
elif ((kafka)); then
  notrun+=("Kafka Streams differential check: no Java (the broker could not start)")
else
  notrun+=("Kafka Streams differential check: --no-kafka")
fi

# 4. The reliability suite: kill -9, broker bounces, scaling, lost state,
# poison records, on clusters of its own.
if [[ -n $chaos ]]; then
  stage "chaos ($chaos)"
  if ! (cd tools && go run ./chaos -mode "$chaos"); then
    fail "chaos ($chaos)"
  fi
elif ((kafka)); then
  notrun+=("chaos: --no-chaos")
fi

# 5. The kstreams vs Kafka Streams / parallel-consumer harness, quick sizes:
# keeps it working; the figures are not checked (see docs/benchmarks/).
if ((bench)); then
  stage "benchmark harness (tools/bench/ks -quick $bench_only)"
  if ! (cd tools && go run ./bench/ks -quick $bench_only); then
    fail "tools/bench/ks -quick $bench_only"
  fi
elif ((kafka)); then
  notrun+=("benchmark harness: --no-bench")
fi

# Summary.
stage ""
echo
echo "=== summary"
echo "test.sh: time per stage (total ${SECONDS}s):"
printf '  %s\n' "${timings[@]}"
if ((${#notrun[@]})); then
  echo "test.sh: NOT RUN:"
  for n in "${notrun[@]}"; do
    echo "  - $n"
  done
fi
for n in "${notrun[@]+"${notrun[@]}"}"; do
  if [[ $n == real-broker* ]]; then
    echo "test.sh: !!! THE REAL-BROKER SUITE DID NOT RUN: this run proves nothing on Apache Kafka !!!"
  fi
done
nskips=$(wc -l <"$skips")
if [[ -z $report ]]; then
  echo "test.sh: skipped tests: unknown (tools/testreport did not build)"
elif ((nskips == 0)); then
  echo "test.sh: skipped tests: none"
else
  echo "test.sh: skipped tests ($nskips):"
  sed 's/^/  /' "$skips"
fi
if ((failed)); then
  echo "test.sh: FAIL"
else
  echo "test.sh: PASS"
fi
exit $failed
