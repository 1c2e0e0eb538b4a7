#!/usr/bin/env bash
# Head-to-head on loopback: lb-core (examples/tcp-proxy) vs haproxy (tcp mode) vs nginx
# (stream), each with one worker, in front of the same three nginx HTTP backends and one iperf3
# server. Measures wrk keep-alive, wrk "Connection: close" (a new connection per request) and
# iperf3 bulk through each, and prints req/s, p99 latency, Gbit/s and the ratio to haproxy.
#
#   benches/scripts/lb-head-to-head.sh
#
# Environment: DURATION (seconds per row, default 8), CONNS (wrk connections, default 50),
# LB_MODES (lb-core transfer modes to run, default "auto splice userspace"),
# CARGO_TARGET_DIR (where tcp-proxy is built), SKIP_BUILD=1 to use an existing build.
# Needs: haproxy, nginx + libnginx-mod-stream, wrk, iperf3, python3. Every process it starts is
# killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-8}
CONNS=${CONNS:-50}
LB_MODES=${LB_MODES:-"auto splice userspace"}
TARGET=${CARGO_TARGET_DIR:-target}
BASE=${BASE_PORT:-18000}

for tool in haproxy nginx wrk iperf3 python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$STREAM_MOD" ] || { echo "missing nginx stream module ($STREAM_MOD)" >&2; exit 1; }

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p lb-core --example tcp-proxy
fi
PROXY_BIN="$TARGET/release/examples/tcp-proxy"

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
WORK=$(mktemp -d /tmp/lb-h2h.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

B1=$((BASE + 81)); B2=$((BASE + 82)); B3=$((BASE + 83)); IPERF=$((BASE + 91))
LB_HTTP=$((BASE + 100)); LB_IPERF=$((BASE + 101))
HA_HTTP=$((BASE + 200)); HA_IPERF=$((BASE + 201))
NG_HTTP=$((BASE + 300)); NG_IPERF=$((BASE + 301))

# --- backends: one nginx, one worker, three ports; one iperf3 server ---
mkdir -p "$WORK/backend" "$WORK/nginx-lb"
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
        listen 127.0.0.1:$B1 backlog=4096;
        listen 127.0.0.1:$B2 backlog=4096;
        listen 127.0.0.1:$B3 backlog=4096;
        location / { return 200 "hello from the backend\n"; }
    }
}
CONF
nginx -p "$WORK/backend" -c "$WORK/backend/nginx.conf" & PIDS+=($!)
iperf3 -s -B 127.0.0.1 -p "$IPERF" >/dev/null 2>&1 & PIDS+=($!)

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
    bind 127.0.0.1:$HA_HTTP
    default_backend web
backend web
    balance roundrobin
    server b1 127.0.0.1:$B1
    server b2 127.0.0.1:$B2
    server b3 127.0.0.1:$B3
frontend iperf
    bind 127.0.0.1:$HA_IPERF
    default_backend iperf
backend iperf
    server i1 127.0.0.1:$IPERF
CONF
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)

# --- nginx stream, one worker ---
cat > "$WORK/nginx-lb/nginx.conf" <<CONF
load_module $STREAM_MOD;
worker_processes 1;
daemon off;
pid $WORK/nginx-lb/nginx.pid;
error_log $WORK/nginx-lb/error.log warn;
events { worker_connections 8000; }
stream {
    upstream web { server 127.0.0.1:$B1; server 127.0.0.1:$B2; server 127.0.0.1:$B3; }
    upstream iperf { server 127.0.0.1:$IPERF; }
    server { listen 127.0.0.1:$NG_HTTP backlog=4096; proxy_pass web; }
    server { listen 127.0.0.1:$NG_IPERF; proxy_pass iperf; }
}
CONF
nginx -p "$WORK/nginx-lb" -c "$WORK/nginx-lb/nginx.conf" & PIDS+=($!)

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "port $1 did not open" >&2; exit 1
}
for p in $B1 $B2 $B3 $IPERF $HA_HTTP $HA_IPERF $NG_HTTP $NG_IPERF; do wait_port "$p"; done

LB_PID=""
start_lb() { # mode
    "$PROXY_BIN" --threads 1 --mode "$1" --listen "127.0.0.1:$LB_HTTP" \
        --backend "127.0.0.1:$B1" --backend "127.0.0.1:$B2" --backend "127.0.0.1:$B3" \
        2>"$WORK/lb-http.log" & LB_PID="$!"; PIDS+=("$LB_PID")
    "$PROXY_BIN" --threads 1 --mode "$1" --listen "127.0.0.1:$LB_IPERF" \
        --backend "127.0.0.1:$IPERF" 2>"$WORK/lb-iperf.log" & LB_PID2="$!"; PIDS+=("$LB_PID2")
    wait_port "$LB_HTTP"; wait_port "$LB_IPERF"
}
stop_lb() {
    kill "$LB_PID" "$LB_PID2" 2>/dev/null || true
    wait "$LB_PID" 2>/dev/null || true; wait "$LB_PID2" 2>/dev/null || true
}

# wrk -> "req/s p99_ms"
run_wrk() { # port extra-args...
    local port=$1; shift
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port/" > "$WORK/wrk.out" 2>&1 || true
    python3 - "$WORK/wrk.out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s*([\d.]+)", t)
p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
errs = re.search(r"Socket errors: (.*)", t)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
ms = {"us": 0.001, "ms": 1.0, "s": 1000.0}
r = float(rps.group(1)) if rps else 0.0
p = float(p99.group(1)) * ms[p99.group(2)] if p99 else float("nan")
note = ""
if errs: note += " errors[" + errs.group(1).strip() + "]"
if non2xx: note += " non2xx=" + non2xx.group(1)
print(f"{r:.0f} {p:.2f}{note}")
PY
}

# iperf3 -> Gbit/s
run_iperf() { # port
    iperf3 -c 127.0.0.1 -p "$1" -t "$DURATION" -J > "$WORK/iperf.json" 2>&1 || true
    python3 - "$WORK/iperf.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(f"{j['end']['sum_received']['bits_per_second'] / 1e9:.2f}")
except Exception:
    print("0")
PY
}

declare -A KA CL BULK
measure() { # name http_port iperf_port
    KA[$1]=$(run_wrk "$2")
    CL[$1]=$(run_wrk "$2" -H "Connection: close")
    BULK[$1]=$(run_iperf "$3")
    echo "  $1: keep-alive ${KA[$1]} | close ${CL[$1]} | iperf3 ${BULK[$1]} Gbit/s" >&2
}

echo "measuring ($DURATION s per row, $CONNS wrk connections, one worker each)..." >&2
NAMES=(direct haproxy nginx)
measure direct "$B1" "$IPERF"
measure haproxy "$HA_HTTP" "$HA_IPERF"
measure nginx "$NG_HTTP" "$NG_IPERF"
for mode in $LB_MODES; do
    start_lb "$mode"
    measure "lb-core($mode)" "$LB_HTTP" "$LB_IPERF"
    stop_lb
    NAMES+=("lb-core($mode)")
done
# haproxy again at the end: shows how much the machine drifted during the run.
measure "haproxy(again)" "$HA_HTTP" "$HA_IPERF"
NAMES+=("haproxy(again)")

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}' if b else '-')" "$1" "$2"; }
first() { echo "$1" | cut -d' ' -f1; }
second() { echo "$1" | cut -d' ' -f2; }

echo
echo "| proxy | keep-alive req/s | p99 ms | ratio | close req/s | p99 ms | ratio | iperf3 Gbit/s | ratio |"
echo "|---|---|---|---|---|---|---|---|---|"
hk=$(first "${KA[haproxy]}"); hc=$(first "${CL[haproxy]}"); hb=${BULK[haproxy]}
for n in "${NAMES[@]}"; do
    k=$(first "${KA[$n]}"); c=$(first "${CL[$n]}"); b=${BULK[$n]}
    echo "| $n | $k | $(second "${KA[$n]}") | $(ratio "$k" "$hk") | $c | $(second "${CL[$n]}") | $(ratio "$c" "$hc") | $b | $(ratio "$b" "$hb") |"
done
