#!/usr/bin/env bash
# Head-to-head in network namespaces: the backend reached directly (routed through the balancer
# namespace, no proxy, no NAT: the limit), haproxy (tcp mode, one thread), ha-lb with a proxy
# listener and ha-lb with a NAT listener (`mode = "nat"`, nftables DNAT), in front of the same
# nginx HTTP backend (one worker, three ports). wrk from the client namespace, keep-alive and
# "Connection: close" (a new connection per request); req/s, p99 and the ratio to haproxy.
#
#   sudo benches/scripts/nat-head-to-head.sh
#
# Topology (TEST-NET addresses): client 192.0.2.2 --veth-- 192.0.2.1 balancer 198.51.100.1
# --veth-- 198.51.100.2-5 backend (one address per row). The client and the backend route
# through the balancer; every target listens on the balancer's 192.0.2.1 (the "direct" row
# goes to the backend itself).
# The NAT listener masquerades (NAT_SOURCE=preserve or vip to change it: the backend's default
# route is the balancer, so all three work).
#
# Every target runs all the time; ROUNDS rounds each measure every target in turn (in reverse
# every other round), so drift of a shared machine hits all alike; the CPU time the hypervisor
# stole is printed per row and for the whole run. Reported: medians over rounds, and the median of the
# per-round ratios to haproxy.
#
# Environment: DURATION (seconds per row, default 5), ROUNDS (default 3), THREADS (wrk
# threads, default 2: with one, the client is the bottleneck of the "close" rows, its thread
# at 98 % of a core in the direct row), CONNS (wrk
# connections, default 50), NAT_SOURCE (default masquerade), TARGETS (the rows, default
# "direct haproxy ha-lb-proxy ha-lb-nat"; ratios need haproxy and direct), CARGO_TARGET_DIR
# (where ha-lb is built, release), SKIP_BUILD=1 to use an existing build, HALB (an ha-lb
# binary to use instead of building one), DEBUG_DIR (the
# balancer's nftables ruleset and conntrack statistics are copied there at the end).
# Needs: root, iproute2, haproxy, nginx, wrk, python3. Every process it starts is killed by PID
# and every namespace it made is deleted on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
NAT_SOURCE=${NAT_SOURCE:-masquerade}
TARGET=${CARGO_TARGET_DIR:-target}

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for tool in ip haproxy nginx wrk python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
if [ -z "${HALB:-}" ]; then
    if [ "${SKIP_BUILD:-0}" != 1 ]; then
        CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ha-lb
    fi
    HALB="$TARGET/release/ha-lb"
fi
HALB_BIN=$(realpath "$HALB")

TAG=nh2h$$
NS_C=$TAG-client; NS_L=$TAG-lb; NS_B=$TAG-backend
WORK=$(mktemp -d /tmp/nat-h2h.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "$NS_C" "$NS_L" "$NS_B"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

# Foreground only: `in_ns ... &` would be a subshell, whose PID is not the daemon's (the daemons
# below are started with `ip netns exec` itself, so the PIDs kept are theirs).
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# --- namespaces: client -- balancer -- backend, routed ---
for ns in "$NS_C" "$NS_L" "$NS_B"; do
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
done
ip link add "$TAG-c" netns "$NS_C" type veth peer name "$TAG-lc" netns "$NS_L"
ip link add "$TAG-b" netns "$NS_B" type veth peer name "$TAG-lb" netns "$NS_L"
in_ns "$NS_C" ip link set "$TAG-c" name eth0
in_ns "$NS_B" ip link set "$TAG-b" name eth0
in_ns "$NS_L" ip link set "$TAG-lc" name front
in_ns "$NS_L" ip link set "$TAG-lb" name back
in_ns "$NS_C" ip addr add 192.0.2.2/24 dev eth0
in_ns "$NS_L" ip addr add 192.0.2.1/24 dev front
in_ns "$NS_L" ip addr add 198.51.100.1/24 dev back
# One backend address per row: a row's TIME_WAIT sockets on the backend (60 s) must not meet
# the next row's connections. haproxy's and ha-lb's own connections leave the balancer from
# 198.51.100.1 with its TCP timestamps; a masqueraded client connection with the same
# addresses and ports but the client's timestamps would be refused as old (PAWS) by those
# sockets and wait a SYN retransmission (1 s).
for a in 2 3 4 5; do in_ns "$NS_B" ip addr add "198.51.100.$a/24" dev eth0; done
in_ns "$NS_C" ip link set eth0 up
in_ns "$NS_B" ip link set eth0 up
in_ns "$NS_L" ip link set front up
in_ns "$NS_L" ip link set back up
in_ns "$NS_C" ip route add default via 192.0.2.1
in_ns "$NS_B" ip route add default via 198.51.100.1
in_ns "$NS_L" sysctl -qw net.ipv4.ip_forward=1
# Every row crosses the balancer's connection tracking (its NAT table turns it on in that
# namespace): in close mode each request leaves an entry in TIME_WAIT, 120 s by default, and
# the rows would fill the table (262144 entries here) for the rows after them. 10 s, as busy
# NAT gateways set it, keeps the table small for every row alike.
in_ns "$NS_L" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=10 2>/dev/null || true
for ns in "$NS_C" "$NS_L" "$NS_B"; do
    in_ns "$ns" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
    in_ns "$ns" sysctl -qw net.ipv4.tcp_tw_reuse=1
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

B1=8081; B2=8082; B3=8083; HA=18080; PX=18081; NAT=18082

# --- backend: nginx, one worker, three ports ---
mkdir -p "$WORK/backend"
cat > "$WORK/backend/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/backend/nginx.pid;
error_log $WORK/backend/error.log warn;
events { worker_connections 8000; }
http {
    access_log off;
    keepalive_requests 10000000;
    server {
        listen $B1 backlog=4096;
        listen $B2 backlog=4096;
        listen $B3 backlog=4096;
        location / { return 200 "hello from the backend\n"; }
    }
}
CONF
ip netns exec "$NS_B" nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" & PIDS+=($!)

# --- haproxy, tcp mode, one thread ---
cat > "$WORK/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 8000
defaults
    mode tcp
    timeout connect 3s
    timeout client 1h
    timeout server 1h
frontend http
    bind 192.0.2.1:$HA
    default_backend web
backend web
    balance roundrobin
    server b1 198.51.100.3:$B1
    server b2 198.51.100.3:$B2
    server b3 198.51.100.3:$B3
CONF
ip netns exec "$NS_L" haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)

# --- ha-lb: a proxy listener and a NAT listener on the same pool of three ---
cat > "$WORK/ha-lb.toml" <<CONF
[listeners.proxy]
listen = "192.0.2.1:$PX"
pool = "web"
non_local_bind = false

[listeners.nat]
listen = "192.0.2.1:$NAT"
pool = "web-nat"
mode = "nat"
nat_source = "$NAT_SOURCE"

[pools.web]
backends = [{ address = "198.51.100.4:$B1" }, { address = "198.51.100.4:$B2" }, { address = "198.51.100.4:$B3" }]

[pools.web-nat]
backends = [{ address = "198.51.100.5:$B1" }, { address = "198.51.100.5:$B2" }, { address = "198.51.100.5:$B3" }]
CONF
"$HALB_BIN" check-config "$WORK/ha-lb.toml" >/dev/null
ip netns exec "$NS_L" "$HALB_BIN" run --no-supervisor --config "$WORK/ha-lb.toml" 2>"$WORK/ha-lb.log" & PIDS+=($!)

# Waits until a request through `port` on `host` (from the client) is answered.
wait_http() { # host port
    for _ in $(seq 1 100); do
        if in_ns "$NS_C" python3 - "$1" "$2" <<'PY' 2>/dev/null; then return 0; fi
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5)
s.sendall(b"GET / HTTP/1.0\r\n\r\n")
sys.exit(0 if b"200" in s.recv(100) else 1)
PY
        sleep 0.1
    done
    echo "no answer on $1:$2" >&2; cat "$WORK/ha-lb.log" >&2; exit 1
}
wait_http 198.51.100.2 "$B1"
wait_http 192.0.2.1 "$HA"
wait_http 192.0.2.1 "$PX"
wait_http 192.0.2.1 "$NAT"

declare -A URL
URL[direct]="http://198.51.100.2:$B1/"
URL[haproxy]="http://192.0.2.1:$HA/"
URL[ha-lb-proxy]="http://192.0.2.1:$PX/"
URL[ha-lb-nat]="http://192.0.2.1:$NAT/"
read -r -a NAMES <<< "${TARGETS:-direct haproxy ha-lb-proxy ha-lb-nat}"

# wrk from the client namespace -> "req/s p99_ms"
run_wrk() { # url extra-args...
    local url=$1; shift
    in_ns "$NS_C" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$@" "$url" > "$WORK/wrk.out" 2>&1 || true
    if [ -n "${DEBUG_DIR:-}" ]; then
        { echo "=== $url $*"; cat "$WORK/wrk.out"; } >> "$DEBUG_DIR/wrk-all.txt"
    fi
    python3 benches/scripts/wrk-summary.py "$WORK/wrk.out"
}

RESULTS="$WORK/results.txt"
: > "$RESULTS"
echo "measuring: $ROUNDS rounds, $DURATION s per row, $CONNS wrk connections on $THREADS threads, NAT source $NAT_SOURCE" >&2
# CPU time the hypervisor gave to others while this VM wanted it ("steal", /proc/stat), and
# all CPU time: a row measured while the host was busy is slower for a reason of its own.
cpu_ticks() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9; exit }' /proc/stat; }
STEAL0=$(cpu_ticks)
for round in $(seq 1 "$ROUNDS"); do
    # Every other round the rows go in reverse, so a drift of the machine hits all alike.
    order=("${NAMES[@]}")
    if [ $((round % 2)) -eq 0 ]; then
        order=(); for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do order+=("${NAMES[$i]}"); done
    fi
    for n in "${order[@]}"; do
        read -r s0 t0 <<< "$(cpu_ticks)"
        ka=$(run_wrk "${URL[$n]}")
        cl=$(run_wrk "${URL[$n]}" -H "Connection: close")
        read -r s1 t1 <<< "$(cpu_ticks)"
        steal=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", (t > 0 ? 100 * s / t : 0) }')
        read -r ka_r ka_p _ <<< "$ka"; read -r cl_r cl_p _ <<< "$cl"
        echo "$round $n keepalive $ka_r $ka_p" >> "$RESULTS"
        echo "$round $n close $cl_r $cl_p" >> "$RESULTS"
        echo "  round $round $n: keep-alive $ka | close $cl | steal ${steal} %" >&2
    done
done
read -r s0 t0 <<< "$STEAL0"; read -r s1 t1 <<< "$(cpu_ticks)"
STEAL=$(awk -v s=$((s1 - s0)) -v t=$((t1 - t0)) 'BEGIN { printf "%.0f", (t > 0 ? 100 * s / t : 0) }')

if [ -n "${DEBUG_DIR:-}" ]; then
    mkdir -p "$DEBUG_DIR"
    in_ns "$NS_L" nft list ruleset > "$DEBUG_DIR/ruleset.nft" 2>&1 || true
    in_ns "$NS_L" conntrack -S > "$DEBUG_DIR/conntrack-stats.txt" 2>&1 || true
    in_ns "$NS_L" conntrack -C > "$DEBUG_DIR/conntrack-count.txt" 2>&1 || true
    in_ns "$NS_B" ss -s > "$DEBUG_DIR/backend-ss.txt" 2>&1 || true
    in_ns "$NS_C" nstat -az > "$DEBUG_DIR/client-nstat.txt" 2>&1 || true
    in_ns "$NS_B" nstat -az > "$DEBUG_DIR/backend-nstat.txt" 2>&1 || true
    cp "$WORK/ha-lb.log" "$DEBUG_DIR/" 2>/dev/null || true
fi

python3 - "$RESULTS" "$DURATION" "$STEAL" "${NAMES[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
duration = float(sys.argv[2])
steal = sys.argv[3]
names = sys.argv[4:]
val, p99 = {}, {}
for r in rows:
    key = (int(r[0]), r[1], r[2])
    val[key] = float(r[3])
    p99[key] = float(r[4])
rounds = sorted({k[0] for k in val})
def med(name, test, d=val):
    xs = [d[(r, name, test)] for r in rounds if (r, name, test) in d]
    return statistics.median(xs) if xs else float("nan")
def ratio(name, test, to):
    xs = [val[(r, name, test)] / val[(r, to, test)] for r in rounds
          if val.get((r, to, test))]
    return statistics.median(xs) if xs else float("nan")
def f(x, fmt):
    return "-" if x != x else format(x, fmt)
print()
print("| target | keep-alive req/s | p99 ms | vs haproxy | vs direct | close req/s | p99 ms | vs haproxy | vs direct |")
print("|---|---|---|---|---|---|---|---|---|")
for n in names:
    cells = [n]
    for t in ("keepalive", "close"):
        cells += [f(med(n, t), ".0f"), f(med(n, t, p99), ".2f"),
                  f(ratio(n, t, "haproxy"), ".2f"), f(ratio(n, t, "direct"), ".2f")]
    print("| " + " | ".join(cells) + " |")
print()
print(f"medians over {len(rounds)} rounds of {duration:.0f} s per row (the rows' order reversed")
print("every other round); ratios are medians of per-round throughput ratios; CPU time stolen")
print(f"by the hypervisor while measuring: {steal} %")
print()
print("per-round ratios to haproxy (keep-alive / close), in round order:")
for n in names:
    if n == "haproxy":
        continue
    parts = []
    for t in ("keepalive", "close"):
        xs = [val[(r, n, t)] / val[(r, "haproxy", t)] for r in rounds
              if val.get((r, "haproxy", t)) and (r, n, t) in val]
        parts.append(" ".join(f"{x:.2f}" for x in xs))
    print(f"  {n}: " + " / ".join(parts))
PY
