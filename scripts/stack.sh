#!/usr/bin/env bash
# Local, non-Docker server stack for netready integration tests and users.
#
#   scripts/stack.sh up     [kafka] [clickhouse] [alertmanager]   start (default: all)
#   scripts/stack.sh down   [kafka] [clickhouse] [alertmanager]   stop what `up` started
#   scripts/stack.sh status [kafka] [clickhouse] [alertmanager]   print endpoints + state
#
# Everything binds to 127.0.0.1 only. Configs, data, logs and pid files live in
# ${NETREADY_STACK_DIR:-<repo>/.stack}; Kafka jars are resolved by Maven from
# stack/kafka/pom.xml into ${NETREADY_CACHE:-~/.cache/netready}/kafka-<version>/libs.
# See stack/README.md for details.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STACK_DIR=${NETREADY_STACK_DIR:-$REPO/.stack}
CACHE_DIR=${NETREADY_CACHE:-$HOME/.cache/netready}
HOST=127.0.0.1

KAFKA_PORT=${NETREADY_KAFKA_PORT:-19092}
KAFKA_CONTROLLER_PORT=${NETREADY_KAFKA_CONTROLLER_PORT:-19093}
CLICKHOUSE_PORT=${NETREADY_CLICKHOUSE_PORT:-19000}
CLICKHOUSE_HTTP_PORT=${NETREADY_CLICKHOUSE_HTTP_PORT:-18123}
ALERTMANAGER_PORT=${NETREADY_ALERTMANAGER_PORT:-19094}
ALERT_WEBHOOK_URL=${NETREADY_ALERT_WEBHOOK_URL:-http://127.0.0.1:19099/hook}
KAFKA_HEAP_OPTS=${NETREADY_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}
# Seconds each service gets to become healthy after being started.
HEALTH_TIMEOUT=${NETREADY_STACK_TIMEOUT:-60}

ALL_SERVICES=(kafka clickhouse alertmanager)
KAFKA_POM=$REPO/stack/kafka/pom.xml
RUN_DIR=$STACK_DIR/run   # pid files; only pids listed here are ever signalled by `down`

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }

# ---------------------------------------------------------------- processes

pid_file() { echo "$RUN_DIR/$1.pid"; }

# Prints the pid recorded for a service if that process is still alive AND is
# really ours: its command line must mention $STACK_DIR (every service is
# started with a config path inside it). This guards against pid reuse, so
# `down` can never signal an unrelated process.
our_pid() {
    local f pid
    f=$(pid_file "$1")
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' </proc/"$pid"/cmdline | grep -qF -- "$STACK_DIR/" || return 1
    echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

service_ports() {
    case $1 in
        kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
        clickhouse) echo "$CLICKHOUSE_PORT $CLICKHOUSE_HTTP_PORT" ;;
        alertmanager) echo "$ALERTMANAGER_PORT" ;;
    esac
}

# Start "$@" fully detached: own session (so Ctrl-C in the caller or a test
# runner killing its process group does not take the server down), stdin from
# /dev/null and output to a log file (so callers capturing our stdout, e.g.
# subprocess.run(capture_output=True), don't hang on an inherited pipe).
# Bash runs background jobs of a script in the script's process group, so
# setsid(1) does not need to fork and $! is the server's own pid.
# fd 9 (the up/down lock) is closed so a server never holds the lock.
spawn() {
    local svc=$1 logf=$2
    shift 2
    setsid "$@" </dev/null >>"$logf" 2>&1 9>&- &
    echo $! >"$(pid_file "$svc")"
}

# --------------------------------------------------------------- health checks

healthy() {
    case $1 in
        # a metadata answer from the broker = broker API is serving
        kafka) kcat -b "$HOST:$KAFKA_PORT" -L -m 2 >/dev/null 2>&1 ;;
        # /ping answers "Ok." once the server accepts queries
        clickhouse) [[ $(curl -fsS -m 2 "http://$HOST:$CLICKHOUSE_HTTP_PORT/ping" 2>/dev/null) == Ok.* ]] ;;
        alertmanager) curl -fsS -m 2 -o /dev/null "http://$HOST:$ALERTMANAGER_PORT/-/ready" 2>/dev/null ;;
    esac
}

service_logs() {
    case $1 in
        kafka) echo "$STACK_DIR/logs/kafka.out $STACK_DIR/logs/kafka-server.log" ;;
        clickhouse) echo "$STACK_DIR/logs/clickhouse.out $STACK_DIR/logs/clickhouse-server.err.log" ;;
        alertmanager) echo "$STACK_DIR/logs/alertmanager.log" ;;
    esac
}

show_log_tail() {
    local f
    for f in $(service_logs "$1"); do
        [[ -s $f ]] || continue
        printf '[stack] ---- last 30 lines of %s ----\n' "$f" >&2
        tail -n 30 "$f" >&2
    done
}

# Keep one previous generation of a service's logs, so that the log tail shown
# on a failed start is from this start and not from an older run.
rotate_logs() {
    local f
    for f in $(service_logs "$1"); do
        if [[ -e $f ]]; then mv -f "$f" "$f.prev"; fi
    done
}

# Wait until a service we just started (or found running) is healthy. Fails
# fast if its process dies, and shows its log tail on any failure.
wait_healthy() {
    local svc=$1 deadline=$((SECONDS + HEALTH_TIMEOUT))
    while ! healthy "$svc"; do
        if ! our_pid "$svc" >/dev/null; then
            log "$svc exited during startup"
            show_log_tail "$svc"
            rm -f "$(pid_file "$svc")"
            return 1
        fi
        if ((SECONDS >= deadline)); then
            log "$svc did not become healthy within ${HEALTH_TIMEOUT}s (pid $(our_pid "$svc"), still running; 'down' will stop it)"
            show_log_tail "$svc"
            return 1
        fi
        sleep 0.3
    done
}

# ----------------------------------------------------------------- prerequisites

APT_UPDATED=0
# Install Debian packages on demand (Debian bookworm names). Only possible as root.
apt_install() {
    if [[ $(id -u) -ne 0 ]]; then
        die "missing packages: $* (run: sudo apt-get install -y $*)"
    fi
    if ((APT_UPDATED == 0)); then
        log "apt-get update"
        apt-get update -qq >&2
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    # Note: on a systemd host the packages' own system services may get
    # enabled/started by the install; the stack never uses them and uses
    # different ports, so they don't conflict.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# clickhouse-server lives in /usr/sbin, which is not on a normal user's PATH.
clickhouse_server_bin() { command -v clickhouse-server || { [[ -x /usr/sbin/clickhouse-server ]] && echo /usr/sbin/clickhouse-server; }; }

ensure_prereqs() {
    local pkgs=() svc
    command -v kcat >/dev/null || pkgs+=(kcat)     # kafka health check + tests
    command -v curl >/dev/null || pkgs+=(curl)     # http health checks
    for svc in "$@"; do
        case $svc in
            kafka)
                command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
                command -v mvn >/dev/null || pkgs+=(maven) ;;
            clickhouse)
                clickhouse_server_bin >/dev/null || pkgs+=(clickhouse-server)
                command -v clickhouse-client >/dev/null || pkgs+=(clickhouse-client) ;;
            alertmanager)
                command -v prometheus-alertmanager >/dev/null || pkgs+=(prometheus-alertmanager) ;;
        esac
    done
    ((${#pkgs[@]} == 0)) || apt_install "${pkgs[@]}"
}

# ---------------------------------------------------------------------- kafka

kafka_version() {
    sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$KAFKA_POM" | head -n1
}

# Resolve the broker jars into the cache (outside git) unless a complete copy
# for this exact pom is already there. "Complete" = a marker file written only
# after Maven succeeded, holding the pom's hash and the jar list; every listed
# jar must still exist.
ensure_kafka_jars() {
    local version=$1 home=$2
    local libs=$home/libs marker=$home/.complete pom_hash java_major
    pom_hash=$(sha256sum "$KAFKA_POM" | cut -d' ' -f1)
    if [[ -f $marker ]] && [[ $(head -n1 "$marker") == "$pom_hash" ]] &&
        tail -n +2 "$marker" | (cd "$libs" 2>/dev/null && xargs -r ls >/dev/null 2>&1); then
        return 0
    fi
    java_major=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    ((${java_major:-0} >= 17)) || die "Kafka $version needs Java >= 17, found '${java_major:-none}'"
    log "resolving Kafka $version jars with Maven into $libs (first run only)"
    mkdir -p "$home"
    rm -rf "$libs.tmp"
    # Copy into a temp dir and rename, so an interrupted download never looks complete.
    if ! mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs.tmp" >"$home/mvn.log" 2>&1; then
        tail -n 40 "$home/mvn.log" >&2
        die "Maven could not resolve Kafka jars (full log: $home/mvn.log)"
    fi
    rm -rf "$libs"
    mv "$libs.tmp" "$libs"
    { echo "$pom_hash"; (cd "$libs" && ls); } >"$marker"
}

start_kafka() {
    local version home dir=$STACK_DIR/kafka
    version=$(kafka_version)
    [[ -n $version ]] || die "cannot read <kafka.version> from $KAFKA_POM"
    home=$CACHE_DIR/kafka-$version
    ensure_kafka_jars "$version" "$home"
    mkdir -p "$dir/data" "$STACK_DIR/logs"

    # Single node, combined broker+controller (KRaft), static quorum of one voter.
    cat >"$dir/server.properties" <<EOF
# generated by scripts/stack.sh -- edits are overwritten on the next 'up'
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
num.partitions=4
default.replication.factor=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
# test data: keep it small and short-lived
log.retention.hours=24
log.segment.bytes=67108864
EOF
    # Kafka 4.x logs via log4j2; send everything to a file in the stack dir.
    cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $STACK_DIR/logs/kafka-server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
EOF
    local heap_opts jvm_opts
    read -r -a heap_opts <<<"$KAFKA_HEAP_OPTS"   # space-separated JVM flags, e.g. "-Xms256m -Xmx1g"
    jvm_opts=("${heap_opts[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
        "-Dlog4j2.configurationFile=$dir/log4j2.properties" "-Dkafka.logs.dir=$STACK_DIR/logs")

    # KRaft needs the log dir formatted once with a cluster id (kafka.tools.StorageTool
    # is still the formatter class in 4.x; it lives in the kafka_2.13 core jar).
    if [[ ! -f $dir/data/meta.properties ]]; then
        [[ -s $dir/cluster.id ]] ||
            java -cp "$home/libs/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 >"$dir/cluster.id"
        log "formatting Kafka storage (cluster id $(<"$dir/cluster.id"))"
        java "${jvm_opts[@]}" -cp "$home/libs/*" kafka.tools.StorageTool format \
            -t "$(<"$dir/cluster.id")" -c "$dir/server.properties" >"$STACK_DIR/logs/kafka-format.log" 2>&1 ||
            { cat "$STACK_DIR/logs/kafka-format.log" >&2; die "kafka storage format failed"; }
    fi
    spawn kafka "$STACK_DIR/logs/kafka.out" java "${jvm_opts[@]}" -cp "$home/libs/*" kafka.Kafka "$dir/server.properties"
}

# ----------------------------------------------------------------- clickhouse

start_clickhouse() {
    local dir=$STACK_DIR/clickhouse bin
    bin=$(clickhouse_server_bin) || die "clickhouse-server not found"
    mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas" "$STACK_DIR/logs"

    # Minimal config for 18.16 (root element is <yandex>). Deliberately no
    # interserver_http_port (replication port not needed -> not opened) and
    # small caches (defaults are 8 GiB uncompressed + 5 GiB marks).
    cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<!-- generated by scripts/stack.sh; edits are overwritten on the next "up" -->
<yandex>
    <logger>
        <level>information</level>
        <log>$STACK_DIR/logs/clickhouse-server.log</log>
        <errorlog>$STACK_DIR/logs/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>2</count>
    </logger>
    <listen_host>$HOST</listen_host>
    <tcp_port>$CLICKHOUSE_PORT</tcp_port>
    <http_port>$CLICKHOUSE_HTTP_PORT</http_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
</yandex>
EOF
    # Users. Every user is limited to loopback. Passwords are plaintext on
    # purpose: this is a throwaway local test server.
    cat >"$dir/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- generated by scripts/stack.sh; edits are overwritten on the next "up" -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
        </default>
        <!-- readonly=1: SELECT only, no writes, no DDL, no changing settings -->
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
        <netready_writer>
            <password>writer-secret</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </netready_writer>
        <analyst>
            <password>analyst-secret</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
        </analyst>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
    # 18.16 runs fine as root with this config (it only warns about nothing
    # relevant); no --daemon so that $! is the server pid we record.
    spawn clickhouse "$STACK_DIR/logs/clickhouse.out" "$bin" "--config-file=$dir/config.xml"
}

# Once ClickHouse is healthy: the database named in CLICKHOUSE_URL must exist.
post_start_clickhouse() {
    clickhouse-client --host "$HOST" --port "$CLICKHOUSE_PORT" -q 'CREATE DATABASE IF NOT EXISTS netready' ||
        die "could not create database netready"
}

# --------------------------------------------------------------- alertmanager

start_alertmanager() {
    local dir=$STACK_DIR/alertmanager
    mkdir -p "$dir/data" "$STACK_DIR/logs"
    # Fast grouping so tests see webhook notifications within ~1-2 s.
    cat >"$dir/alertmanager.yml" <<EOF
# generated by scripts/stack.sh -- edits are overwritten on the next 'up'
route:
  receiver: netready-webhook
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1m
receivers:
  - name: netready-webhook
    webhook_configs:
      - url: '$ALERT_WEBHOOK_URL'
        send_resolved: true
EOF
    if command -v amtool >/dev/null; then
        amtool check-config "$dir/alertmanager.yml" >"$STACK_DIR/logs/alertmanager-check.log" 2>&1 ||
            { cat "$STACK_DIR/logs/alertmanager-check.log" >&2; die "invalid alertmanager config"; }
    fi
    # --cluster.listen-address= (empty) disables the gossip cluster, which would
    # otherwise listen on 0.0.0.0:9094.
    spawn alertmanager "$STACK_DIR/logs/alertmanager.log" prometheus-alertmanager \
        "--config.file=$dir/alertmanager.yml" \
        "--storage.path=$dir/data/" \
        "--web.listen-address=$HOST:$ALERTMANAGER_PORT" \
        "--web.external-url=http://$HOST:$ALERTMANAGER_PORT" \
        "--cluster.listen-address=" \
        "--log.level=info"
}

# ------------------------------------------------------------------- commands

cmd_up() {
    local svc pid port started=()
    ensure_prereqs "$@"
    mkdir -p "$RUN_DIR" "$STACK_DIR/logs"
    # Start everything that is not running first, then wait for all of them,
    # so the startup times overlap.
    for svc in "$@"; do
        if pid=$(our_pid "$svc"); then
            log "$svc already running (pid $pid)"
            started+=("$svc")   # still wait for health: it may be mid-startup
            continue
        fi
        rm -f "$(pid_file "$svc")"
        for port in $(service_ports "$svc"); do
            port_busy "$port" && die "$svc: port $HOST:$port is already in use by a process not started by this stack (try: ss -ltnp 'sport = :$port')"
        done
        log "starting $svc"
        rotate_logs "$svc"
        "start_$svc"
        started+=("$svc")
    done
    local failed=0
    for svc in "${started[@]}"; do
        if wait_healthy "$svc"; then
            [[ $svc == clickhouse ]] && post_start_clickhouse
            log "$svc is up (pid $(our_pid "$svc"))"
        else
            failed=1
        fi
    done
    ((failed == 0)) || die "stack did not come up; see messages above (logs in $STACK_DIR/logs)"
}

stop_service() {
    local svc=$1 pid f timeout
    f=$(pid_file "$svc")
    if [[ ! -e $f ]]; then
        log "$svc: no pid file, nothing to stop"
        return 0
    fi
    if ! pid=$(our_pid "$svc"); then
        log "$svc not running (removing stale pid file)"
        rm -f "$f"
        return 0
    fi
    # Kafka does a controlled shutdown; give it longer than the others.
    case $svc in kafka) timeout=30 ;; *) timeout=15 ;; esac
    log "stopping $svc (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "$svc did not exit within ${timeout}s, sending KILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
            break
        fi
        sleep 0.2
    done
    rm -f "$f"
}

cmd_down() {
    local i
    # reverse order of startup
    for ((i = $# ; i >= 1 ; i--)); do
        stop_service "${!i}"
    done
}

cmd_status() {
    local svc all_up=0
    echo "KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT"
    echo "CLICKHOUSE_URL=clickhouse://default@$HOST:$CLICKHOUSE_PORT/netready"
    echo "CLICKHOUSE_HTTP=http://$HOST:$CLICKHOUSE_HTTP_PORT"
    echo "ALERTMANAGER_URL=http://$HOST:$ALERTMANAGER_PORT"
    # "up" means the endpoint answers its health check, whoever started it.
    for svc in "$@"; do
        if healthy "$svc"; then
            echo "$(upper "$svc")=up"
        else
            echo "$(upper "$svc")=down"
            all_up=3
        fi
    done
    return "$all_up"
}

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

main() {
    (($# >= 1)) || usage
    local cmd=$1 svc
    shift
    case $cmd in up | down | status) ;; -h | --help | help) usage ;; *) usage ;; esac
    for svc in "$@"; do
        [[ " ${ALL_SERVICES[*]} " == *" $svc "* ]] || die "unknown service '$svc' (known: ${ALL_SERVICES[*]})"
    done
    (($# > 0)) || set -- "${ALL_SERVICES[@]}"

    if [[ $cmd == status ]]; then
        cmd_status "$@"
        return
    fi
    # Serialize up/down so concurrent callers (e.g. parallel test sessions)
    # don't start two copies of a service or race on pid files.
    mkdir -p "$STACK_DIR"
    exec 9>"$STACK_DIR/.lock"
    flock -w 120 9 || die "another stack.sh up/down holds $STACK_DIR/.lock"
    "cmd_$cmd" "$@"
}

main "$@"
