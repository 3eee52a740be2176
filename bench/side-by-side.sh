#!/usr/bin/env bash
# Side by side: the same rocketcore-bench workloads against rocketcore and
# against the rocketmq-rust 1.0 broker + name server, one ratio table.
#
# NOT FOR CI, and it refuses to run when $CI is set: the first run builds
# rocketmq-rust from crates.io (20+ minutes on 2 cores), and the numbers
# only mean something on a quiet machine, run by a person who looks at them.
#
# rocketmq-rust is installed outside the repo (its code and binaries must not
# end up in our tree or our commits), in
#   ${ROCKETCORE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rocketcore-bench}/rocketmq-rust-1.0.0
# and reused from there.
#
# Knobs (environment):
#   SECS=10        measured seconds per produce run (after a 2 s warm-up run)
#   RUNS=3         runs per workload and system; the table shows median [min–max]
#   BACKLOG=600000 messages produced before the consume run, which reads half
#                  of them: consumers run at uneven speeds, and a queue that
#                  runs dry holds its long poll for 1 s, an idle second that
#                  would count as consume time
#   BACKLOG_RATE=20000  msg/s the backlog is sent at: as fast as possible, the
#                  faster connections fill their queues up to 5x the others
#   WORKLOADS="p64 p8x32 batch32 sync64 consume"   a subset, in any order
#   SYSTEMS="rocketcore rocketmq-rust"
#   OUT=dir        results (default /tmp/side-by-side-<time>); stores live under
#                  it too, so it must be ext4/XFS (rocketcore writes O_DIRECT)
#   STORE_FS=auto  where both systems store: "native" (under OUT), or "loop":
#                  a sparse ext4 image (LOOP_GIB=48, no reserved blocks) mounted
#                  under OUT, which needs root. rocketmq-rust counts a disk as
#                  (total - available) / total and, clamped whatever it is told,
#                  cleans files forcibly above 0.85 and refuses writes above
#                  0.90; a root filesystem with many reserved blocks (this
#                  host: 0.82 with 80% free) trips that in the middle of a run.
#                  "auto" picks loop when that ratio is 0.75 or more and it can.
#   KEEP_STORES=1  keep each run's store instead of deleting it
#   RMQRS_LOG_FILTER=warn   tracing filter for rocketmq-rust (default: its own)
#   RMQRS_STORE_SETTINGS='commitLogMicroBatchEnabled = false'   TOML lines added
#                  to rocketmq-rust's [store] (default: none, its stock settings)
#
# Broker CPU is utime+stime of the broker process over the measured run only,
# divided by the messages the bench counted. rocketcore `dev` holds its name
# server in the same process; rocketmq-rust's name server is a separate process
# whose CPU is recorded in the raw results but not in the table (it only
# answers route look-ups here).
set -euo pipefail

if [[ -n ${CI:-} ]]; then
    echo "side-by-side.sh: not for CI (it builds rocketmq-rust for 20+ minutes and needs a quiet host)" >&2
    exit 2
fi

SECS=${SECS:-10}
RUNS=${RUNS:-3}
BACKLOG=${BACKLOG:-600000}
BACKLOG_RATE=${BACKLOG_RATE:-20000}
CONSUME_MSGS=$((BACKLOG / 2))
WARMUP_SECS=2
WORKLOADS=${WORKLOADS:-"p64 p8x32 batch32 sync64 consume"}
SYSTEMS=${SYSTEMS:-"rocketcore rocketmq-rust"}
RMQRS_VERSION=1.0.0

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ROCKETCORE_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rocketcore-bench}
RMQRS_ROOT=$CACHE/rocketmq-rust-$RMQRS_VERSION
RMQRS_NAMESRV=$RMQRS_ROOT/bin/rocketmq-namesrv-rust
RMQRS_BROKER=$RMQRS_ROOT/bin/rocketmq-broker-rust
RC=$REPO/target/release/rocketcore
BENCH=$REPO/target/release/rocketcore-bench
OUT=${OUT:-/tmp/side-by-side-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/runs"
OUT=$(cd "$OUT" && pwd)
STORE_FS=${STORE_FS:-auto}
LOOP_GIB=${LOOP_GIB:-48}
STORE_ROOT=$OUT/runs
LOOP_DEV="" LOOP_MNT="" LOOP_IMG=""
RESULTS=$OUT/results.jsonl
: >"$RESULTS"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- processes

PIDS=() BENCH_PID="" DISK_RATIO=""
cleanup() {
    local pid
    # timeout passes the TERM on to the bench.
    [[ -z $BENCH_PID ]] || kill -TERM "$BENCH_PID" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    if [[ -n $LOOP_MNT ]]; then
        # Lazy, so a straggler holding a file cannot keep it mounted.
        umount -l "$LOOP_MNT" 2>/dev/null || true
    fi
    [[ -z $LOOP_MNT ]] || rmdir "$LOOP_MNT" 2>/dev/null || true
    [[ -z $LOOP_DEV ]] || losetup -d "$LOOP_DEV" 2>/dev/null || true
    [[ -z $LOOP_IMG ]] || rm -f "$LOOP_IMG"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one server we started: TERM, then KILL after 15 s. Shutdown is not
# measured; a broker that flushes slowly on exit costs only wall time.
stop_pid() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# utime+stime in clock ticks. The fields after the ")" that closes the command
# name, which may itself hold spaces: state is the first, utime the 12th.
cpu_ticks() {
    local line rest
    read -r line <"/proc/$1/stat" || return 1
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}
TCK=$(getconf CLK_TCK)

# free_ports N [M]: N distinct free loopback ports, then M more whose P-2 is
# free as well (rocketmq-rust opens its "fast" remoting listener on P-2). All
# are held at once while choosing, so none repeats.
free_ports() {
    python3 - "$1" "${2:-0}" <<'PY'
import socket, sys
plain, minus2 = int(sys.argv[1]), int(sys.argv[2])
held, out, taken = [], [], set()
def grab(port=0):
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    held.append(s)
    return s.getsockname()[1]
while len(out) < plain:
    p = grab(); taken.add(p); out.append(p)
while len(out) < plain + minus2:
    p = grab(); taken.add(p)
    if p < 1026 or p - 2 in taken:
        continue
    try:
        grab(p - 2)
    except OSError:
        continue
    taken.add(p - 2); out.append(p)
print(" ".join(map(str, out)))
PY
}

port_open() {
    python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",int(sys.argv[1])),0.5); s.close()' "$1" 2>/dev/null
}

# The name server gives out TBW102 once a broker with autoCreateTopicEnable has
# registered: that is what the bench needs to create its topics.
route_ready() {
    "$RC" admin -n "127.0.0.1:$1" topicRoute -t TBW102 >/dev/null 2>&1
}

show_log() {
    local f
    for f in "$@"; do
        [[ -s $f ]] || continue
        echo "---- tail of $f" >&2
        tail -n 25 "$f" >&2
    done
}

# wait_until SECONDS PID LABEL CMD... : polls CMD every 0.2 s; fails early when
# PID dies. Sets WAIT_ERR.
wait_until() {
    local secs=$1 pid=$2 label=$3; shift 3
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            WAIT_ERR="$label exited during startup"
            return 1
        fi
        "$@" && return 0
        sleep 0.2
    done
    WAIT_ERR="$label not ready after ${secs}s"
    return 1
}

# (total - available) / total of the filesystem holding $1: what
# rocketmq-rust compares with its disk thresholds.
disk_ratio() {
    python3 -c 'import os,sys; s=os.statvfs(sys.argv[1]); print(round(1 - s.f_bavail / s.f_blocks, 3))' "$1"
}

setup_store_fs() {
    local ratio can_loop=0
    ratio=$(disk_ratio "$OUT")
    if ((EUID == 0)) && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null &&
        losetup -f >/dev/null 2>&1; then
        can_loop=1
    fi
    case $STORE_FS in
    native) ;;
    loop) ((can_loop)) || die "STORE_FS=loop needs root, losetup, a free loop device and mkfs.ext4" ;;
    auto)
        if python3 -c 'import sys; sys.exit(not float(sys.argv[1]) >= 0.75)' "$ratio" &&
            [[ " $SYSTEMS " == *" rocketmq-rust "* ]]; then
            if ((can_loop)); then
                log "the filesystem of $OUT is at $ratio by rocketmq-rust's measure (>= 0.75): storing on a loop ext4"
                STORE_FS=loop
            else
                log "WARNING: the filesystem of $OUT is at $ratio by rocketmq-rust's measure; it cleans forcibly above 0.85 and refuses writes above 0.90 (STORE_FS=loop needs root)"
                STORE_FS=native
            fi
        else
            STORE_FS=native
        fi
        ;;
    *) die "STORE_FS must be auto, native or loop" ;;
    esac
    if [[ $STORE_FS == loop ]]; then
        LOOP_IMG=$OUT/store.img
        LOOP_MNT=$OUT/store-fs
        mkdir -p "$LOOP_MNT"
        truncate -s "${LOOP_GIB}G" "$LOOP_IMG"
        mkfs.ext4 -q -F -m 0 -E nodiscard "$LOOP_IMG"
        # direct-io: the image's own page cache would cache every page twice.
        LOOP_DEV=$(losetup --find --show --direct-io=on "$LOOP_IMG")
        # discard: deleting a run's store gives the space back to the host.
        mount -o discard "$LOOP_DEV" "$LOOP_MNT"
        STORE_ROOT=$LOOP_MNT
        log "stores on $LOOP_DEV ($LOOP_GIB GiB sparse ext4) at $LOOP_MNT"
    fi
}

# ---------------------------------------------------------------- binaries

ensure_rocketcore() {
    if [[ ! -x $RC || ! -x $BENCH ]]; then
        log "building rocketcore and rocketcore-bench (release)"
        (cd "$REPO" && cargo build --release -p rocketcore -p rocketcore-bench)
    fi
}

ensure_rocketmq_rust() {
    if [[ -x $RMQRS_NAMESRV && -x $RMQRS_BROKER ]]; then return; fi
    log "rocketmq-rust $RMQRS_VERSION is not in $RMQRS_ROOT; installing it from crates.io"
    log "WARNING: a cold build takes 20+ minutes on 2 cores; later runs reuse it"
    mkdir -p "$RMQRS_ROOT"
    cargo install --root "$RMQRS_ROOT" --locked \
        "rocketmq-namesrv@$RMQRS_VERSION" "rocketmq-broker@$RMQRS_VERSION"
    [[ -x $RMQRS_NAMESRV && -x $RMQRS_BROKER ]] ||
        die "cargo install finished but $RMQRS_NAMESRV / $RMQRS_BROKER are missing"
}

# ---------------------------------------------------------------- servers
# start_<system> DIR FLUSH STORE sets NS (name server port), BROKER_PID, SERVER_PIDS
# (all pids of the run, broker last) and SERVER_LOGS; or fails with START_ERR.

start_rocketcore() {
    local d=$1 flush=$2 ns br
    read -r ns br <<<"$(free_ports 2)"
    "$RC" dev --namesrv-listen "127.0.0.1:$ns" --listen "127.0.0.1:$br" \
        --store "$3" --flush "$flush" \
        --set diskSpaceWarningLevelRatio=100 --set diskSpaceCleanForciblyRatio=100 \
        --set diskMaxUsedSpaceRatio=95 \
        >"$d/rocketcore.out" 2>"$d/rocketcore.err" &
    local pid=$!
    PIDS+=("$pid")
    SERVER_PIDS=("$pid")
    SERVER_LOGS=("$d/rocketcore.out" "$d/rocketcore.err")
    NS=$ns BROKER_PID=$pid
    if ! wait_until 60 "$pid" "rocketcore" grep -qs '^ready' "$d/rocketcore.out" ||
        ! wait_until 30 "$pid" "rocketcore (TBW102 route)" route_ready "$ns"; then
        START_ERR=$WAIT_ERR
        return 1
    fi
}

health_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1/readyz") == 200 ]]
}

start_rocketmq_rust() {
    local d=$1 flush=$2 ns nsh brh ha br
    local flush_type=ASYNC_FLUSH
    [[ $flush == sync ]] && flush_type=SYNC_FLUSH
    read -r ns nsh brh ha br <<<"$(free_ports 4 1)"
    mkdir -p "$d/home" "$d/rmq-home/conf" "$d/namesrv"
    # Everything these servers write (kvConfig, logs, store, defaults under
    # $HOME) stays in the run's directory.
    cat >"$d/namesrv.toml" <<EOF
rocketmqHome = "$d/rmq-home"
kvConfigPath = "$d/namesrv/kvConfig.json"
configStorePath = "$d/namesrv/rocketmq-namesrv.properties"
EOF
    cat >"$d/broker.toml" <<EOF
[broker]
namesrvAddr = "127.0.0.1:$ns"
brokerIp1 = "127.0.0.1"
listenPort = $br
storePathRootDir = "$3"
autoCreateTopicEnable = true

[broker.brokerServerConfig]
bindAddress = "127.0.0.1"

[broker.brokerIdentity]
brokerName = "broker-a"
brokerClusterName = "DefaultCluster"
brokerId = 0

[store]
storeType = "LocalFile"
brokerRole = "ASYNC_MASTER"
flushDiskType = "$flush_type"
storePathRootDir = "$3"
haListenAddress = "127.0.0.1"
haListenPort = $ha
# As near rocketcore's 100/100/95 as it accepts (max < forcibly < warning);
# it clamps the first two to 0.90/0.85 regardless, hence STORE_FS.
diskSpaceWarningLevelRatio = 100
diskSpaceCleanForciblyRatio = 99
diskMaxUsedSpaceRatio = 95
${RMQRS_STORE_SETTINGS:-}
EOF
    local -a logargs=()
    [[ -n ${RMQRS_LOG_FILTER:-} ]] && logargs=(--log-filter "$RMQRS_LOG_FILTER")
    local -a envs=(HOME="$d/home" ROCKETMQ_HOME="$d/rmq-home" ROCKETMQ_SHUTDOWN_TIMEOUT_SECONDS=10)

    env -u NAMESRV_ADDR "${envs[@]}" ROCKETMQ_HEALTH_BIND_ADDR="127.0.0.1:$nsh" \
        "$RMQRS_NAMESRV" -c "$d/namesrv.toml" --listenPort "$ns" --bindAddress 127.0.0.1 "${logargs[@]}" \
        >"$d/namesrv.out" 2>"$d/namesrv.err" &
    local nspid=$!
    PIDS+=("$nspid")
    SERVER_PIDS=("$nspid")
    SERVER_LOGS=("$d/namesrv.out" "$d/namesrv.err")
    if ! wait_until 60 "$nspid" "rocketmq-namesrv-rust" port_open "$ns" ||
        ! wait_until 30 "$nspid" "rocketmq-namesrv-rust (/readyz)" health_ready "$nsh"; then
        START_ERR=$WAIT_ERR
        return 1
    fi

    env -u NAMESRV_ADDR "${envs[@]}" ROCKETMQ_HEALTH_BIND_ADDR="127.0.0.1:$brh" \
        "$RMQRS_BROKER" -c "$d/broker.toml" -n "127.0.0.1:$ns" "${logargs[@]}" \
        >"$d/broker.out" 2>"$d/broker.err" &
    local brpid=$!
    PIDS+=("$brpid")
    SERVER_PIDS+=("$brpid")
    SERVER_LOGS+=("$d/broker.out" "$d/broker.err")
    NS=$ns BROKER_PID=$brpid
    if ! wait_until 120 "$brpid" "rocketmq-broker-rust" port_open "$br" ||
        ! wait_until 60 "$brpid" "rocketmq-broker-rust (/readyz)" health_ready "$brh" ||
        ! wait_until 60 "$brpid" "rocketmq-broker-rust (TBW102 route)" route_ready "$ns"; then
        START_ERR=$WAIT_ERR
        return 1
    fi
}

stop_servers() {
    local i
    # Broker first, so it can unregister from a name server that is still up.
    for ((i = ${#SERVER_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${SERVER_PIDS[i]}"; done
    # Reaped: never signal those pids again (they may belong to someone else).
    PIDS=()
}

# ---------------------------------------------------------------- workloads

# Bench arguments, flush mode and what the table calls each workload.
wl_args() {
    case $1 in
    p64) echo "--size 1024 --connections 64" ;;
    p8x32) echo "--size 1024 --connections 8 --inflight 32" ;;
    batch32) echo "--size 1024 --connections 8 --batch 32" ;;
    sync64) echo "--size 1024 --connections 64" ;;
    # Warm-up and backlog of the consume run: the fastest producer for both.
    consume) echo "--size 1024 --connections 8 --batch 32" ;;
    *) die "unknown workload $1 (known: p64 p8x32 batch32 sync64 consume)" ;;
    esac
}
wl_flush() { [[ $1 == sync64 ]] && echo sync || echo async; }

# bench LOGFILE TIMEOUT ARGS... ; sets BENCH_ERR on failure.
bench() {
    local logf=$1 limit=$2 rc=0; shift 2
    # In the background and waited for, so an interrupt reaches the trap at
    # once and the cleanup can stop it too.
    timeout --kill-after=10 "$limit" "$BENCH" "$@" >"$logf" 2>&1 &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    if ((rc != 0)); then
        if ((rc == 124 || rc == 137)); then
            BENCH_ERR="bench timed out after ${limit}s"
        else
            BENCH_ERR="bench exit $rc: $(grep -m1 -E '^(first error|error)' "$logf" || tail -n1 "$logf")"
        fi
        return 1
    fi
}

# record SYSTEM WORKLOAD RUN STATUS REASON SUMMARY CPU_TICKS NS_CPU_TICKS
record() {
    python3 - "$RESULTS" "$TCK" "$DISK_RATIO" "$@" <<'PY'
import json, sys
out, tck, disk, system, wl, run, status, reason = sys.argv[1:9]
rest = sys.argv[9:]
row = {"system": system, "workload": wl, "run": int(run), "status": status, "reason": reason,
       "store_fs_used_ratio": float(disk) if disk else None}
if status == "ok":
    summary, ticks, ns_ticks = rest[0], float(rest[1]), float(rest[2] or 0)
    s = json.load(open(summary))
    msgs = s["msgs"]
    hist = {h["name"]: h for h in s["histograms"]}
    h = hist.get("pull" if s["workload"] == "consume" else "send", {})
    cpu = ticks / float(tck)
    row.update({
        "msgs": msgs, "errors": s["errors"], "duration_secs": s["duration_secs"],
        "msgs_per_sec": s["msgs_per_sec"],
        "broker_cpu_secs": cpu,
        "broker_us_per_msg": cpu * 1e6 / msgs if msgs else None,
        "namesrv_cpu_secs": ns_ticks / float(tck),
        "bench_us_per_msg": s["bench_cpu_secs"] * 1e6 / msgs if msgs else None,
        "p50_us": h.get("p50_us"), "p99_us": h.get("p99_us"), "p999_us": h.get("p999_us"),
        "summary": summary,
    })
    if msgs == 0:
        row["status"], row["reason"] = "failed", f"no message got through ({s['errors']} errors)"
    elif s["errors"]:
        row["reason"] = f"{s['errors']} errors"
    if s["workload"] == "consume" and h.get("max_us", 0) >= 900_000:
        row["reason"] = (row["reason"] + "; " if row["reason"] else "") + \
            "a pull waited ~1 s (a queue ran dry?): msg/s understated"
with open(out, "a") as f:
    f.write(json.dumps(row) + "\n")
PY
}

run_one() {
    local sys=$1 wl=$2 run=$3
    local d=$OUT/runs/$sys-$wl-$run
    rm -rf "$d" && mkdir -p "$d"
    local flush args
    flush=$(wl_flush "$wl")
    read -r -a args <<<"$(wl_args "$wl")"
    log "$sys / $wl / run $run ($d)"

    START_ERR="" BENCH_ERR=""
    SERVER_PIDS=() SERVER_LOGS=()
    local started=0
    local store=$STORE_ROOT/$sys-$wl-$run/store
    rm -rf "$store" && mkdir -p "$(dirname "$store")"
    DISK_RATIO=$(disk_ratio "$(dirname "$store")")
    if [[ $sys == rocketcore ]]; then start_rocketcore "$d" "$flush" "$store" && started=1
    else start_rocketmq_rust "$d" "$flush" "$store" && started=1
    fi
    if ((!started)); then
        log "$sys failed to start: $START_ERR"
        show_log "${SERVER_LOGS[@]}"
        record "$sys" "$wl" "$run" failed "start: $START_ERR" "" 0 0
        stop_servers
        return 0
    fi

    local ns=127.0.0.1:$NS limit=$((SECS + 120)) measured=() res=$d/res
    local ok=1
    bench "$d/warmup.log" $((WARMUP_SECS + 120)) produce --namesrv "$ns" "${args[@]}" \
        --duration "${WARMUP_SECS}s" --out "$d/warmup" || ok=0
    if ((ok)) && [[ $wl == consume ]]; then
        # Its own topic, so the consume run reads exactly the backlog.
        bench "$d/backlog.log" $((BACKLOG * 2 / BACKLOG_RATE + 120)) produce --namesrv "$ns" "${args[@]}" \
            --topic BenchBacklog --messages "$BACKLOG" --rate "$BACKLOG_RATE" --out "$d/backlog" || ok=0
        # Failed sends count against --messages: make sure the consume run
        # has what it will wait for, or it would wait until its timeout.
        local stored=0
        ((ok)) && stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["msgs"])' \
            "$d/backlog/summary.json" 2>/dev/null || echo 0)
        if ((ok && stored < CONSUME_MSGS)); then
            ok=0
            BENCH_ERR="backlog: only $stored of $BACKLOG sends succeeded$(grep -m1 '^first error' "$d/backlog.log" | sed 's/^first error/; first error/')"
        fi
        measured=(consume --namesrv "$ns" --topic BenchBacklog --size 1024 --connections 8
            --messages "$CONSUME_MSGS" --no-create --out "$res")
        # Generous (2k msg/s); a broker that stops handing out messages
        # should not hold the whole comparison up for long.
        limit=${CONSUME_TIMEOUT:-$((CONSUME_MSGS / 2000 + 60))}
    else
        measured=(produce --namesrv "$ns" "${args[@]}" --duration "${SECS}s" --out "$res")
    fi

    local t0 t1 n0=0 n1=0 nspid=${SERVER_PIDS[0]}
    if ((ok)); then
        t0=$(cpu_ticks "$BROKER_PID")
        [[ $sys == rocketmq-rust ]] && n0=$(cpu_ticks "$nspid")
        bench "$d/measured.log" "$limit" "${measured[@]}" || ok=0
        if ! t1=$(cpu_ticks "$BROKER_PID" 2>/dev/null); then
            ok=0 BENCH_ERR="broker exited during the run${BENCH_ERR:+; $BENCH_ERR}"
        fi
        [[ $sys == rocketmq-rust ]] && n1=$(cpu_ticks "$nspid" 2>/dev/null || echo "$n0")
    fi
    if ((ok)) && [[ ! -s $res/summary.json ]]; then
        ok=0 BENCH_ERR="no summary.json in $res"
    fi

    if ((ok)); then
        record "$sys" "$wl" "$run" ok "" "$res/summary.json" $((t1 - t0)) $((n1 - n0))
    else
        log "$sys / $wl failed: $BENCH_ERR"
        record "$sys" "$wl" "$run" failed "$BENCH_ERR" "" 0 0
    fi
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
        log "$sys broker is gone"
        show_log "${SERVER_LOGS[@]}"
    fi
    stop_servers
    [[ -n ${KEEP_STORES:-} ]] || rm -rf "$store"
}

# ---------------------------------------------------------------- table

report() {
    python3 - "$RESULTS" "$OUT" "$SECS" "$RUNS" "$BACKLOG" "$WORKLOADS" <<'PY'
import json, statistics, sys
path, out, secs, runs, backlog, wls = sys.argv[1:7]
rows = [json.loads(l) for l in open(path) if l.strip()]
titles = {
    "p64": "produce 1KiB, 64 conns, async",
    "p8x32": "produce 1KiB, 8 conns x inflight 32, async",
    "batch32": "produce 1KiB batch 32, 8 conns, async",
    "sync64": "produce 1KiB, 64 conns, SYNC flush",
    "consume": f"consume 1KiB, {int(backlog) // 2:,} of a {int(backlog):,} backlog",
}
A, B = "rocketcore", "rocketmq-rust"

# Raw numbers as TSV too, for spreadsheets.
cols = ["system", "workload", "run", "status", "msgs", "errors", "msgs_per_sec",
        "broker_cpu_secs", "broker_us_per_msg", "namesrv_cpu_secs", "bench_us_per_msg",
        "p50_us", "p99_us", "p999_us", "store_fs_used_ratio", "reason"]
with open(f"{out}/results.tsv", "w") as f:
    f.write("\t".join(cols) + "\n")
    for r in rows:
        f.write("\t".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + "\n")

def vals(sys_, wl, key):
    return [r[key] for r in rows if r["system"] == sys_ and r["workload"] == wl
            and r["status"] == "ok" and r.get(key) is not None]

def failure(sys_, wl):
    f = [r for r in rows if r["system"] == sys_ and r["workload"] == wl and r["status"] != "ok"]
    return f[0]["reason"] if f else None

def k(x):
    if x >= 1e6: return f"{x/1e6:.2f}M"
    if x >= 1e4: return f"{x/1e3:.0f}k"
    if x >= 1e3: return f"{x/1e3:.1f}k"
    return f"{x:.0f}"

def num(x, style):
    return k(x) if style == "k" else f"{x:.1f}" if style == "1" else f"{x:.2f}"

def cell(sys_, wl, key, style, scale=1.0):
    v = [x * scale for x in vals(sys_, wl, key)]
    if not v:
        reason = failure(sys_, wl)
        return ("failed" if reason else "—"), None
    m = statistics.median(v)
    s = num(m, style)
    if len(v) > 1:
        s += f" [{num(min(v), style)}–{num(max(v), style)}]"
    return s, m

def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b not in (None, 0) else "—"

head = ["workload", f"{A} msg/s", f"{B} msg/s", "ratio",
        f"{A} µs/msg", f"{B} µs/msg", "ratio", f"p99 ms {A}", f"p99 ms {B}"]
table, notes = [], []
for wl in wls.split():
    a_t, a_tm = cell(A, wl, "msgs_per_sec", "k")
    b_t, b_tm = cell(B, wl, "msgs_per_sec", "k")
    a_c, a_cm = cell(A, wl, "broker_us_per_msg", "1")
    b_c, b_cm = cell(B, wl, "broker_us_per_msg", "1")
    a_p, _ = cell(A, wl, "p99_us", "2", 1e-3)
    b_p, _ = cell(B, wl, "p99_us", "2", 1e-3)
    table.append([titles.get(wl, wl), a_t, b_t, ratio(a_tm, b_tm), a_c, b_c, ratio(a_cm, b_cm), a_p, b_p])
    for s_ in (A, B):
        for r in rows:
            if r["system"] == s_ and r["workload"] == wl and r.get("reason"):
                notes.append(f"{s_} / {wl} run {r['run']}: {r['status']}: {r['reason']}")

widths = [max(len(str(r[i])) for r in [head] + table) for i in range(len(head))]
def line(r):
    return "  ".join(str(c).ljust(widths[i]) if i == 0 else str(c).rjust(widths[i]) for i, c in enumerate(r))
text = [f"rocketcore vs rocketmq-rust 1.0 — {runs} run(s) of {secs}s each, median [min–max]",
        "ratio = rocketcore / rocketmq-rust (msg/s: >1 rocketcore faster; µs/msg: <1 rocketcore cheaper)",
        "µs/msg = broker process CPU (user+sys) per message; p99 = send latency (consume: pull latency)",
        "", line(head), line(["-" * w for w in widths])]
text += [line(r) for r in table]
if notes:
    text += ["", "notes:"] + ["  " + n for n in notes]
text += ["", f"raw: {out}/results.jsonl, {out}/results.tsv; logs: {out}/runs/"]
open(f"{out}/table.txt", "w").write("\n".join(text) + "\n")
print("\n".join(text))
PY
}

# ---------------------------------------------------------------- main

for wl in $WORKLOADS; do wl_args "$wl" >/dev/null; done
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"
ensure_rocketcore
for s in $SYSTEMS; do
    case $s in
    rocketcore) ;;
    rocketmq-rust) ensure_rocketmq_rust ;;
    *) die "unknown system $s (known: rocketcore rocketmq-rust)" ;;
    esac
done

setup_store_fs
log "results in $OUT"
for wl in $WORKLOADS; do
    for ((run = 1; run <= RUNS; run++)); do
        # Alternate which system goes first, so drift (page cache, thermal)
        # does not always favour the same one.
        order=$SYSTEMS
        ((run % 2 == 0)) && order=$(printf '%s\n' $SYSTEMS | tac | xargs)
        for s in $order; do run_one "$s" "$wl" "$run"; done
    done
done
report
