#!/usr/bin/env bash
# scripts/bench-cluster.sh: the cluster's cost, for BENCHMARKS.md. Runs the
# fan-out workloads against one chatroom process without Redis ("single"),
# one node through Redis ("1-node") and two nodes through the same Redis
# ("2-nodes", clients spread over both with the load tester's --addr a,b),
# REPS times each, interleaved: F1 and F2 (one room), and R1/R10/R100 (1,000
# clients in 1, 10 or 100 rooms, 10,000 lines from 100 senders), for how the
# cost grows with rooms. Each node is pinned to its own core (node 1 on CPU
# 0, node 2 on CPU 1), Redis shares CPU 0 and the load tester CPU 1: this
# machine has two cores, so the figures are costs (deliveries per server
# CPU-second, node and Redis CPU and Redis bytes per chat line), not a
# throughput race. Nothing runs at real-time priority here (the tool would
# starve node 2 on its core). The load tester reports each process' CPU
# (--cpu-pids) and Redis' bytes (--redis-info: INFO) over the traffic phase
# alone, so registrations and joins are not counted.
#
# Usage: scripts/bench-cluster.sh     (about 3 minutes)
# Env:   REPS (3), OUT (bench-results/cluster),
#        WORKLOADS (F1 F2 R1 R10 R100), SETUPS (single 1-node 2-nodes)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh

REPS=${REPS:-3}
OUT=${OUT:-bench-results/cluster}
WORKLOADS=${WORKLOADS:-F1 F2 R1 R10 R100}
SETUPS=${SETUPS:-single 1-node 2-nodes}
for w in $WORKLOADS; do
    [[ $w =~ ^(F1|F2|R[1-9][0-9]*)$ ]] || { echo "bench-cluster.sh: unknown workload $w" >&2; exit 2; }
done
for s in $SETUPS; do
    [[ $s =~ ^(single|1-node|2-nodes)$ ]] || { echo "bench-cluster.sh: unknown setup $s" >&2; exit 2; }
done
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"

for tool in redis-server redis-cli taskset; do
    command -v "$tool" >/dev/null || { echo "bench-cluster.sh: needs $tool (bash scripts/test-deps.sh)" >&2; exit 1; }
done
echo "== building (release)" >&2
cargo build --release --quiet --bin chatroom --example loadtest
CHATROOM=target/release/chatroom
LOADTEST=target/release/examples/loadtest

PIDS=()
stop_all() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    PIDS=()
}
trap stop_all EXIT

rooms() { echo "fanout --clients 1000 --senders 100 --messages 100 --window 8 --size 64 --rooms $1"; }

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
        taskset -c $(( (i - 1) % $(nproc) )) "$CHATROOM" --port "$port" --http-port off --log-level warn --flood-rate 0 \
            ${redis[@]+"${redis[@]}"} 2>>"$OUT/chatroom.log" &
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
    # The tool reports what every server process and Redis spent during
    # the traffic alone (not the 1,000 registrations before it).
    local list pids json redis_info=()
    list=$(IFS=,; echo "${addrs[*]}")
    pids=$(IFS=,; echo "${server_pids[*]}")
    [ -n "$rport" ] && redis_info=(--redis-info "127.0.0.1:$rport")
    json=$(taskset -c 1 "$LOADTEST" "$@" --addr "$list" --cpu-pids "$pids" ${redis_info[@]+"${redis_info[@]}"} \
        --json --quiet 2>>"$OUT/loadtest.err") || true
    [ -n "$json" ] || json=null
    local redis_pid=null
    [ -n "$rport" ] && redis_pid=${server_pids[0]}
    echo "{\"workload\":\"$w\",\"setup\":\"$setup\",\"rep\":$rep,\"redis_pid\":$redis_pid,\"result\":$json}" >>"$RESULTS"
    stop_all
    echo "   $w $setup rep $rep done" >&2
}

{
    env_header
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/env.txt"

for rep in $(seq "$REPS"); do
    for setup in $SETUPS; do
        for w in $WORKLOADS; do
            case $w in
                F1) args=$F1 ;;
                F2) args=$F2 ;;
                R*) args=$(rooms "${w#R}") ;;
                *) echo "bench-cluster.sh: unknown workload $w" >&2; exit 2 ;;
            esac
            # shellcheck disable=SC2086 # the workload strings are word lists
            run "$w" "$setup" "$rep" $args
        done
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
      f"{'node us/line':>12} {'redis us/line':>13} {'redis B in/line':>15} {'redis B out/line':>16} {'lost':>5} {'order':>5} {'errors':>6}")
for w in sorted({r["workload"] for r in rows}, key=lambda w: (w[0], int(w[1:]))):
    for setup in ["single", "1-node", "2-nodes"]:
        rs = [r for r in rows if r["workload"] == w and r["setup"] == setup and r["result"]]
        if not rs:
            continue
        def per(r):
            res = r["result"]
            by_pid = res.get("cpu_s_by_pid", {})
            redis_pid = str(r["redis_pid"])
            redis_s = by_pid.get(redis_pid, 0.0)
            node_s = sum(v for k, v in by_pid.items() if k != redis_pid)
            cpu = node_s + redis_s
            sent = res["sent"] or 1
            rd = res.get("redis", {})
            return dict(
                dps=res["deliveries_per_s"],
                dpc=res["received"] / cpu if cpu else None,
                node=node_s, redis=redis_s,
                nus=node_s * 1e6 / sent,
                rus=redis_s * 1e6 / sent,
                rin=rd.get("net_in_bytes", 0) / sent, rout=rd.get("net_out_bytes", 0) / sent,
                lost=res["lost"], order=res["order_mismatches"], errors=res["errors"])
        ps = [per(r) for r in rs]
        m = {k: med([p[k] for p in ps]) for k in ps[0]}
        print(f"{w:8} {setup:8} {m['dps']:>13,.0f} {m['dpc'] or 0:>19,.0f} {m['node']:>10.2f} {m['redis']:>11.2f} "
              f"{m['nus']:>12.1f} {m['rus']:>13.1f} {m['rin']:>15.0f} {m['rout']:>16.0f} {max(p['lost'] for p in ps):>5} "
              f"{max(p['order'] for p in ps):>5} {max(p['errors'] for p in ps):>6}")
    print()
print("(medians of", max(r["rep"] for r in rows), "runs; lost, order (receivers that saw another order than the rest of their room)")
print(" and errors are the worst run; node 1 and Redis on CPU 0, node 2 and the tool on CPU 1; R1/R10/R100: 1,000 clients")
print(" in 1/10/100 rooms, 100 senders x 100 lines; node us/line is all nodes' CPU per line sent)")
EOF
