#!/usr/bin/env bash
# Runs Apache Kafka 4.x (KRaft, combined broker+controller nodes) on 127.0.0.1
# for tests, from jars fetched from Maven Central and cached.
#
#   tools/kafka/kafka.sh start [-n 1|3] [-d DIR] [--sasl-ssl]
#                                                  start a new cluster (1 or 3 nodes); prints the bootstrap address.
#                                                  --sasl-ssl: each node also listens on SASL_SSL (TLS, SCRAM-SHA-512)
#   tools/kafka/kafka.sh sasl [-d DIR]             print the SASL_SSL listener's settings (after start --sasl-ssl)
#   tools/kafka/kafka.sh stop [-d DIR]             stop every node of the cluster (SIGTERM, then SIGKILL after 15s)
#   tools/kafka/kafka.sh stop-node N [-9] [-d DIR] stop node N (1-based; SIGTERM, SIGKILL after 45s; -9: SIGKILL)
#   tools/kafka/kafka.sh start-node N [-d DIR]     restart node N on its data; waits until the cluster answers
#   tools/kafka/kafka.sh bootstrap [-d DIR]        print the bootstrap address
#   tools/kafka/kafka.sh status [-d DIR]           print each node's state
#   tools/kafka/kafka.sh fetch                     fetch the broker jars (installs Java 17 and Maven if missing)
#
# DIR (default tools/kafka/run/default) holds the cluster: cluster.env, and per
# node nodeN/{server.properties,data,logs/server.log,stdout.log,pid}. start
# wipes DIR first unless a node in it is running (then it prints the address).
#
# With --sasl-ssl, start generates a test CA and a broker certificate for
# 127.0.0.1 and localhost (openssl, into DIR/tls; ca.pem is what clients
# trust) and a SCRAM-SHA-512 user with a random password (kafka-storage
# format --add-scram). The PLAINTEXT listener stays (inter-broker traffic
# and the plain bootstrap address). "sasl" prints, one per line:
# bootstrap=ADDRS, mechanism=SCRAM-SHA-512, user=NAME, password=SECRET,
# ca=DIR/tls/ca.pem.
#
# Environment: KAFKA_VERSION (default 4.4.0), KAFKA_HEAP (default 512m),
# KAFKA_DIST (default tools/kafka/dist: the jar cache), KAFKA_START_TIMEOUT
# (seconds, default 120).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tools="$(dirname "$here")"
version="${KAFKA_VERSION:-4.4.0}"
heap="${KAFKA_HEAP:-512m}"
dist="${KAFKA_DIST:-$here/dist}"
lib="$dist/$version/lib"
start_timeout="${KAFKA_START_TIMEOUT:-120}"

log() { echo "kafka.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# ensure_tools installs a Java 17+ runtime, Maven and openssl when missing
# (CI and fresh machines run as root with Debian's packages).
ensure_tools() {
  local need=()
  if ! command -v java >/dev/null 2>&1; then need+=(openjdk-17-jre-headless); fi
  if ! command -v mvn >/dev/null 2>&1; then need+=(maven); fi
  if ! command -v openssl >/dev/null 2>&1; then need+=(openssl); fi
  if ((${#need[@]})); then
    command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get to install them"
    [[ $(id -u) == 0 ]] || die "missing ${need[*]}: run as root or install them"
    log "installing ${need[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null ||
      die "apt-get install ${need[*]} failed"
  fi
  local jv
  jv="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  [[ -n $jv && $jv -ge 17 ]] || die "Kafka $version needs Java 17 or newer; java -version says ${jv:-nothing}"
}

# fetch copies kafka_2.13 and its runtime dependencies, plus the log4j
# binding for slf4j, into $lib (once per version).
fetch() {
  [[ -f $lib/.complete ]] && return 0
  ensure_tools
  log "fetching Apache Kafka $version from Maven Central into $lib"
  rm -rf "$lib" && mkdir -p "$lib"
  local mlog="$dist/$version/mvn.log"
  if ! mvn -B -q -f "$here/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$lib" >"$mlog" 2>&1; then
    tail -20 "$mlog" >&2
    die "mvn could not fetch org.apache.kafka:kafka_2.13:$version (see $mlog)"
  fi
  # Kafka logs through slf4j 1.7; bind it to the log4j 2 that Kafka brings.
  local l4j
  l4j="$(ls "$lib" | sed -n 's/^log4j-core-\(.*\)\.jar$/\1/p' | head -1)"
  [[ -n $l4j ]] || die "no log4j-core among Kafka's dependencies"
  if ! mvn -B -q -f "$here/pom.xml" dependency:copy -Dartifact="org.apache.logging.log4j:log4j-slf4j-impl:$l4j" \
    -DoutputDirectory="$lib" >>"$mlog" 2>&1; then
    tail -20 "$mlog" >&2
    die "mvn could not fetch log4j-slf4j-impl $l4j (see $mlog)"
  fi
  [[ -f $lib/kafka_2.13-$version.jar ]] || die "kafka_2.13-$version.jar missing after fetch"
  touch "$lib/.complete"
}

ping_bin() {
  local bin="$dist/bin/kafka-ping"
  if [[ ! -x $bin || $here/ping/main.go -nt $bin ]]; then
    mkdir -p "$dist/bin"
    (cd "$tools" && go build -o "$bin" ./kafka/ping) || die "building tools/kafka/ping failed"
  fi
  echo "$bin"
}

is_used() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_ports N prints N distinct ports nothing listens on, outside the
# kernel's ephemeral range: a port that a client connection on 127.0.0.1
# holds is not seen by the probe, and the broker could not bind it.
free_ports() {
  local n=$1 got=() p tries=0 lo=20000 span eph_lo eph_hi
  read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || { eph_lo=32768 eph_hi=60999; }
  if ((eph_lo > lo + 2000)); then
    span=$((eph_lo - lo))
  elif ((eph_hi < 63000)); then
    lo=$((eph_hi + 1)) span=$((65000 - eph_hi))
  else
    lo=20000 span=30000
  fi
  while ((${#got[@]} < n)); do
    ((tries++ < 1000)) || die "no free port found"
    p=$((lo + RANDOM % span))
    [[ " ${got[*]} " == *" $p "* ]] && continue
    is_used "$p" && continue
    got+=("$p")
  done
  echo "${got[@]}"
}

node_pid() { # prints the pid of node $1 if it runs
  local f="$dir/node$1/pid"
  [[ -f $f ]] || return 1
  local pid
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

load_env() {
  [[ -f $dir/cluster.env ]] || die "no cluster in $dir (run start first)"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
}

write_config() { # node id
  local i=$1 rf=$nodes min_isr=1 voters="" j
  ((nodes >= 3)) && min_isr=2
  for ((j = 1; j <= nodes; j++)); do
    voters+="${voters:+,}$j@127.0.0.1:${ctl_ports[j - 1]}"
  done
  local listeners="PLAINTEXT://127.0.0.1:${ports[i - 1]},CONTROLLER://127.0.0.1:${ctl_ports[i - 1]}"
  local advertised="PLAINTEXT://127.0.0.1:${ports[i - 1]}"
  local protocols="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
  if ((sasl)); then
    listeners+=",SASL_SSL://127.0.0.1:${sasl_ports[i - 1]}"
    advertised+=",SASL_SSL://127.0.0.1:${sasl_ports[i - 1]}"
    protocols+=",SASL_SSL:SASL_SSL"
  fi
  mkdir -p "$dir/node$i/data" "$dir/node$i/logs"
  cat >"$dir/node$i/server.properties" <<EOF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$dir/node$i/data
num.network.threads=2
num.io.threads=4
background.threads=4
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.consumer.min.session.timeout.ms=1000
group.consumer.session.timeout.ms=6000
log.segment.bytes=67108864
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.threads=1
EOF
  if ((sasl)); then
    cat >>"$dir/node$i/server.properties" <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$dir/tls/broker.p12
ssl.keystore.password=$keystore_password
ssl.key.password=$keystore_password
EOF
  fi
}

# make_tls writes a test CA (tls/ca.pem) and a broker certificate for
# 127.0.0.1 and localhost signed by it, in a PKCS12 keystore
# (tls/broker.p12, password $keystore_password). One certificate serves
# every node: they all listen on 127.0.0.1. Valid 7 days.
make_tls() {
  command -v openssl >/dev/null 2>&1 || ensure_tools
  local t="$dir/tls"
  mkdir -p "$t" && chmod 700 "$t"
  {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
      -subj "/CN=kstreams test CA" -keyout "$t/ca.key" -out "$t/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$t/broker.key" -out "$t/broker.csr" &&
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >"$t/broker.ext" &&
      openssl x509 -req -in "$t/broker.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 7 \
        -extfile "$t/broker.ext" -out "$t/broker.pem" &&
      openssl pkcs12 -export -in "$t/broker.pem" -inkey "$t/broker.key" -certfile "$t/ca.pem" -name broker \
        -passout "pass:$keystore_password" -out "$t/broker.p12"
  } >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "generating the test certificates failed"; }
}

random_secret() { head -c 18 /dev/urandom | base64 | tr '+/' '-_'; }

start_node() { # node id
  local i=$1
  if node_pid "$i" >/dev/null; then return 0; fi
  local nd="$dir/node$i"
  local opts=(
    "-Xmx$heap" "-Xms128m" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -Djava.awt.headless=true "-Dkafka.logs.dir=$nd/logs" "-Dlog4j2.configurationFile=$here/log4j2.properties"
  )
  # setsid: the node survives the shell that started it and gets none of its
  # terminal's signals.
  setsid java "${opts[@]}" -cp "$lib/*" kafka.Kafka "$nd/server.properties" >"$nd/stdout.log" 2>&1 </dev/null &
  echo $! >"$nd/pid"
  disown $! # no "Killed" job notices from this shell when a node is killed
}

wait_ready() { # want [node]
  local bin ping_pid j ok=1
  bin="$(ping_bin)"
  "$bin" -brokers "$bootstrap" -want "$1" -node "${2:--1}" -timeout "${start_timeout}s" 2>"$dir/ping.err" &
  ping_pid=$!
  # Give up early when a node died while starting.
  while kill -0 "$ping_pid" 2>/dev/null; do
    for ((j = 1; j <= nodes; j++)); do
      if [[ -f $dir/node$j/pid ]] && ! node_pid "$j" >/dev/null; then
        log "node $j exited while starting"
        kill "$ping_pid" 2>/dev/null || true
        break 2
      fi
    done
    sleep 0.5
  done
  wait "$ping_pid" 2>/dev/null && ok=0
  if ((ok != 0)); then
    cat "$dir/ping.err" >&2
    for ((j = 1; j <= nodes; j++)); do
      log "node $j: $(node_pid "$j" >/dev/null && echo running || echo NOT running); last lines of its logs:"
      tail -5 "$dir/node$j/logs/server.log" >&2 2>/dev/null || true
      tail -5 "$dir/node$j/stdout.log" >&2 2>/dev/null || true
    done
    return 1
  fi
}

stop_nodes() { # signal grace-seconds node...
  local sig=$1 grace=$2 i pid pids=()
  shift 2
  for i in "$@"; do
    if pid="$(node_pid "$i")"; then
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$i:$pid")
    fi
  done
  local deadline=$((SECONDS + grace)) p
  for p in ${pids[@]+"${pids[@]}"}; do
    i=${p%%:*} pid=${p#*:}
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        log "node $i did not stop within ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.2
    done
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline + 10)); do sleep 0.1; done
    rm -f "$dir/node$i/pid"
  done
}

# new_cluster wipes $dir, picks ports, formats every node and starts them.
new_cluster() {
  rm -rf "$dir" && mkdir -p "$dir"
  read -r -a all <<<"$(free_ports $((3 * nodes)))"
  ports=("${all[@]:0:nodes}") ctl_ports=("${all[@]:nodes:nodes}") sasl_ports=()
  bootstrap=""
  for p in "${ports[@]}"; do bootstrap+="${bootstrap:+,}127.0.0.1:$p"; done
  # A Kafka cluster id: 16 random bytes, URL-safe base64. One starting with
  # '-' would be taken for an option by the storage tool: draw again.
  cluster_id=-
  while [[ $cluster_id == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  {
    echo "nodes=$nodes"
    echo "version=$version"
    echo "cluster_id=$cluster_id"
    echo "ports=(${ports[*]})"
    echo "ctl_ports=(${ctl_ports[*]})"
    echo "bootstrap=$bootstrap"
    echo "sasl=$sasl"
  } >"$dir/cluster.env"
  local scram=()
  if ((sasl)); then
    sasl_ports=("${all[@]:2*nodes}")
    keystore_password="$(random_secret)"
    make_tls
    local sasl_bootstrap="" sasl_password
    for p in "${sasl_ports[@]}"; do sasl_bootstrap+="${sasl_bootstrap:+,}127.0.0.1:$p"; done
    sasl_password="$(random_secret)"
    scram=(--add-scram "SCRAM-SHA-512=[name=kstreams,password=$sasl_password]")
    (
      umask 077
      {
        echo "bootstrap=$sasl_bootstrap"
        echo "mechanism=SCRAM-SHA-512"
        echo "user=kstreams"
        echo "password=$sasl_password"
        echo "ca=$dir/tls/ca.pem"
      } >"$dir/sasl.env"
    )
  fi
  for ((i = 1; i <= nodes; i++)); do
    write_config "$i"
    if ! java -Xmx256m "-Dlog4j2.configurationFile=$here/log4j2.properties" "-Dkafka.logs.dir=$dir/node$i/logs" \
      -cp "$lib/*" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/node$i/server.properties" \
      ${scram[@]+"${scram[@]}"} >"$dir/node$i/format.log" 2>&1; then
      cat "$dir/node$i/format.log" >&2
      die "formatting the log dir of node $i failed"
    fi
  done
  for ((i = 1; i <= nodes; i++)); do start_node "$i"; done
}

cmd="${1:-}"
[[ -n $cmd ]] || { sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
dir="$here/run/default" nodes=1 sig=TERM node="" sasl=0
while (($#)); do
  case "$1" in
    -n) nodes="$2"; shift 2 ;;
    --sasl-ssl) sasl=1; shift ;;
    -d) dir="$2"; shift 2 ;;
    -9) sig=KILL; shift ;;
    [0-9]*) node="$1"; shift ;;
    *) die "unknown argument $1" ;;
  esac
done
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"

case "$cmd" in
  fetch)
    fetch
    ping_bin >/dev/null
    ;;
  start)
    [[ $nodes == 1 || $nodes == 3 ]] || die "-n must be 1 or 3"
    if [[ -f $dir/cluster.env ]]; then
      load_env
      for ((i = 1; i <= nodes; i++)); do
        if node_pid "$i" >/dev/null; then
          log "cluster in $dir already running"
          echo "$bootstrap"
          exit 0
        fi
      done
    fi
    fetch
    ping_bin >/dev/null
    # Two attempts: a node that dies while starting (a port taken between
    # the probe and the bind) gets a new cluster on other ports.
    for attempt in 1 2; do
      new_cluster
      if wait_ready "$nodes"; then break; fi
      stop_nodes KILL 10 $(seq 1 "$nodes")
      if ((attempt == 2)); then die "cluster did not answer within ${start_timeout}s (logs in $dir)"; fi
      mv "$dir" "$dir.failed-$$" && log "retrying on other ports (logs of the failed attempt in $dir.failed-$$)"
    done
    log "Kafka $version, $nodes node(s), logs in $dir"
    echo "$bootstrap"
    ;;
  stop)
    [[ -f $dir/cluster.env ]] || exit 0
    load_env
    # Stopping every node at once, the last ones cannot finish their
    # controlled shutdown (no controller quorum left): 15s, then SIGKILL.
    stop_nodes "$sig" 15 $(seq 1 "$nodes")
    ;;
  stop-node)
    load_env
    [[ -n $node && $node -ge 1 && $node -le $nodes ]] || die "stop-node needs a node number 1..$nodes"
    stop_nodes "$sig" 45 "$node"
    ;;
  start-node)
    load_env
    [[ -n $node && $node -ge 1 && $node -le $nodes ]] || die "start-node needs a node number 1..$nodes"
    start_node "$node"
    wait_ready "$nodes" "$node" || die "cluster did not answer within ${start_timeout}s after starting node $node"
    ;;
  bootstrap)
    load_env
    echo "$bootstrap"
    ;;
  sasl)
    load_env
    [[ -f $dir/sasl.env ]] || die "the cluster in $dir has no SASL_SSL listener (start it with --sasl-ssl)"
    cat "$dir/sasl.env"
    ;;
  status)
    load_env
    for ((i = 1; i <= nodes; i++)); do
      if pid="$(node_pid "$i")"; then
        echo "node $i: running (pid $pid) on 127.0.0.1:${ports[i - 1]}"
      else
        echo "node $i: stopped"
      fi
    done
    ;;
  *) die "unknown command $cmd" ;;
esac
