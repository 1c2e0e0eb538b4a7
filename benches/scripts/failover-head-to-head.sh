#!/usr/bin/env bash
# Failover head to head: the client-observed outage of a virtual IP when the master load
# balancer fails, keepalived + nginx stream (the seed article's pair) vs ha-lb, in the same
# network-namespace topology with the same VRRP settings.
#
#   benches/scripts/failover-head-to-head.sh            # every row, both sides
#   SIDES="keepalived" KINDS="link-down" SETTINGS="tuned" benches/scripts/failover-head-to-head.sh
#
# Topology (all TEST-NET, every row builds it afresh and tears it down):
#   front LAN 192.0.2.0/24: client .100, lb1 .11, lb2 .12, VIP 192.0.2.200:80
#   back LAN 198.51.100.0/24: lb1 .11, lb2 .12, backends .21 .22 .23 (nginx http on :8080)
# lb1 has priority 100, lb2 50, VRID 101, unicast adverts between them (as in the seed).
# The client opens a new TCP connection to the VIP every 10 ms (HTTP/1.0 GET, each in its own
# thread, 0.5 s timeout) and logs each result. A cut is a run of failed probes, from the start of
# the last successful probe before it to the start of the first one after it; the outage of a
# row is its longest cut within a fixed window after the fault (so a node that comes back and
# preempts counts too), "never" when most probes of the window's last second fail.
#
# Settings: "seed" = VRRPv2, PASS 123456, advert 1 s, check every 2 s (the article's);
#           "tuned" = VRRPv3, advert ADVERT_MS (default 50 ms), check every 1 s.
# keepalived side: keepalived + nginx stream on each LB; the seed's check script (nginx gone ->
# stop this node's keepalived; by pidfile here, not `killall`, which would hit other nodes),
# weight -20. ha-lb side: one ha-lb per LB, listener on the VIP, pool of the three backends with
# TCP checks at the script's interval (rise 1, fall 1), track_pools weight -60.
# Failure kinds, injected on lb1 once it is master and the client is served:
#   proxy-dies     SIGKILL of the proxy (nginx's master and workers | ha-lb's worker process)
#   graceful-stop  SIGTERM to keepalived and SIGQUIT to nginx | SIGTERM to ha-lb
#   link-down      lb1's front interface down
#   backends-lost  lb1's back interface down (lb1 alive, its backends unreachable)
#
# Every row runs ROUNDS times (default 3; the fault lands at a random point of the advert
# cycle, so one run is noisy); the table gives the median and the range.
# Environment: SIDES ("keepalived ha-lb"), SETTINGS ("seed tuned"), ADVERT_MS (tuned), KINDS (all four), ROUNDS, WINDOW
# (seconds observed after the fault; default 10 for seed, 5 for tuned settings), HALB (ha-lb binary; default: built with cargo
# --release into CARGO_TARGET_DIR), SKIP_BUILD=1, RESULTS (a file to append rows to).
# Needs root, ip (iproute2), tcpdump, keepalived, nginx + libnginx-mod-stream, python3. Everything it
# starts is stopped by PID and its namespaces deleted on exit, also on failure or ^C.
set -euo pipefail
cd "$(dirname "$0")/../.."

SIDES=${SIDES:-"keepalived ha-lb"}
SETTINGS=${SETTINGS:-"seed tuned"}
# The advert interval of the "tuned" settings, in milliseconds (VRRPv3 carries centiseconds).
ADVERT_MS=${ADVERT_MS:-50}
KINDS=${KINDS:-"proxy-dies graceful-stop link-down backends-lost"}
ROUNDS=${ROUNDS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
STREAM_MOD=/usr/lib/nginx/modules/ngx_stream_module.so

for tool in ip python3 tcpdump; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
case " $SIDES " in *" keepalived "*)
    for tool in keepalived nginx; do
        command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
    done
    [ -f "$STREAM_MOD" ] || { echo "missing nginx stream module ($STREAM_MOD)" >&2; exit 1; } ;;
esac
command -v nginx >/dev/null || { echo "missing: nginx (the backends)" >&2; exit 1; }
case " $SIDES " in *" ha-lb "*)
    if [ -z "${HALB:-}" ]; then
        if [ "${SKIP_BUILD:-0}" != 1 ]; then
            CARGO_TARGET_DIR="$TARGET" cargo build --release -q -p ha-lb --bin ha-lb
        fi
        HALB="$TARGET/release/ha-lb"
    fi
    HALB=$(realpath "$HALB")
    [ -x "$HALB" ] || { echo "missing: $HALB" >&2; exit 1; } ;;
esac

WORK=$(mktemp -d /tmp/failover-h2h.XXXXXX)
PFX="fo$$"
NAMESPACES=()
PIDS=()

# Stops what one row started: its processes by PID, then anything left in its namespaces
# (by PID, from `ip netns pids`), then the namespaces.
teardown() {
    local pid ns
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 20); do
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

# Runs a command in one of the row's namespaces (in the foreground: background processes are
# started with `ip netns exec` directly, so that $! is the program's PID).
nsx() { local ns=$1; shift; ip netns exec "$PFX-$ns" "$@"; }
mkns() { ip netns add "$PFX-$1"; NAMESPACES+=("$PFX-$1"); nsx "$1" ip link set lo up; }

# Builds the topology; $1 = the row's directory.
build() {
    mkns sw
    nsx sw ip link add br0 type bridge
    nsx sw ip link add br1 type bridge
    nsx sw ip link set br0 up
    nsx sw ip link set br1 up
    local i=0
    attach() { # ns ifname bridge address
        i=$((i + 1))
        ip link add "$2" netns "$PFX-$1" type veth peer name "p$i" netns "$PFX-sw"
        nsx sw ip link set "p$i" master "$3" up
        nsx "$1" ip link set "$2" up
        nsx "$1" ip addr add "$4" dev "$2"
    }
    mkns client; attach client eth0 br0 192.0.2.100/24
    for n in 1 2; do
        mkns "lb$n"
        attach "lb$n" eth0 br0 "192.0.2.1$n/24"
        attach "lb$n" eth1 br1 "198.51.100.1$n/24"
        nsx "lb$n" sysctl -qw net.ipv4.ip_nonlocal_bind=1
    done
    for b in 1 2 3; do
        mkns "be$b"; attach "be$b" eth0 br1 "198.51.100.2$b/24"
        mkdir -p "$1/be$b"
        cat > "$1/be$b/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/be$b/nginx.pid;
error_log $1/be$b/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    server { listen 198.51.100.2$b:8080; location / { return 200 "be$b\n"; } }
}
CONF
        ip netns exec "$PFX-be$b" nginx -p "$1/be$b" -c "$1/be$b/nginx.conf" & PIDS+=($!)
    done
}

# keepalived + nginx stream on lb$2 with settings $3; $1 = row dir.
start_keepalived_node() {
    local dir=$1/lb$2 n=$2 settings=$3 peer prio state version advert interval auth
    mkdir -p "$dir"
    peer=$((3 - n))
    if [ "$n" = 1 ]; then prio=100; state=MASTER; else prio=50; state=BACKUP; fi
    if [ "$settings" = seed ]; then
        version=2; advert=1; interval=2
        auth="authentication {
        auth_type PASS
        auth_pass 123456
    }"
    else
        version=3; advert=$(awk -v ms="$ADVERT_MS" 'BEGIN { printf "%g", ms / 1000 }'); interval=1; auth=""
    fi
    cat > "$dir/nginx.conf" <<CONF
load_module $STREAM_MOD;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
stream {
    upstream cluster {
        server 198.51.100.21:8080;
        server 198.51.100.22:8080;
        server 198.51.100.23:8080;
    }
    server { listen 192.0.2.200:80; proxy_pass cluster; }
}
CONF
    # The seed's nginx_check.sh for this node only.
    cat > "$dir/nginx_check.sh" <<CHECK
#!/bin/bash
if ! kill -0 "\$(cat $dir/nginx.pid 2>/dev/null)" 2>/dev/null; then
    kill "\$(cat $dir/keepalived.pid)"
fi
CHECK
    chmod 755 "$dir/nginx_check.sh"
    cat > "$dir/keepalived.conf" <<CONF
global_defs {
    router_id lb$n
    script_user root
}
vrrp_script check_nginx {
    script "$dir/nginx_check.sh"
    interval $interval
    weight -20
}
vrrp_instance VI_1 {
    state $state
    priority $prio
    interface eth0
    virtual_router_id 101
    version $version
    advert_int $advert
    unicast_src_ip 192.0.2.1$n
    unicast_peer {
        192.0.2.1$peer
    }
    $auth
    track_script {
        check_nginx
    }
    virtual_ipaddress {
        192.0.2.200/24
    }
}
CONF
    ip netns exec "$PFX-lb$n" nginx -p "$dir" -c "$dir/nginx.conf" 2>"$dir/nginx.stderr" & PIDS+=($!)
    # nginx first, as a host would boot it: the check script stops keepalived without it.
    for _ in $(seq 1 100); do [ -s "$dir/nginx.pid" ] && break; sleep 0.05; done
    ip netns exec "$PFX-lb$n" keepalived -n -l -D -P -f "$dir/keepalived.conf" -p "$dir/keepalived.pid" \
        -r "$dir/vrrp.pid" -c "$dir/checkers.pid" >"$dir/keepalived.log" 2>&1 & PIDS+=($!)
    eval "KA_PID_$n=$!"
}

# ha-lb on lb$2 with settings $3; $1 = row dir.
start_halb_node() {
    local dir=$1/lb$2 n=$2 settings=$3 peer prio version advert interval password
    mkdir -p "$dir"
    peer=$((3 - n))
    if [ "$n" = 1 ]; then prio=100; else prio=50; fi
    if [ "$settings" = seed ]; then
        version=2; advert=1000; interval=2000; password='password = "123456"'
    else
        version=3; advert=$ADVERT_MS; interval=1000; password=""
    fi
    cat > "$dir/ha-lb.toml" <<CONF
[global]
router_id = "lb$n"

[instances.VI_1]
interface = "eth0"
vrid = 101
priority = $prio
version = $version
advert_interval_ms = $advert
unicast_src = "192.0.2.1$n"
unicast_peers = ["192.0.2.1$peer"]
$password
vips = ["192.0.2.200/24"]
track_pools = [{ pool = "cluster", weight = -60 }]

[checks.backend]
kind = "tcp"
interval_ms = $interval
rise = 1
fall = 1

[pools.cluster]
backends = [
    { address = "198.51.100.21:8080", check = "backend" },
    { address = "198.51.100.22:8080", check = "backend" },
    { address = "198.51.100.23:8080", check = "backend" },
]

[listeners.web]
listen = "192.0.2.200:80"
pool = "cluster"
CONF
    RUST_LOG=info ip netns exec "$PFX-lb$n" "$HALB" run --config "$dir/ha-lb.toml" \
        >"$dir/ha-lb.log" 2>&1 & PIDS+=($!)
    eval "HALB_PID_$n=$!"
}

# The client: a new probe every 10 ms, each in its own thread (so a slow one does not delay
# the next), one line per probe when it ends: "start end ok|fail".
start_probe() {
    ip netns exec "$PFX-client" python3 - "$1/probe.log" <<'PY' & PIDS+=($!)
import socket, sys, threading, time
out = open(sys.argv[1], "w", buffering=1)
lock = threading.Lock()
def probe(start):
    ok = False
    try:
        with socket.create_connection(("192.0.2.200", 80), timeout=0.5) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            ok = data.startswith(b"HTTP/1.1 200") and b"be" in data
    except OSError:
        pass
    with lock:
        out.write(f"{start:.6f} {time.time():.6f} {'ok' if ok else 'fail'}\n")
tick = time.time()
while True:
    threading.Thread(target=probe, args=(time.time(),), daemon=True).start()
    tick += 0.01
    time.sleep(max(0.0, tick - time.time()))
PY
}

# (Not `ip | grep -q`: with pipefail, grep's early exit fails the pipeline by SIGPIPE.)
has_vip() { [[ "$(nsx "$1" ip -o addr show dev eth0)" == *" 192.0.2.200/"* ]]; }

# Successes in a row at the end of the probe log.
ok_streak() {
    python3 - "$1/probe.log" <<'PY'
import sys
n = 0
for line in open(sys.argv[1]):
    n = n + 1 if line.split()[2] == "ok" else 0
print(n)
PY
}

# Waits until lb1 alone holds the VIP and the client has 50 successes in a row.
converge() {
    local dir=$1 deadline=$((SECONDS + 40))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if has_vip lb1 && ! has_vip lb2 && [ -s "$dir/probe.log" ] && [ "$(ok_streak "$dir")" -ge 50 ]; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

inject() { # side kind dir
    local side=$1 kind=$2 dir=$3
    case "$side:$kind" in
        keepalived:proxy-dies)
            local master
            master=$(cat "$dir/lb1/nginx.pid")
            kill -KILL $(pgrep -P "$master") "$master" ;;
        keepalived:graceful-stop)
            kill -TERM "$KA_PID_1"
            kill -QUIT "$(cat "$dir/lb1/nginx.pid")" ;;
        ha-lb:proxy-dies)
            # The process that serves: the supervisor's worker if there is one, else ha-lb.
            local worker
            worker=$(pgrep -P "$HALB_PID_1" || true)
            kill -KILL "${worker:-$HALB_PID_1}" ;;
        ha-lb:graceful-stop)
            kill -TERM "$HALB_PID_1" ;;
        *:link-down)
            nsx lb1 ip link set eth0 down ;;
        *:backends-lost)
            nsx lb1 ip link set eth1 down ;;
    esac
}

# Seconds observed after the fault: WINDOW, or 10 (seed settings) / 5 (tuned).
window() { if [ -n "${WINDOW:-}" ]; then echo "$WINDOW"; elif [ "$1" = seed ]; then echo 10; else echo 5; fi; }

# Outage in ms from the probe log and the fault time, or "never".
outage() { # dir fault_time window
    python3 - "$1/probe.log" "$2" "$3" <<'PY'
import sys
fault, window = float(sys.argv[2]), float(sys.argv[3])
# By start time: a probe that started at t succeeded iff the VIP served at t (its timeout,
# 0.5 s, is shorter than TCP's first SYN retransmission, so a late retry cannot succeed).
rows = sorted((float(r[0]), r[2] == "ok") for r in (l.split() for l in open(sys.argv[1])))
end = rows[-1][0]
last = [ok for t, ok in rows if t > end - 1.0]
if not any(ok for t, ok in rows if t > fault) or sum(last) < len(last) / 2:
    print(f"never (>{window:.0f} s)")
    sys.exit()
# Each run of failed probes after the fault is a cut, from the last success before it to the
# first success after it. (A pause of the client alone, without failures, is not a cut.)
cuts, last_ok, failing = [], None, False
for t, ok in rows:
    if ok:
        if failing and last_ok is not None:
            cuts.append(t - last_ok)
        last_ok, failing = t, False
    elif last_ok is not None and t > fault - 0.05:
        failing = True
if not cuts:
    print("0 ms")
else:
    print(f"{max(cuts) * 1000:.0f} ms" + (f", {len(cuts)} cuts" if len(cuts) > 1 else ""))
PY
}

run_row() { # side settings kind round
    local side=$1 settings=$2 kind=$3 round=$4 dir="$WORK/$1-$2-$3-$4" result fault
    mkdir -p "$dir"
    build "$dir"
    for n in 1 2; do
        if [ "$side" = keepalived ]; then start_keepalived_node "$dir" "$n" "$settings"
        else start_halb_node "$dir" "$n" "$settings"; fi
    done
    start_probe "$dir"
    if converge "$dir"; then
        # Fault right after one of lb1's adverts, so the backup always waits a whole
        # Master_Down_Interval when it must (the worst case, the same for both sides).
        timeout 5 ip netns exec "$PFX-lb1" tcpdump -i eth0 -c 1 -n --immediate-mode \
            'ip proto 112 and src host 192.0.2.11' >/dev/null 2>&1 || true
        fault=$(date +%s.%N)
        echo "$fault" > "$dir/fault-time"
        inject "$side" "$kind" "$dir"
        # Observe a fixed window: long enough for a returning node to preempt back (its
        # Master_Down_Interval) and for the client to be served again for a while.
        sleep "$(window "$settings")"
        result=$(outage "$dir" "$fault" "$(window "$settings")")
        local holders=" nobody"
        if has_vip lb1 && has_vip lb2; then holders=" lb1+lb2"
        elif has_vip lb1; then holders=" lb1"
        elif has_vip lb2; then holders=" lb2"; fi
        result="$result	${holders# }"
    else
        result="did not converge	-"
        cp -r "$dir" "/tmp/failover-h2h-failed-$side-$settings-$kind" 2>/dev/null || true
    fi
    teardown
    printf '%s\t%s\t%s\t%s\t%s\n' "$settings" "$kind" "$side" "$round" "$result" | tee -a "$WORK/results.tsv" >&2
}

echo "failover head to head: sides [$SIDES], settings [$SETTINGS], kinds [$KINDS]" >&2
for round in $(seq 1 "$ROUNDS"); do
    for settings in $SETTINGS; do
        for kind in $KINDS; do
            for side in $SIDES; do
                run_row "$side" "$settings" "$kind" "$round"
            done
        done
    done
done

python3 - "$WORK/results.tsv" <<'PY'
import re, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
cells = {}
for settings, kind, side, _round, outage, holders in rows:
    cells.setdefault((settings, kind), {}).setdefault(side, []).append((outage, holders))
def ms(text):
    m = re.match(r"(\d+) ms", text)
    return int(m.group(1)) if m else None
def cell(results):
    if not results:
        return "-", None
    values = [ms(o) for o, _ in results]
    nums = [v for v in values if v is not None]
    text = ""
    if nums:
        med = statistics.median(nums)
        text = f"{med:.0f} ms ({min(nums)}–{max(nums)})"
    never = sum(1 for o, _ in results if o.startswith("never"))
    other = len(results) - len(nums) - never
    if never:
        text += ("; " if text else "") + ("never" if never == len(results) else f"never in {never} of {len(results)}")
    if other:
        text += ("; " if text else "") + f"{other} did not converge"
    split = sum(1 for _, h in results if h not in ("lb1", "lb2"))
    if split:
        text += f"; VIP not on exactly one node in {split}"
    return text, (statistics.median(nums) if nums and not never else None)
print("| settings | failure | keepalived + nginx | ha-lb | ha-lb ÷ keepalived |")
print("|---|---|---|---|---|")
for (settings, kind), sides in cells.items():
    ka, ka_med = cell(sides.get("keepalived", []))
    hl, hl_med = cell(sides.get("ha-lb", []))
    if ka_med and hl_med is not None:
        ratio = f"{hl_med / ka_med:.2f}"
    elif ka.startswith("never") and hl_med is not None:
        ratio = "recovers vs never"
    else:
        ratio = "-"
    print(f"| {settings} | {kind} | {ka} | {hl} | {ratio} |")
PY
[ -n "${RESULTS:-}" ] && cat "$WORK/results.tsv" >> "$RESULTS"
exit 0
