#!/usr/bin/env bash
# Many VRRP instances on one node: the CPU ha-lb and keepalived spend, side by side, at the
# same time.
#
#   benches/scripts/vrrp-scale.sh                  # N = 20 100 200 500, both daemons
#   NS="20 100" SIDES="ha-lb" WINDOW=5 benches/scripts/vrrp-scale.sh
#
# Topology (TEST-NET only, built afresh for every measurement and torn down), one per daemon:
# two nodes n1 (192.0.2.1, 2001:db8::1) and n2 (192.0.2.2, 2001:db8::2) on a bridge of their
# own. N VRRPv3 multicast instances on their eth0, adverts every ADVERT_MS (default 100 ms):
# VRIDs 1..=250 carry IPv4 VIPs 198.51.100.x; past 250 (N = 500) the rest are IPv6 instances
# (VIPs 2001:db8:1::x) with VRIDs 1..=250 again, so every instance is on the one interface. n1
# has priority 200 (Master of all), n2 priority 100 (Backup of all). Both daemons' pairs run at
# the same time, so a busy moment of the (shared, virtual) machine hits both alike.
# Once every n1 holds every VIP, WARMUP seconds pass, then the user + system CPU time of all of
# each daemon's processes (ha-lb: supervisor and worker; keepalived: parent and VRRP child) is
# read from /proc (schedstat, in nanoseconds) over WINDOW seconds (default 10). The table gives
# CPU as % of one core, per node, the ratio to keepalived, and the cost per advert (Master: CPU
# per advert sent; Backup: per advert received).
# With ROUNDS > 1 (default 1) every N is measured ROUNDS times; the table gives medians and
# the rounds are listed below it.
# Environment: NS, SIDES ("ha-lb keepalived"), ADVERT_MS, WARMUP (3), WINDOW (10), ROUNDS (1),
# HALB (the ha-lb binary; default: cargo build --release into CARGO_TARGET_DIR), SKIP_BUILD=1,
# PERF_DIR (a directory: each node's daemon is also profiled by `perf record` over the window,
# into PERF_DIR/<side>-<N>-r<round>-<node>.data, with PERF_ARGS (say "--call-graph dwarf")
# added; read with `perf report -i FILE --sort sym`).
# Needs root, ip (iproute2), keepalived; perf (Debian linux-perf) only with PERF_DIR.
# Everything it starts is stopped by PID and its namespaces deleted on exit, also on failure
# or ^C.
set -euo pipefail
cd "$(dirname "$0")/../.."

NS=${NS:-"20 100 200 500"}
SIDES=${SIDES:-"ha-lb keepalived"}
ADVERT_MS=${ADVERT_MS:-100}
WARMUP=${WARMUP:-3}
WINDOW=${WINDOW:-10}
ROUNDS=${ROUNDS:-1}
TARGET=${CARGO_TARGET_DIR:-target}
TAG="vs$$"
WORK=$(mktemp -d)
# The PIDs this script started, one per line (a file: they are started in subshells).
PIDFILE="$WORK/pids"
: >"$PIDFILE"

cleanup() {
    local pids ns
    pids=$(cat "$PIDFILE" 2>/dev/null || true)
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
    : >"$PIDFILE"
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $ns in "$TAG"-*) ip netns del "$ns" 2>/dev/null || true ;; esac
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

# topology PREFIX: a bridge namespace PREFIX-sw and two nodes PREFIX-n1, PREFIX-n2.
topology() {
    local pfx=$1 i
    ip netns add "$pfx-sw"
    ip -n "$pfx-sw" link add br0 type bridge
    ip -n "$pfx-sw" link set br0 up
    for i in 1 2; do
        ip netns add "$pfx-n$i"
        ip -n "$pfx-n$i" link set lo up
        ip netns exec "$pfx-n$i" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        ip link add eth0 netns "$pfx-n$i" type veth peer name "p$i" netns "$pfx-sw"
        ip -n "$pfx-sw" link set "p$i" master br0 up
        ip -n "$pfx-n$i" addr add "192.0.2.$i/24" dev eth0
        ip -n "$pfx-n$i" addr add "2001:db8::$i/64" dev eth0
        ip -n "$pfx-n$i" link set eth0 up
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

start() { # side node priority N: the daemon in namespace TAG-side-node, its PID in WORK/side-node.pid
    local side=$1 node=$2 prio=$3 n=$4 ns="$TAG-$1-$2" f="$WORK/$1-$2"
    case $side in
    ha-lb)
        halb_conf "$prio" "$n" >"$f.toml"
        ip netns exec "$ns" "$HALB" run --config "$f.toml" >/dev/null 2>"$f.log" &
        ;;
    keepalived)
        keepalived_conf "$prio" "$n" >"$f.conf"
        ip netns exec "$ns" keepalived -n -l -D --vrrp -f "$f.conf" \
            -p "$f.keepalived.pid" -r "$f.vrrp.pid" >/dev/null 2>"$f.log" &
        ;;
    esac
    echo "$!" >>"$PIDFILE"
    echo "$!" >"$f.pid"
}

# The process and all its descendants.
tree() {
    local pid=$1 c
    echo "$pid"
    for c in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do tree "$c"; done
}

# CPU time (user + system, nanoseconds) of a process tree: the sum over its threads of
# /proc/PID/task/TID/schedstat, which counts in nanoseconds (/proc/PID/stat counts 10 ms
# ticks: a few ticks a window at small N).
cpu_ns() {
    local total=0 p t
    for p in $(tree "$1"); do
        for t in /proc/"$p"/task/*/schedstat; do
            [ -r "$t" ] || continue
            total=$((total + $(awk '{print $1}' "$t" 2>/dev/null || echo 0)))
        done
    done
    echo "$total"
}

vips_on() { ip -n "$TAG-$1-$2" -o addr show dev eth0 | grep -c -e ' 198\.51\.100\.' -e ' 2001:db8:1::' || true; }

# measure N -> one line "side master% backup%" per side: every side runs at the same time,
# each on its own bridge, so a busy moment of the machine hits all alike.
measure() {
    local n=$1 side node deadline ready
    declare -A pid=() t0=() t1=()
    for side in $SIDES; do
        topology "$TAG-$side"
        start "$side" n1 200 "$n"
        start "$side" n2 100 "$n"
        for node in n1 n2; do pid[$side-$node]=$(cat "$WORK/$side-$node.pid"); done
    done
    deadline=$((SECONDS + 60))
    while :; do
        ready=1
        for side in $SIDES; do
            [ "$(vips_on "$side" n1)" -eq "$n" ] && [ "$(vips_on "$side" n2)" -eq 0 ] || ready=0
        done
        [ "$ready" = 1 ] && break
        if [ $SECONDS -gt $deadline ]; then
            for side in $SIDES; do
                echo "$side N=$n: n1 holds $(vips_on "$side" n1) VIPs, n2 $(vips_on "$side" n2) after 60 s" >&2
                tail -n 20 "$WORK/$side-n1.log" "$WORK/$side-n2.log" >&2
            done
            cleanup
            return 1
        fi
        sleep 0.5
    done
    sleep "$WARMUP"
    for side in $SIDES; do for node in n1 n2; do t0[$side-$node]=$(cpu_ns "${pid[$side-$node]}"); done; done
    local perfs=()
    if [ -n "${PERF_DIR:-}" ]; then
        mkdir -p "$PERF_DIR"
        for side in $SIDES; do
            for node in n1 n2; do
                # shellcheck disable=SC2086 # PERF_ARGS is a list of arguments
                perf record -q ${PERF_ARGS:-} -o "$PERF_DIR/$side-$n-r${round:-1}-$node.data" \
                    -p "$(tree "${pid[$side-$node]}" | paste -sd,)" -- sleep "$WINDOW" >/dev/null 2>&1 &
                perfs+=("$!")
            done
        done
    fi
    sleep "$WINDOW"
    [ ${#perfs[@]} -eq 0 ] || wait "${perfs[@]}"
    for side in $SIDES; do for node in n1 n2; do t1[$side-$node]=$(cpu_ns "${pid[$side-$node]}"); done; done
    for side in $SIDES; do
        [ "$(vips_on "$side" n1)" -eq "$n" ] || { echo "$side N=$n: n1 lost VIPs during the window" >&2; cleanup; return 1; }
    done
    cleanup
    for side in $SIDES; do
        awk -v s="$side" -v a=$((t1[$side-n1] - t0[$side-n1])) -v b=$((t1[$side-n2] - t0[$side-n2])) -v w="$WINDOW" \
            'BEGIN { printf "%s %.3f %.3f\n", s, 100 * a / 1e9 / w, 100 * b / 1e9 / w }'
    done
}

# median of the numbers given as arguments ("-" for none)
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) printf "-"; else if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v x="${1:-0}" -v y="${2:-0}" 'BEGIN { if (x != "-" && y > 0) printf "%.2f", x / y; else printf "-" }'; }

printf '%-5s | %-23s | %-23s | %-15s | %s\n' N "ha-lb Master / Backup %" "keepalived M / B %" "ratio M / B" "us per advert ha-lb M / B, keepalived M / B"
ROUND_LINES=()
for n in $NS; do
    declare -A cpu=()
    for round in $(seq 1 "$ROUNDS"); do
        out=$(measure "$n") || { echo "N=$n: no measurement" >&2; exit 1; }
        while read -r side m b; do
            cpu[$side-m]+="$m "
            cpu[$side-b]+="$b "
        done <<<"$out"
    done
    # shellcheck disable=SC2086 # word splitting of the per-round lists is the point
    {
        hm=$(median ${cpu[ha-lb-m]:-}); hb=$(median ${cpu[ha-lb-b]:-})
        km=$(median ${cpu[keepalived-m]:-}); kb=$(median ${cpu[keepalived-b]:-})
    }
    adverts=$(awk -v n="$n" -v ms="$ADVERT_MS" -v w="$WINDOW" 'BEGIN { print n * w * 1000 / ms }')
    per() { awk -v c="$1" -v w="$WINDOW" -v a="$adverts" 'BEGIN { if (c == "-") printf "-"; else printf "%.1f", c / 100 * w / a * 1e6 }'; }
    printf '%-5s | %10s / %-10s | %10s / %-10s | %6s / %-6s | %s / %s, %s / %s\n' "$n" \
        "$hm" "$hb" "$km" "$kb" "$(ratio "$hm" "$km")" "$(ratio "$hb" "$kb")" \
        "$(per "$hm")" "$(per "$hb")" "$(per "$km")" "$(per "$kb")"
    if [ "$ROUNDS" -gt 1 ]; then
        read -r -a hms <<<"${cpu[ha-lb-m]:-}"; read -r -a hbs <<<"${cpu[ha-lb-b]:-}"
        read -r -a kms <<<"${cpu[keepalived-m]:-}"; read -r -a kbs <<<"${cpu[keepalived-b]:-}"
        line="N=$n:"
        for ((r = 0; r < ROUNDS; r++)); do
            line+=" ${hms[$r]:--}/${hbs[$r]:--} vs ${kms[$r]:--}/${kbs[$r]:--} ($(ratio "${hms[$r]:--}" "${kms[$r]:--}")/$(ratio "${hbs[$r]:--}" "${kbs[$r]:--}"));"
        done
        ROUND_LINES+=("$line")
    fi
    unset cpu
done
if [ ${#ROUND_LINES[@]} -gt 0 ]; then
    echo
    echo "medians over $ROUNDS rounds; per round, ha-lb M/B vs keepalived M/B (ratios):"
    printf '  %s\n' "${ROUND_LINES[@]}"
fi
