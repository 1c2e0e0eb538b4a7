#!/usr/bin/env bash
# Many VRRP instances on one node: the CPU ha-lb and keepalived spend, side by side in one run.
#
#   benches/scripts/vrrp-scale.sh                  # N = 20 100 200 500, both daemons
#   NS="20 100" SIDES="ha-lb" WINDOW=5 benches/scripts/vrrp-scale.sh
#
# Topology (TEST-NET only, built afresh for every row and torn down): two nodes n1 (192.0.2.1,
# 2001:db8::1) and n2 (192.0.2.2, 2001:db8::2) on one bridge. N VRRPv3 multicast instances on
# their eth0, adverts every ADVERT_MS (default 100 ms): VRIDs 1..=250 carry IPv4 VIPs
# 198.51.100.x; past 250 (N = 500) the rest are IPv6 instances (VIPs 2001:db8:1::x) with VRIDs
# 1..=250 again, so every instance is on the one interface. n1 has priority 200 (Master of all),
# n2 priority 100 (Backup of all).
# Once n1 holds every VIP, WARMUP seconds pass, then the user + system CPU time of all of each
# daemon's processes (ha-lb: supervisor and worker; keepalived: parent and VRRP child) is read
# from /proc over WINDOW seconds (default 10). The table gives CPU as % of one core, per node,
# the ratio to keepalived, and the cost per advert (Master: CPU per advert sent; Backup: per
# advert received).
# Environment: NS, SIDES ("ha-lb keepalived"), ADVERT_MS, WARMUP (3), WINDOW (10), HALB (the
# ha-lb binary; default: cargo build --release into CARGO_TARGET_DIR), SKIP_BUILD=1,
# PERF_DIR (a directory: each node's daemon is also profiled by `perf record` over the window,
# into PERF_DIR/<side>-<N>-<node>.data; read with `perf report -i FILE --sort sym`).
# Needs root, ip (iproute2), keepalived. Everything it starts is stopped by PID and its
# namespaces deleted on exit, also on failure or ^C.
set -euo pipefail
cd "$(dirname "$0")/../.."

NS=${NS:-"20 100 200 500"}
SIDES=${SIDES:-"ha-lb keepalived"}
ADVERT_MS=${ADVERT_MS:-100}
WARMUP=${WARMUP:-3}
WINDOW=${WINDOW:-10}
TARGET=${CARGO_TARGET_DIR:-target}
TAG="vs$$"
WORK=$(mktemp -d)
# The PIDs this script started, one per line (a file: they are started in subshells).
PIDFILE="$WORK/pids"
: >"$PIDFILE"

cleanup() {
    local pids
    pids=$(cat "$PIDFILE" 2>/dev/null || true)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    : >"$PIDFILE"
    for ns in "$TAG-n1" "$TAG-n2" "$TAG-sw"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap 'cleanup 2>/dev/null; rm -rf "$WORK"' EXIT INT TERM

command -v ip >/dev/null || { echo "missing: ip" >&2; exit 1; }
case " $SIDES " in *" keepalived "*)
    command -v keepalived >/dev/null || { echo "missing: keepalived" >&2; exit 1; } ;;
esac
if [ -z "${HALB:-}" ]; then
    [ -n "${SKIP_BUILD:-}" ] || cargo build --release -q -p ha-lb
    HALB="$TARGET/release/ha-lb"
fi
HALB=$(realpath "$HALB")

topology() {
    ip netns add "$TAG-sw"
    ip -n "$TAG-sw" link add br0 type bridge
    ip -n "$TAG-sw" link set br0 up
    for i in 1 2; do
        ip netns add "$TAG-n$i"
        ip -n "$TAG-n$i" link set lo up
        ip netns exec "$TAG-n$i" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        ip link add eth0 netns "$TAG-n$i" type veth peer name "p$i" netns "$TAG-sw"
        ip -n "$TAG-sw" link set "p$i" master br0 up
        ip -n "$TAG-n$i" addr add "192.0.2.$i/24" dev eth0
        ip -n "$TAG-n$i" addr add "2001:db8::$i/64" dev eth0
        ip -n "$TAG-n$i" link set eth0 up
    done
}

# vip N: the VIP (with prefix) of instance number N (1-based), and its VRID.
vip() {
    local n=$1
    if [ "$n" -le 250 ]; then echo "198.51.100.$n/24 $n"; else echo "2001:db8:1::$((n - 250))/64 $((n - 250))"; fi
}

halb_conf() { # priority N
    local prio=$1 n=$2 i
    for i in $(seq 1 "$n"); do
        read -r addr vrid <<<"$(vip "$i")"
        printf '[instances.VI_%d]\ninterface = "eth0"\nvrid = %d\npriority = %d\nversion = 3\nadvert_interval_ms = %d\nvips = ["%s"]\n\n' \
            "$i" "$vrid" "$prio" "$ADVERT_MS" "$addr"
    done
}

keepalived_conf() { # priority N
    local prio=$1 n=$2 i
    printf 'global_defs {\n    vrrp_version 3\n    vrrp_garp_master_delay 0\n}\n'
    for i in $(seq 1 "$n"); do
        read -r addr vrid <<<"$(vip "$i")"
        printf 'vrrp_instance VI_%d {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n    priority %d\n    advert_int %s\n    virtual_ipaddress {\n        %s\n    }\n}\n' \
            "$i" "$vrid" "$prio" "$(awk "BEGIN{print $ADVERT_MS/1000}")" "$addr"
    done
}

start() { # side node priority N
    local side=$1 node=$2 prio=$3 n=$4
    case $side in
    ha-lb)
        halb_conf "$prio" "$n" >"$WORK/$node.toml"
        ip netns exec "$TAG-$node" "$HALB" run --config "$WORK/$node.toml" >/dev/null 2>"$WORK/$node.log" &
        ;;
    keepalived)
        keepalived_conf "$prio" "$n" >"$WORK/$node.conf"
        ip netns exec "$TAG-$node" keepalived -n -l -D --vrrp -f "$WORK/$node.conf" \
            -p "$WORK/$node.pid" -r "$WORK/$node-vrrp.pid" >/dev/null 2>"$WORK/$node.log" &
        ;;
    esac
    echo "$!" >>"$PIDFILE"
}

# The process and all its descendants.
tree() {
    local pid=$1 c
    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do tree "$c"; done
}

# User + system clock ticks of a process tree.
ticks() {
    local total=0 p
    for p in $(tree "$1"); do
        [ -r "/proc/$p/stat" ] || continue
        # Fields 14 and 15 (utime, stime), counted after the ")" that ends the command name.
        total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

vips_on() { ip -n "$TAG-$1" -o addr show dev eth0 | grep -c -e ' 198\.51\.100\.' -e ' 2001:db8:1::' || true; }

measure() { # side N -> "master% backup%"
    local side=$1 n=$2 p1 p2 t0a t0b t1a t1b hz deadline
    topology
    start "$side" n1 200 "$n"
    start "$side" n2 100 "$n"
    p1=$(sed -n 1p "$PIDFILE")
    p2=$(sed -n 2p "$PIDFILE")
    deadline=$((SECONDS + 60))
    until [ "$(vips_on n1)" -eq "$n" ] && [ "$(vips_on n2)" -eq 0 ]; do
        if [ $SECONDS -gt $deadline ]; then
            echo "$side N=$n: n1 holds $(vips_on n1) VIPs, n2 $(vips_on n2) after 60 s" >&2
            tail -n 20 "$WORK/n1.log" "$WORK/n2.log" >&2
            cleanup
            return 1
        fi
        sleep 0.5
    done
    sleep "$WARMUP"
    t0a=$(ticks "$p1"); t0b=$(ticks "$p2")
    local perfs=()
    if [ -n "${PERF_DIR:-}" ]; then
        mkdir -p "$PERF_DIR"
        perf record -q -o "$PERF_DIR/$side-$n-n1.data" -p "$(tree "$p1" | paste -sd,)" -- sleep "$WINDOW" >/dev/null 2>&1 &
        perfs+=("$!")
        perf record -q -o "$PERF_DIR/$side-$n-n2.data" -p "$(tree "$p2" | paste -sd,)" -- sleep "$WINDOW" >/dev/null 2>&1 &
        perfs+=("$!")
    fi
    sleep "$WINDOW"
    [ ${#perfs[@]} -eq 0 ] || wait "${perfs[@]}"
    t1a=$(ticks "$p1"); t1b=$(ticks "$p2")
    [ "$(vips_on n1)" -eq "$n" ] || { echo "$side N=$n: n1 lost VIPs during the window" >&2; cleanup; return 1; }
    hz=$(getconf CLK_TCK)
    cleanup
    awk -v a=$((t1a - t0a)) -v b=$((t1b - t0b)) -v hz="$hz" -v w="$WINDOW" \
        'BEGIN { printf "%.2f %.2f", 100 * a / hz / w, 100 * b / hz / w }'
}

printf '%-5s | %-23s | %-23s | %-15s | %s\n' N "ha-lb Master / Backup %" "keepalived M / B %" "ratio M / B" "us per advert ha-lb M / B, keepalived M / B"
for n in $NS; do
    declare -A cpu=()
    for side in $SIDES; do
        out=$(measure "$side" "$n") || { echo "N=$n $side: no measurement" >&2; exit 1; }
        read -r m b <<<"$out"
        cpu[$side-m]=$m
        cpu[$side-b]=$b
    done
    adverts=$(awk -v n="$n" -v ms="$ADVERT_MS" -v w="$WINDOW" 'BEGIN { print n * w * 1000 / ms }')
    per() { awk -v c="${1:-0}" -v w="$WINDOW" -v a="$adverts" 'BEGIN { printf "%.1f", c / 100 * w / a * 1e6 }'; }
    ratio() { awk -v x="${1:-0}" -v y="${2:-0}" 'BEGIN { if (y > 0) printf "%.2f", x / y; else printf "-" }'; }
    printf '%-5s | %10s / %-10s | %10s / %-10s | %6s / %-6s | %s / %s, %s / %s\n' "$n" \
        "${cpu[ha-lb-m]:--}" "${cpu[ha-lb-b]:--}" "${cpu[keepalived-m]:--}" "${cpu[keepalived-b]:--}" \
        "$(ratio "${cpu[ha-lb-m]:-}" "${cpu[keepalived-m]:-}")" "$(ratio "${cpu[ha-lb-b]:-}" "${cpu[keepalived-b]:-}")" \
        "$(per "${cpu[ha-lb-m]:-}")" "$(per "${cpu[ha-lb-b]:-}")" "$(per "${cpu[keepalived-m]:-}")" "$(per "${cpu[keepalived-b]:-}")"
    unset cpu
done
