#!/usr/bin/env bash
# Head-to-head on loopback: lb-core (examples/tcp-proxy) vs haproxy (tcp mode) vs nginx
# (stream), each with one worker, in front of the same three nginx HTTP backends and one iperf3
# server. Measures wrk keep-alive, wrk "Connection: close" (a new connection per request) and
# iperf3 bulk through each, and prints req/s, p99 latency, Gbit/s and the ratio to haproxy.
#
#   benches/scripts/lb-head-to-head.sh
#
# Every target runs all the time; ROUNDS rounds each measure every target in turn, so drift of
# a shared machine hits all alike. Reported: medians over rounds, and the median of the
# per-round ratios to haproxy.
#
# Environment: DURATION (seconds per row, default 4), ROUNDS (default 3), CONNS (wrk
# connections, default 50),
# LB_MODES (lb-core transfer modes to run, default "auto splice userspace"),
# CARGO_TARGET_DIR (where tcp-proxy is built), SKIP_BUILD=1 to use an existing build,
# SYSCALLS=1 to count system calls per keep-alive request of each proxy afterwards (strace),
# HALB_LOG=1 to add two `ha-lb run` nodes (release build), one with the connection log off and
# one with `log = true` on its listeners (its log to a file), for the cost of the log.
# Needs: haproxy, nginx + libnginx-mod-stream, wrk, iperf3, python3. Every process it starts is
# killed by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-4}
ROUNDS=${ROUNDS:-3}
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
if [ "${HALB_LOG:-0}" = 1 ] && [ "${SKIP_BUILD:-0}" != 1 ]; then
    CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ha-lb
fi
HALB_BIN="$TARGET/release/ha-lb"

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
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 & PIDS+=($!); HA_PID=$!

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
nginx -p "$WORK/nginx-lb" -c "$WORK/nginx-lb/nginx.conf" & PIDS+=($!); NG_PID=$!

wait_port() {
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "port $1 did not open" >&2; exit 1
}
for p in $B1 $B2 $B3 $IPERF $HA_HTTP $HA_IPERF $NG_HTTP $NG_IPERF; do wait_port "$p"; done

# lb-core: one tcp-proxy per transfer mode, one worker thread each, on its own ports.
# CPU_HTTP/CPU_IPERF: the processes whose CPU time is charged to the proxy (nginx: its worker).
declare -A HTTP_PORT IPERF_PORT CPU_HTTP CPU_IPERF
NG_WORKER=$(cat "/proc/$NG_PID/task/$NG_PID/children" 2>/dev/null || true)
HTTP_PORT[direct]=$B1; IPERF_PORT[direct]=$IPERF; CPU_HTTP[direct]=""; CPU_IPERF[direct]=""
HTTP_PORT[haproxy]=$HA_HTTP; IPERF_PORT[haproxy]=$HA_IPERF
CPU_HTTP[haproxy]=$HA_PID; CPU_IPERF[haproxy]=$HA_PID
HTTP_PORT[nginx]=$NG_HTTP; IPERF_PORT[nginx]=$NG_IPERF
CPU_HTTP[nginx]="$NG_PID $NG_WORKER"; CPU_IPERF[nginx]="$NG_PID $NG_WORKER"
NAMES=(direct haproxy nginx)
i=0
for mode in $LB_MODES; do
    hp=$((LB_HTTP + 10 * i)); ip=$((LB_IPERF + 10 * i)); i=$((i + 1))
    "$PROXY_BIN" --threads 1 --mode "$mode" --listen "127.0.0.1:$hp" \
        --backend "127.0.0.1:$B1" --backend "127.0.0.1:$B2" --backend "127.0.0.1:$B3" \
        2>"$WORK/lb-$mode-http.log" & PIDS+=($!); CPU_HTTP[lb-core-$mode]=$!
    "$PROXY_BIN" --threads 1 --mode "$mode" --listen "127.0.0.1:$ip" \
        --backend "127.0.0.1:$IPERF" 2>"$WORK/lb-$mode-iperf.log" & PIDS+=($!)
    CPU_IPERF[lb-core-$mode]=$!
    wait_port "$hp"; wait_port "$ip"
    HTTP_PORT[lb-core-$mode]=$hp; IPERF_PORT[lb-core-$mode]=$ip
    NAMES+=("lb-core-$mode")
done

# ha-lb itself (2 worker threads, as `ha-lb run` has), without and with the connection log.
if [ "${HALB_LOG:-0}" = 1 ]; then
    j=0
    for log in false true; do
        hp=$((BASE + 400 + 10 * j)); ip=$((BASE + 401 + 10 * j)); j=$((j + 1))
        name=ha-lb; [ "$log" = true ] && name=ha-lb+log
        cat > "$WORK/$name.toml" <<CONF
[listeners.http]
listen = "127.0.0.1:$hp"
pool = "http"
non_local_bind = false
log = $log

[listeners.iperf]
listen = "127.0.0.1:$ip"
pool = "iperf"
non_local_bind = false
log = $log

[pools.http]
backends = [{ address = "127.0.0.1:$B1" }, { address = "127.0.0.1:$B2" }, { address = "127.0.0.1:$B3" }]

[pools.iperf]
backends = [{ address = "127.0.0.1:$IPERF" }]
CONF
        "$HALB_BIN" run --no-supervisor --config "$WORK/$name.toml" 2>"$WORK/$name.log" &
        PIDS+=($!); CPU_HTTP[$name]=$!; CPU_IPERF[$name]=$!
        wait_port "$hp"; wait_port "$ip"
        HTTP_PORT[$name]=$hp; IPERF_PORT[$name]=$ip
        NAMES+=("$name")
    done
fi

# CPU ticks (user + system) used so far by the given PIDs.
cpu_ticks() {
    local t=0 pid
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$t"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

# wrk -> "req/s p99_ms"
run_wrk() { # port extra-args...
    local port=$1; shift
    wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port/" > "$WORK/wrk.out" 2>&1 || true
    python3 benches/scripts/wrk-summary.py "$WORK/wrk.out"
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

RESULTS="$WORK/results.txt"
: > "$RESULTS"
echo "measuring: $ROUNDS rounds, $DURATION s per row, $CONNS wrk connections, one worker each" >&2
for round in $(seq 1 "$ROUNDS"); do
    for n in "${NAMES[@]}"; do
        # Each row also records the proxy's CPU time over it, in microseconds.
        c0=$(cpu_ticks ${CPU_HTTP[$n]})
        ka=$(run_wrk "${HTTP_PORT[$n]}")
        c1=$(cpu_ticks ${CPU_HTTP[$n]})
        cl=$(run_wrk "${HTTP_PORT[$n]}" -H "Connection: close")
        c2=$(cpu_ticks ${CPU_HTTP[$n]}); c3=$(cpu_ticks ${CPU_IPERF[$n]})
        bulk=$(run_iperf "${IPERF_PORT[$n]}")
        c4=$(cpu_ticks ${CPU_IPERF[$n]})
        ka_cpu=$(( (c1 - c0) * TICK_US )); cl_cpu=$(( (c2 - c1) * TICK_US )); bulk_cpu=$(( (c4 - c3) * TICK_US ))
        read -r ka_r ka_p _ <<< "$ka"; read -r cl_r cl_p _ <<< "$cl"
        echo "$round $n keepalive $ka_r $ka_p $ka_cpu" >> "$RESULTS"
        echo "$round $n close $cl_r $cl_p $cl_cpu" >> "$RESULTS"
        echo "$round $n iperf3 $bulk nan $bulk_cpu" >> "$RESULTS"
        echo "  round $round $n: keep-alive $ka | close $cl | iperf3 $bulk Gbit/s" >&2
    done
done

python3 - "$RESULTS" "$DURATION" "${NAMES[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
duration = float(sys.argv[2])
names = sys.argv[3:]
val, p99, cpu = {}, {}, {}
for r in rows:
    rnd, name, test = int(r[0]), r[1], r[2]
    key = (rnd, name, test)
    val[key] = float(r[3])
    p99[key] = float(r[4])
    us = float(r[5])
    if name != "direct" and val[key] > 0:
        # CPU per request (µs), or per GB moved for iperf3 (ms).
        work = val[key] * duration if test != "iperf3" else val[key] * duration / 8
        cpu[key] = us / work if test != "iperf3" else us / 1000 / work
rounds = sorted({k[0] for k in val})
def med(name, test, d=val):
    xs = [d[(r, name, test)] for r in rounds if (r, name, test) in d]
    return statistics.median(xs) if xs else float("nan")
def ratio(name, test):
    xs = [val[(r, name, test)] / val[(r, "haproxy", test)] for r in rounds
          if val.get((r, "haproxy", test))]
    return statistics.median(xs) if xs else float("nan")
def f(x, fmt):
    return "-" if x != x else format(x, fmt)
print()
print("| proxy | keep-alive req/s | p99 ms | CPU µs/req | vs haproxy | close req/s | p99 ms | CPU µs/req | vs haproxy | iperf3 Gbit/s | CPU ms/GB | vs haproxy |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for n in names:
    cells = [n]
    for t in ("keepalive", "close"):
        cells += [f(med(n, t), ".0f"), f(med(n, t, p99), ".2f"), f(med(n, t, cpu), ".1f"), f(ratio(n, t), ".2f")]
    cells += [f(med(n, "iperf3"), ".2f"), f(med(n, "iperf3", cpu), ".0f"), f(ratio(n, "iperf3"), ".2f")]
    print("| " + " | ".join(cells) + " |")
print()
print(f"medians over {len(rounds)} rounds of {duration:.0f} s per row; 'vs haproxy' is the median of")
print("per-round throughput ratios; CPU is the proxy's user + system time over the row")
print()
print("per-round ratios to haproxy (keep-alive / close / iperf3), in round order:")
for n in names:
    if n == "haproxy":
        continue
    parts = []
    for t in ("keepalive", "close", "iperf3"):
        xs = [val[(r, n, t)] / val[(r, "haproxy", t)] for r in rounds
              if val.get((r, "haproxy", t)) and (r, n, t) in val]
        parts.append(" ".join(f"{x:.2f}" for x in xs))
    print(f"  {n}: " + " / ".join(parts))
PY

# SYSCALLS=1: system calls per keep-alive request of each proxy, from strace -c -f attached
# over one more wrk run per proxy (after the timed rounds: strace slows the proxy, but the
# counts per request stay right). The 50 connections' setup is included.
if [ "${SYSCALLS:-0}" = 1 ]; then
    command -v strace >/dev/null || { echo "SYSCALLS=1 needs strace" >&2; exit 1; }
    echo
    echo "| proxy | requests | syscalls/req | per request |"
    echo "|---|---|---|---|"
    for n in "${NAMES[@]}"; do
        [ "$n" = direct ] && continue
        args=()
        for pid in ${CPU_HTTP[$n]}; do args+=(-p "$pid"); done
        strace -c -f "${args[@]}" -o "$WORK/strace-$n.txt" 2>/dev/null & st=$!; PIDS+=("$st")
        sleep 1 # let strace attach before the first request
        wrk -t1 -c"$CONNS" -d"${DURATION}s" "http://127.0.0.1:${HTTP_PORT[$n]}/" \
            > "$WORK/wrk-strace.out" 2>&1 || true
        kill -INT "$st" 2>/dev/null || true
        wait "$st" 2>/dev/null || true
        python3 - "$n" "$WORK/strace-$n.txt" "$WORK/wrk-strace.out" <<'PY'
import re, sys
name, trace, wrk = sys.argv[1:4]
m = re.search(r"(\d+) requests in", open(wrk).read())
reqs = int(m.group(1)) if m else 0
calls = {}
for line in open(trace):
    tok = line.split()
    if len(tok) not in (5, 6) or not tok[0][0].isdigit() or tok[-1] == "total":
        continue
    n, errors = int(tok[3]), int(tok[4]) if len(tok) == 6 else 0
    calls[tok[-1]] = (n, errors)
total = sum(n for n, _ in calls.values())
per = lambda x: x / reqs if reqs else float("nan")
top = sorted(calls.items(), key=lambda kv: -kv[1][0])[:5]
desc = ", ".join(f"{k} {per(n):.3f}" + (f" ({per(e):.3f} failed)" if e else "") for k, (n, e) in top)
print(f"| {name} | {reqs} | {per(total):.2f} | {desc} |")
PY
    done
fi
