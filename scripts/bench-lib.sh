# scripts/bench-lib.sh: what bench.sh and bench-cluster.sh share, sourced by
# both (not run on its own): the fan-out workloads, so both scripts measure
# the same F1 and F2; a free port; waiting for a listener; the run's
# environment for env.txt.

F1="fanout --clients 100 --senders 10 --messages 2000 --window 32 --size 64"
F2="fanout --clients 1000 --senders 5 --messages 200 --window 16 --size 64"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until something listens on port $1, without connecting: a probe
# connection would leave the tutorial server a client that spins forever.
wait_port() {
    local hex
    hex=$(printf ':%04X 00000000:0000 0A' "$1")
    for _ in $(seq 200); do
        if grep -q "$hex" /proc/net/tcp; then return 0; fi
        sleep 0.05
    done
    echo "$(basename "$0"): nothing listens on port $1" >&2
    return 1
}

# The date, commit, machine and Redis version, one `key: value` a line.
env_header() {
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "machine: $(nproc) CPUs, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "redis: $(redis-server --version | cut -d' ' -f3)"
}
