#!/usr/bin/env bash
# Partition heal head to head (issue #12): after VRRP is cut between the two nodes and heals,
# how long the client goes unanswered, keepalived vs ha-lb, each with and without a virtual MAC.
#
#   benches/scripts/heal-head-to-head.sh                     # the four rows, 10 heals each
#   ROWS="keepalived ha-lb" ROUNDS=5 benches/scripts/heal-head-to-head.sh
#
# Topology (TEST-NET, built afresh for every row and torn down): one bridge; lb1 192.0.2.1
# (priority 200), lb2 192.0.2.2 (priority 100), client 192.0.2.6; VIP 192.0.2.100/24, VRID 51,
# VRRPv3, multicast adverts every ADVERT_MS (default 100 ms). Each LB runs the same tiny TCP
# server on 0.0.0.0:80 (it answers its own name), so only VRRP decides who is reached. The
# client opens a TCP connection to the VIP every 5 ms (each in its own thread, 100 ms connect
# timeout) and logs successes.
# A round: wait until lb1 is Master and serves, cut VRRP for CUT_MS (default 1500 ms) by bridge
# port isolation of lb1's and lb2's ports (both still reach the client: lb2 becomes Master too
# and its gratuitous ARP takes the client), heal, watch WINDOW_MS (default 3000 ms). The
# outage of a round is the longest time without an answer from the heal to the end of the
# window (">=N" when the client is still unanswered at its end; "*" when the client itself
# paused launching probes for over 50 ms in the window: a loaded machine, not the network).
# Rows: keepalived, keepalived-vmac (use_vmac), ha-lb, ha-lb-vmac (use_vmac = true).
# Environment: ROWS, ROUNDS (default 10), ADVERT_MS, CUT_MS, WINDOW_MS, HALB (ha-lb binary;
# default: built with cargo --release into CARGO_TARGET_DIR), SKIP_BUILD=1, KEEP_WORK=1.
# Needs root, ip (iproute2), keepalived, python3. Everything it starts is stopped by PID and its
# namespaces deleted on exit, also on failure or ^C.
set -euo pipefail
cd "$(dirname "$0")/../.."

ROWS=${ROWS:-"keepalived keepalived-vmac ha-lb ha-lb-vmac"}
ROUNDS=${ROUNDS:-10}
ADVERT_MS=${ADVERT_MS:-100}
CUT_MS=${CUT_MS:-1500}
WINDOW_MS=${WINDOW_MS:-3000}
TARGET=${CARGO_TARGET_DIR:-target}

for tool in ip python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
case " $ROWS " in *" keepalived"*)
    command -v keepalived >/dev/null || { echo "missing: keepalived" >&2; exit 1; } ;;
esac
case " $ROWS " in *" ha-lb"*)
    if [ -z "${HALB:-}" ]; then
        if [ "${SKIP_BUILD:-0}" != 1 ]; then
            CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ha-lb --bin ha-lb
        fi
        HALB="$TARGET/release/ha-lb"
    fi
    HALB=$(realpath "$HALB")
    [ -x "$HALB" ] || { echo "missing: $HALB" >&2; exit 1; } ;;
esac

WORK=$(mktemp -d /tmp/heal-h2h.XXXXXX)
PFX="hl$$"
NAMESPACES=()
PIDS=()

# Stops what one row started: its processes by PID, then anything left in its namespaces (by
# PID, from `ip netns pids`), then the namespaces.
teardown() {
    local pid ns
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 30); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    for ns in "${NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    PIDS=()
    NAMESPACES=()
}
cleanup() {
    teardown
    if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

nsx() { local ns=$1; shift; ip netns exec "$PFX-$ns" "$@"; }
mkns() { ip netns add "$PFX-$1"; NAMESPACES+=("$PFX-$1"); nsx "$1" ip link set lo up; }

build() {
    mkns sw
    nsx sw ip link add br0 type bridge
    nsx sw ip link set br0 type bridge mcast_snooping 0
    nsx sw ip link set br0 up
    attach() { # ns port address
        ip link add eth0 netns "$PFX-$1" type veth peer name "$2" netns "$PFX-sw"
        nsx sw ip link set "$2" master br0 up
        nsx "$1" ip link set eth0 up
        nsx "$1" ip addr add "$3" dev eth0
    }
    mkns lb1; attach lb1 p1 192.0.2.1/24
    mkns lb2; attach lb2 p2 192.0.2.2/24
    mkns client; attach client p6 192.0.2.6/24
}

# The TCP server of an LB: answers each connection with its name.
start_server() { # n dir
    cat > "$2/server.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 80))
s.listen(512)
name = sys.argv[1].encode() + b"\n"
while True:
    c, _ = s.accept()
    try:
        c.sendall(name)
    except OSError:
        pass
    c.close()
PY
    ip netns exec "$PFX-lb$1" python3 "$2/server.py" "lb$1" > /dev/null 2>&1 &
    PIDS+=($!)
}

start_keepalived() { # n dir vmac(0|1)
    local prio=$(( $1 == 1 ? 200 : 100 )) vmac=""
    [ "$3" = 1 ] && vmac="use_vmac"
    cat > "$2/keepalived.conf" <<CONF
global_defs {
    router_id lb$1
    vrrp_version 3
    enable_script_security
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority $prio
    advert_int $(python3 -c "print($ADVERT_MS/1000)")
    $vmac
    virtual_ipaddress {
        192.0.2.100/24
    }
}
CONF
    ip netns exec "$PFX-lb$1" keepalived -n -l -D -P -f "$2/keepalived.conf" -p "$2/keepalived.pid" \
        -r "$2/vrrp.pid" > "$2/keepalived.log" 2>&1 &
    PIDS+=($!)
}

start_halb() { # n dir vmac(0|1)
    local prio=$(( $1 == 1 ? 200 : 100 )) vmac=""
    [ "$3" = 1 ] && vmac="use_vmac = true"
    cat > "$2/ha-lb.toml" <<CONF
[instances.VI_1]
interface = "eth0"
vrid = 51
priority = $prio
version = 3
advert_interval_ms = $ADVERT_MS
vips = ["192.0.2.100/24"]
$vmac
CONF
    ip netns exec "$PFX-lb$1" "$HALB" run --no-supervisor --config "$2/ha-lb.toml" > "$2/ha-lb.log" 2>&1 &
    PIDS+=($!)
}

# Whether lb$1 holds the VIP (on any interface).
holds_vip() { nsx "lb$1" ip -o addr show | grep -q ' 192.0.2.100/'; }
wait_for() { # timeout_s command...
    local t=$1; shift
    for _ in $(seq 1 $((t * 20))); do "$@" && return 0; sleep 0.05; done
    return 1
}
isolate() { for p in p1 p2; do nsx sw ip link set dev "$p" type bridge_slave isolated "$1"; done; }

# The client: probes the VIP every 5 ms, logs "monotonic_ns ok" per probe to $1/probes.
start_client() {
    cat > "$1/client.py" <<'PY'
import socket, sys, threading, time
out = open(sys.argv[1], "w", buffering=1)
lock = threading.Lock()
def probe():
    ok = 0
    try:
        s = socket.create_connection(("192.0.2.100", 80), timeout=0.1)
        s.settimeout(0.5)
        ok = 1 if s.recv(16).startswith(b"lb") else 0
        s.close()
    except OSError:
        pass
    with lock:
        out.write(f"{time.monotonic_ns()} {ok}\n")
nxt = time.monotonic()
while True:
    with lock:
        out.write(f"{time.monotonic_ns()} L\n")
    threading.Thread(target=probe, daemon=True).start()
    nxt += 0.005
    time.sleep(max(0.0, nxt - time.monotonic()))
PY
    ip netns exec "$PFX-client" python3 "$1/client.py" "$1/probes" &
    PIDS+=($!)
}

now_ns() { python3 -c 'import time; print(time.monotonic_ns())'; }

# The longest gap without a success in [$2, $2 + WINDOW_MS] of probe log $1, in ms.
outage() {
    python3 - "$1" "$2" "$WINDOW_MS" <<'PY'
import sys
path, heal, window = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) * 1_000_000
end = heal + window
lines = [l.split() for l in open(path) if l.strip()]
oks = sorted(int(t) for t, ok in lines if ok == "1")
# The client's own stalls (a loaded machine): the longest pause between two probe launches.
launches = sorted(int(t) for t, k in lines if k == "L" and heal <= int(t) <= heal + window)
stall = max((b - a for a, b in zip(launches, launches[1:])), default=0)
mark = "*" if stall > 50_000_000 else ""
last, gap = heal, 0
for t in oks:
    if heal <= t <= end:
        gap = max(gap, t - last)
        last = t
tail = end - last
# Unanswered for the last half second of the window: still down, at least this long.
print((f">={tail // 1_000_000}" if tail > 500_000_000 else str(max(gap, tail) // 1_000_000)) + mark)
PY
}

RESULTS="$WORK/results"
: > "$RESULTS"
for row in $ROWS; do
    dir="$WORK/$row"
    mkdir -p "$dir"
    build
    for n in 1 2; do
        mkdir -p "$dir/lb$n"
        start_server "$n" "$dir/lb$n"
        vmac=0
        case "$row" in *-vmac) vmac=1 ;; esac
        case "$row" in
            keepalived*) start_keepalived "$n" "$dir/lb$n" "$vmac" ;;
            ha-lb*) start_halb "$n" "$dir/lb$n" "$vmac" ;;
        esac
        # lb1 first, so it is Master before lb2 starts.
        [ "$n" = 1 ] && { wait_for 15 holds_vip 1 || { echo "$row: lb1 never Master" >&2; exit 1; }; }
    done
    sleep 2
    start_client "$dir"
    sleep 1
    gaps=()
    for r in $(seq 1 "$ROUNDS"); do
        # A fresh phase of the advert cycle for each cut.
        sleep "$(printf '0.%02d' $(( (r * 37) % 100 )))"
        isolate on
        wait_for 5 holds_vip 2 || echo "$row round $r: lb2 not Master during the cut" >&2
        sleep "$(python3 -c "print($CUT_MS/1000 - 0.4)")"
        heal=$(now_ns)
        isolate off
        sleep "$(python3 -c "print($WINDOW_MS/1000 + 0.2)")"
        gaps+=("$(outage "$dir/probes" "$heal")")
        if holds_vip 2; then echo "$row round $r: lb2 still holds the VIP" >&2; fi
        # Recover before the next round if the client is still cut off (its ARP entry ages out
        # only after tens of seconds): flush it, as an operator would.
        nsx client ip neigh flush dev eth0 2>/dev/null || true
    done
    echo "$row: ${gaps[*]}"
    echo "$row ${gaps[*]}" >> "$RESULTS"
    teardown
done

python3 - "$RESULTS" "$ROUNDS" "$WINDOW_MS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
window = int(sys.argv[3])
names = {"keepalived": "keepalived", "keepalived-vmac": "keepalived, use_vmac",
         "ha-lb": "ha-lb", "ha-lb-vmac": "ha-lb, use_vmac = true"}
def val(g):
    g = g.rstrip("*")
    return int(g[2:]) if g.startswith(">=") else int(g)
print()
print(f"| {sys.argv[2]} cuts of VRRP + heals | outage after each heal (ms) | median | worst | heals answered within 250 ms |")
print("|---|---|---|---|---|")
for row in rows:
    name, gaps = row[0], row[1:]
    vals = sorted(val(g) for g in gaps)
    med = vals[len(vals) // 2]
    worst = gaps[[val(g) for g in gaps].index(vals[-1])]
    ok = sum(1 for v in vals if v <= 250)
    meds = [g for g in gaps if val(g) == med]
    print(f"| {names.get(name, name)} | {', '.join(gaps)} | {meds[0]} | {worst} | {ok}/{len(vals)} |")
PY
