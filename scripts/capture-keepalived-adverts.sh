#!/usr/bin/env bash
# Captures real VRRP adverts from keepalived (the Debian package) for vrrp-core's golden tests.
#
# For each scenario it builds two throwaway network namespaces joined by a veth pair (TEST-NET
# addresses only: 192.0.2.0/24 and 2001:db8::/64), runs keepalived alone in the first one (it
# becomes master), captures protocol 112 with tcpdump in the second one, then stops keepalived
# with SIGTERM so the capture also holds its priority-0 "I resign" advert. Output:
#
#   vrrp-core/tests/data/keepalived-<scenario>.pcap   the frames as captured (Ethernet)
#   vrrp-core/tests/data/keepalived-adverts.txt       tshark's view of them, for review
#
# Needs root, iproute2, keepalived, tcpdump and tshark. Re-runnable: everything it creates is
# removed on exit, also on failure or Ctrl-C (namespaces by name, processes by their PID).
#
# Usage: scripts/capture-keepalived-adverts.sh [OUTPUT_DIR]
set -euo pipefail

out=${1:-"$(cd "$(dirname "$0")/.." && pwd)/vrrp-core/tests/data"}
mkdir -p "$out"
tag="kacap$$"
ns_a="${tag}a"
ns_b="${tag}b"
work=$(mktemp -d)
ka_pid=""
dump_pid=""

cleanup() {
    set +e
    if [ -n "$ka_pid" ] && kill -0 "$ka_pid" 2>/dev/null; then
        kill -TERM "$ka_pid"
        for _ in $(seq 50); do kill -0 "$ka_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$ka_pid" 2>/dev/null
        wait "$ka_pid" 2>/dev/null
    fi
    if [ -n "$dump_pid" ] && kill -0 "$dump_pid" 2>/dev/null; then
        kill -INT "$dump_pid"
        wait "$dump_pid" 2>/dev/null
    fi
    # keepalived's own children (vrrp process) die with their namespace's last reference.
    for ns in "$ns_a" "$ns_b"; do
        if ip netns list | grep -qw "$ns"; then
            for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
            ip netns del "$ns"
        fi
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Sleep in the background so a signal runs the cleanup at once, not after the sleep.
nap() { sleep "$1" & wait $!; }

for tool in ip keepalived tcpdump tshark; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

setup_topology() {
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    for ns in "$ns_a" "$ns_b"; do
        # No duplicate address detection: link-local addresses usable at once.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
        ip -n "$ns" link set lo up
    done
    ip -n "$ns_a" link add ka0 type veth peer name kb0 netns "$ns_b"
    ip -n "$ns_a" link set ka0 address 02:00:00:00:00:01
    ip -n "$ns_b" link set kb0 address 02:00:00:00:00:02
    ip -n "$ns_a" addr add 192.0.2.1/24 dev ka0
    ip -n "$ns_b" addr add 192.0.2.2/24 dev kb0
    ip -n "$ns_a" addr add 2001:db8::1/64 dev ka0 nodad
    ip -n "$ns_b" addr add 2001:db8::2/64 dev kb0 nodad
    ip -n "$ns_a" link set ka0 up
    ip -n "$ns_b" link set kb0 up
}

teardown_topology() {
    for ns in "$ns_a" "$ns_b"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

# capture NAME SECONDS: runs keepalived with $work/NAME.conf for SECONDS, then stops it.
# (Called in the main shell, not in a pipeline, so the traps see the PIDs it starts.)
capture() {
    local name=$1 secs=$2
    local conf="$work/$name.conf" pcap="$out/keepalived-$name.pcap"
    setup_topology
    rm -f "$pcap"
    ip netns exec "$ns_b" tcpdump -i kb0 -U -n -s 256 -w "$pcap" \
        'ip proto 112 or ip6 proto 112' 2>"$work/$name.tcpdump.log" &
    dump_pid=$!
    nap 1
    # -n: stay in the foreground so $! is keepalived's main process; -P: VRRP only.
    ip netns exec "$ns_a" keepalived -n -P -l -f "$conf" \
        -p "$work/$name.ka.pid" -r "$work/$name.vrrp.pid" -c "$work/$name.chk.pid" \
        >"$work/$name.keepalived.log" 2>&1 &
    ka_pid=$!
    nap "$secs"
    kill -TERM "$ka_pid"
    for _ in $(seq 50); do kill -0 "$ka_pid" 2>/dev/null || break; sleep 0.1; done
    wait "$ka_pid" 2>/dev/null || true
    ka_pid=""
    sleep 0.5
    kill -INT "$dump_pid"
    wait "$dump_pid" 2>/dev/null || true
    dump_pid=""
    teardown_topology
    local n
    n=$(tshark -r "$pcap" -Y vrrp 2>/dev/null | wc -l)
    if [ "$n" -lt 2 ]; then
        echo "$name: only $n VRRP packets captured; keepalived said:" >&2
        cat "$work/$name.keepalived.log" >&2
        exit 1
    fi
    echo "$name: $n adverts -> $pcap"
}

# instance NAME VRID PRIO INTERVAL BODY... prints one vrrp_instance block.
instance() {
    local vrid=$1 prio=$2 interval=$3
    shift 3
    cat <<EOF
vrrp_instance VI_$vrid {
    state MASTER
    interface ka0
    virtual_router_id $vrid
    priority $prio
    advert_int $interval
$(printf '    %s\n' "$@")
}
EOF
}

globals() {
    cat <<EOF
global_defs {
    router_id capture
    vrrp_version $1
    enable_script_security
}
EOF
}

auth='authentication {' ; auth2='    auth_type PASS' ; auth3='    auth_pass 123456' ; auth4='}'
uni4=('unicast_src_ip 192.0.2.1' 'unicast_peer {' '    192.0.2.2' '}')
uni6=('unicast_src_ip 2001:db8::1' 'unicast_peer {' '    2001:db8::2' '}')

# The seed's active-standby master, on TEST-NET: v2, PASS auth, unicast.
{ globals 2; instance 101 100 1 "$auth" "$auth2" "$auth3" "$auth4" "${uni4[@]}" \
    'virtual_ipaddress {' '    192.0.2.200' '}'; } >"$work/v2-pass-unicast.conf"
capture v2-pass-unicast 6
# v2, PASS auth, multicast.
{ globals 2; instance 101 100 1 "$auth" "$auth2" "$auth3" "$auth4" \
    'virtual_ipaddress {' '    192.0.2.200' '}'; } >"$work/v2-pass-multicast.conf"
capture v2-pass-multicast 6
# v2 without authentication, multicast, two VIPs, 2 s interval.
{ globals 2; instance 7 150 2 'virtual_ipaddress {' '    192.0.2.200' '    192.0.2.201' '}'; } >"$work/v2-noauth-multicast.conf"
capture v2-noauth-multicast 9
# v3 IPv4 (RFC 5798 pseudo-header checksum), multicast, 1 s.
{ globals 3; instance 102 100 1 'virtual_ipaddress {' '    192.0.2.201' '}'; } >"$work/v3-ipv4-multicast.conf"
capture v3-ipv4-multicast 6
# v3 IPv4, unicast: the pseudo-header holds the peer's address.
{ globals 3; instance 102 100 0.5 "${uni4[@]}" 'virtual_ipaddress {' '    192.0.2.201' '}'; } >"$work/v3-ipv4-unicast.conf"
capture v3-ipv4-unicast 4
# v3 IPv4 unicast with keepalived's pre-1.3.6 checksum (old_unicast_checksum): the pseudo-header
# holds the multicast group 224.0.0.18 although the packet goes to the peer.
{ globals 3; instance 102 100 0.5 "${uni4[@]}" 'old_unicast_checksum' \
    'virtual_ipaddress {' '    192.0.2.201' '}'; } >"$work/v3-ipv4-unicast-old-checksum.conf"
capture v3-ipv4-unicast-old-checksum 4
# v3 IPv6, multicast to ff02::12 from the link-local address, 0.5 s, two VIPs.
{ globals 3; instance 103 200 0.5 'virtual_ipaddress {' '    2001:db8::100/64' \
    '    2001:db8::101/64' '}'; } >"$work/v3-ipv6-multicast.conf"
capture v3-ipv6-multicast 4
# v3 IPv6, unicast.
{ globals 3; instance 103 200 0.5 "${uni6[@]}" 'virtual_ipaddress {' '    2001:db8::100/64' '}'; } >"$work/v3-ipv6-unicast.conf"
capture v3-ipv6-unicast 4

summary="$out/keepalived-adverts.txt"
{
    echo "# keepalived adverts captured by scripts/capture-keepalived-adverts.sh"
    echo "# $(keepalived --version 2>&1 | head -1); tshark's decode, for review."
    echo "# file frame src dst ttl/hlim version vrid priority interval(v2 s|v3 cs) auth checksum"
    echo "# checksum-status (tshark, RFC checksum): 1 good, 0 bad"
    for f in "$out"/keepalived-*.pcap; do
        tshark -r "$f" -Y vrrp -o vrrp.v3_checksum_as_in_v2:FALSE -T fields -E separator=' ' \
            -e frame.number -e ip.src -e ipv6.src -e ip.dst -e ipv6.dst -e ip.ttl -e ipv6.hlim \
            -e vrrp.version -e vrrp.virt_rtr_id -e vrrp.prio -e vrrp.adver_int \
            -e vrrp.short_adver_int -e vrrp.auth_type -e vrrp.checksum -e vrrp.checksum.status \
            2>/dev/null | tr -s ' ' | sed "s|^|$(basename "$f") |"
    done
} >"$summary"
echo "summary -> $summary"

# Seed corpus for the decoder's fuzz target (the default output directory only).
if [ $# -eq 0 ] && command -v python3 >/dev/null; then
    "$(dirname "$0")/fuzz-seeds-from-pcaps.py"
fi
