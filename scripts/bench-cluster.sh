#!/usr/bin/env bash
# scripts/bench-cluster.sh: the cluster's cost, for BENCHMARKS.md. Runs the
# fan-out workloads against one chatroom process without Redis ("single"),
# one node through Redis ("1-node") and two nodes through the same Redis
# ("2-nodes", clients spread over both with the load tester's --addr a,b),
# REPS times each, interleaved. Every server-side process (nodes and Redis)
# is pinned to CPU 0 and the load tester to CPU 1, so the figures are costs
# (deliveries per server CPU-second, Redis CPU and bytes per chat line), not
# a throughput race on a 2-core machine. CPU comes from /proc/PID/stat, Redis
# bytes from INFO stats, before and after each run.
#
# Usage: scripts/bench-cluster.sh     (about 2 minutes)
# Env:   REPS (3), OUT (bench-results/cluster)
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
OUT=${OUT:-bench-results/cluster}
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

for tool in redis-server redis-cli taskset chrt; do
    command -v "$tool" >/dev/null || { echo "bench-cluster.sh: needs $tool (bash scripts/test-deps.sh)" >&2; exit 1; }
done
echo "== building (release)" >&2
cargo build --release --quiet --bin chatroom --example loadtest
CHATROOM=target/release/chatroom
LOADTEST=target/release/examples/loadtest
FIFO="chrt -f 50"

PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap stop_all EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
    local hex
    hex=$(printf ':%04X 00000000:0000 0A' "$1")
    for _ in $(seq 200); do
        grep -q "$hex" /proc/net/tcp && return 0
        sleep 0.05
    done
    echo "bench-cluster.sh: nothing listens on port $1" >&2
    return 1
}
# CPU ticks (user + system) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_stat() { redis-cli -p "$1" INFO stats | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

HZ=$(getconf CLK_TCK)
F1="fanout --clients 100 --senders 10 --messages 2000 --window 32 --size 64"
F2="fanout --clients 1000 --senders 5 --messages 200 --window 16 --size 64"

# run WORKLOAD SETUP REP LOADTEST-ARGS...
run() {
    local w=$1 setup=$2 rep=$3
    shift 3
    local rport="" addrs=() server_pids=()
    if [ "$setup" != single ]; then
        rport=$(free_port)
        taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
            --logfile "$OUT/redis.log" &
        PIDS+=($!)
        server_pids+=($!)
        wait_port "$rport"
    fi
    local nodes=1
    [ "$setup" = 2-nodes ] && nodes=2
    for i in $(seq "$nodes"); do
        local port redis=()
        port=$(free_port)
        [ -n "$rport" ] && redis=(--redis "redis://127.0.0.1:$rport" --node-name "bench-$i")
        taskset -c 0 "$CHATROOM" --port "$port" --http-port off --log-level warn --flood-rate 0 \
            "${redis[@]}" 2>>"$OUT/chatroom.log" &
        PIDS+=($!)
        server_pids+=($!)
        wait_port "$port"
        addrs+=("127.0.0.1:$port")
    done
    if [ -n "$rport" ]; then
        # Ready once the node has loaded its scripts and subscribed.
        for i in $(seq "$nodes"); do
            for _ in $(seq 100); do
                [ "$(redis-cli -p "$rport" PUBSUB NUMSUB "cr:n:bench-$i" | tail -1)" = 1 ] && break
                sleep 0.05
            done
        done
    fi
    local before=() rin=0 rout=0 rcalls=0
    for p in "${server_pids[@]}"; do before+=("$(ticks "$p")"); done
    if [ -n "$rport" ]; then
        rin=$(redis_stat "$rport" total_net_input_bytes)
        rout=$(redis_stat "$rport" total_net_output_bytes)
    fi
    local list json
    list=$(IFS=,; echo "${addrs[*]}")
    json=$($FIFO taskset -c 1 "$LOADTEST" "$@" --addr "$list" --json --quiet 2>>"$OUT/loadtest.err") || true
    [ -n "$json" ] || json=null
    local cpu=() i=0
    for p in "${server_pids[@]}"; do
        cpu+=("$(( $(ticks "$p") - before[i] ))")
        i=$((i + 1))
    done
    local rin2=0 rout2=0
    if [ -n "$rport" ]; then
        rin2=$(redis_stat "$rport" total_net_input_bytes)
        rout2=$(redis_stat "$rport" total_net_output_bytes)
    fi
    local redis_ticks=0 node_ticks=0
    if [ -n "$rport" ]; then
        redis_ticks=${cpu[0]}
        for t in "${cpu[@]:1}"; do node_ticks=$((node_ticks + t)); done
    else
        node_ticks=${cpu[0]}
    fi
    echo "{\"workload\":\"$w\",\"setup\":\"$setup\",\"rep\":$rep,\"hz\":$HZ,\"node_ticks\":$node_ticks,\"redis_ticks\":$redis_ticks,\"redis_in\":$((rin2 - rin)),\"redis_out\":$((rout2 - rout)),\"result\":$json}" >>"$RESULTS"
    stop_all
    echo "   $w $setup rep $rep done" >&2
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "redis: $(redis-server --version | cut -d' ' -f3)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

for rep in $(seq "$REPS"); do
    for setup in single 1-node 2-nodes; do
        # shellcheck disable=SC2086 # the workload strings are word lists
        run F1 "$setup" "$rep" $F1
        # shellcheck disable=SC2086
        run F2 "$setup" "$rep" $F2
    done
done

python3 - "$RESULTS" "$OUT/env.txt" <<'EOF'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
print(open(sys.argv[2]).read().rstrip())
print()
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
print(f"{'workload':8} {'setup':8} {'deliveries/s':>13} {'deliv/server CPU-s':>19} {'node CPU s':>10} {'redis CPU s':>11} "
      f"{'redis us/line':>13} {'redis B in/line':>15} {'redis B out/line':>16} {'lost':>5} {'errors':>6}")
for w in ["F1", "F2"]:
    for setup in ["single", "1-node", "2-nodes"]:
        rs = [r for r in rows if r["workload"] == w and r["setup"] == setup and r["result"]]
        if not rs:
            continue
        def per(r):
            res = r["result"]
            node_s = r["node_ticks"] / r["hz"]
            redis_s = r["redis_ticks"] / r["hz"]
            cpu = node_s + redis_s
            sent = res["sent"] or 1
            return dict(
                dps=res["deliveries_per_s"],
                dpc=res["received"] / cpu if cpu else None,
                node=node_s, redis=redis_s,
                rus=redis_s * 1e6 / sent,
                rin=r["redis_in"] / sent, rout=r["redis_out"] / sent,
                lost=res["lost"], errors=res["errors"])
        ps = [per(r) for r in rs]
        m = {k: med([p[k] for p in ps]) for k in ps[0]}
        print(f"{w:8} {setup:8} {m['dps']:>13,.0f} {m['dpc'] or 0:>19,.0f} {m['node']:>10.2f} {m['redis']:>11.2f} "
              f"{m['rus']:>13.1f} {m['rin']:>15.0f} {m['rout']:>16.0f} {max(p['lost'] for p in ps):>5} {max(p['errors'] for p in ps):>6}")
    print()
print("(medians of", max(r["rep"] for r in rows), "runs; lost and errors are the worst run; all server processes on CPU 0, the tool on CPU 1)")
EOF
