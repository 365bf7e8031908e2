#!/usr/bin/env bash
# A rehearsal cluster on one machine: N test hosts, each a Linux network namespace (plus its own UTS and mount
# namespaces) with a veth to a bridge, an address in 10.231.0.0/24, a hostname in a hosts file, and an sshd
# that listens only on that address with generated keys. The bridge lives in its own namespace (sy-switch),
# so nothing is added to the machine's own network stack and no traffic leaves these namespaces.
#
#   testbed.sh up [N]          create N hosts (default 3: syhost0 the head, syhost1.. workers); idempotent
#   testbed.sh down            remove every namespace, process and file the testbed made; idempotent
#   testbed.sh status          list the hosts, their sshd and their eth0 counters
#   testbed.sh exec I CMD...   run CMD on host I (its network, hostname and /etc/hosts), e.g. mpiexec
#   testbed.sh link I up|down  raise or cut host I's link (the fault tests)
#   testbed.sh counters I      host I's eth0 "rx_bytes tx_bytes"
#   testbed.sh procs I         processes in host I's network namespace, but its sshd ("PID ARGS" lines)
#   testbed.sh kill I PATTERN  SIGKILL host I's processes whose command line contains PATTERN (the fault tests)
#
# mpiexec runs on host 0 and starts the others through Hydra's ssh launcher with Scripts/testbed/ssh (ssh with
# the testbed's keys and known hosts): see Docs/CLUSTER.md and Cluster/testbed.hosts. Needs root (or
# CAP_SYS_ADMIN + CAP_NET_ADMIN), iproute2, util-linux and openssh-server; refuses clearly without them.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
STATE=${SY_TESTBED_DIR:-/run/switchyard-testbed}
NET=10.231.0
SWITCH=sy-switch

die() { echo "testbed: $*" >&2; exit 2; }
ns() { echo "sy-h$1"; }
addr() { echo "$NET.$((10 + $1))"; }
sshd_pid() { cat "$STATE/h$1/sshd.pid" 2>/dev/null || true; }

preflight() {
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces, veth links and sshd); run it as root"
    for c in ip unshare nsenter ssh-keygen ssh; do command -v "$c" >/dev/null || die "missing $c (Debian: iproute2, util-linux, openssh-client)"; done
    [ -x /usr/sbin/sshd ] || die "missing /usr/sbin/sshd (Debian: apt-get install openssh-server)"
    if ! ip netns list >/dev/null 2>&1 || ! ip netns add sy-probe 2>/dev/null; then
        die "network namespaces are not allowed here (ip netns add failed: a container without CAP_SYS_ADMIN?)"
    fi
    ip netns del sy-probe
}

# One host: namespace, veth to the bridge, address, hosts file, sshd in fresh UTS + mount namespaces.
host_up() {
    local i=$1 n; n=$(ns "$i")
    ip netns list | grep -qw "$n" || ip netns add "$n"
    if ! ip -n "$n" link show eth0 >/dev/null 2>&1; then
        ip -n "$SWITCH" link del "veth-h$i" 2>/dev/null || true
        ip link add "veth-h$i" netns "$SWITCH" type veth peer name eth0 netns "$n"
        ip -n "$SWITCH" link set "veth-h$i" master sybr0 up
        ip -n "$n" addr add "$(addr "$i")/24" dev eth0
    fi
    ip -n "$n" link set lo up
    ip -n "$n" link set eth0 up
    mkdir -p "/etc/netns/$n" "$STATE/h$i"
    cp "$STATE/hosts" "/etc/netns/$n/hosts"
    [ -f "$STATE/h$i/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N "" -C "syhost$i" -f "$STATE/h$i/ssh_host_ed25519_key"
    cat > "$STATE/h$i/sshd_config" <<EOF
ListenAddress $(addr "$i")
Port 22
HostKey $STATE/h$i/ssh_host_ed25519_key
PidFile $STATE/h$i/sshd.pid
AuthorizedKeysFile $STATE/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitUserEnvironment no
MaxStartups 64
# A session whose client is unreachable (the link-down fault) ends after ~6 s instead of lingering.
ClientAliveInterval 2
ClientAliveCountMax 3
LogLevel ERROR
EOF
    local pid; pid=$(sshd_pid "$i")
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
        mkdir -p /run/sshd
        # ip netns exec gives a mount namespace with /etc/netns/$n/hosts as /etc/hosts; unshare a UTS
        # namespace so each host has its own hostname (MPICH and UCX tell nodes apart by it).
        ip netns exec "$n" unshare --uts sh -c "hostname syhost$i && exec /usr/sbin/sshd -f $STATE/h$i/sshd_config -E $STATE/h$i/sshd.log"
        for _ in $(seq 50); do [ -s "$STATE/h$i/sshd.pid" ] && break; sleep 0.1; done
    fi
    echo "$(addr "$i") $(cat "$STATE/h$i/ssh_host_ed25519_key.pub" | cut -d' ' -f1,2)" | sed "s/^/syhost$i,/"
}

up() {
    local count=${1:-3}
    [ "$count" -ge 1 ] && [ "$count" -le 32 ] || die "host count must be 1..32 (got $count)"
    preflight
    mkdir -p "$STATE"
    chmod 700 "$STATE"
    ip netns list | grep -qw "$SWITCH" || ip netns add "$SWITCH"
    ip -n "$SWITCH" link show sybr0 >/dev/null 2>&1 || ip -n "$SWITCH" link add sybr0 type bridge
    ip -n "$SWITCH" link set sybr0 up
    [ -f "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N "" -C switchyard-testbed -f "$STATE/id_ed25519"
    cp "$STATE/id_ed25519.pub" "$STATE/authorized_keys"
    { echo "127.0.0.1 localhost"; for i in $(seq 0 $((count - 1))); do echo "$(addr "$i") syhost$i"; done; } > "$STATE/hosts"
    : > "$STATE/known_hosts.new"
    for i in $(seq 0 $((count - 1))); do host_up "$i" >> "$STATE/known_hosts.new"; done
    mv "$STATE/known_hosts.new" "$STATE/known_hosts"
    cat > "$STATE/ssh_config" <<EOF
Host syhost*
    User root
    IdentityFile $STATE/id_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $STATE/known_hosts
    StrictHostKeyChecking yes
    BatchMode yes
    ConnectTimeout 5
    ServerAliveInterval 2
    ServerAliveCountMax 3
    LogLevel ERROR
EOF
    echo "$count" > "$STATE/count"
    # Every host must answer ssh from the head before the testbed counts as up.
    for i in $(seq 0 $((count - 1))); do
        local got; got=$(run_on 0 "$ROOT/Scripts/testbed/ssh" "syhost$i" hostname 2>&1) || die "ssh from syhost0 to syhost$i failed: $got"
        [ "$got" = "syhost$i" ] || die "ssh to syhost$i answered '$got'"
    done
    echo "testbed: $count hosts up (syhost0..syhost$((count - 1)), $NET.10-$((10 + count - 1)), state in $STATE)"
}

down() {
    local n
    for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^sy-h[0-9]+$' || true); do
        local i=${n#sy-h} pid; pid=$(sshd_pid "$i")
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
        # Anything else still running in the host's namespace (ranks, proxies) goes too.
        for p in $(ip netns pids "$n" 2>/dev/null || true); do kill -9 "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
        rm -rf "/etc/netns/$n"
    done
    ip netns del "$SWITCH" 2>/dev/null || true
    rm -rf "$STATE"
    echo "testbed: down"
}

# run_on I CMD...: CMD inside host I's network, UTS and mount namespaces (those of its sshd).
run_on() {
    local i=$1; shift
    local pid; pid=$(sshd_pid "$i")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || die "host $i is not up (testbed.sh up)"
    exec nsenter --target "$pid" --net --uts --mount --wd="$PWD" -- "$@"
}

status() {
    [ -f "$STATE/count" ] || { echo "testbed: down"; return 0; }
    for i in $(seq 0 $(($(cat "$STATE/count") - 1))); do
        local pid; pid=$(sshd_pid "$i")
        echo "syhost$i $(addr "$i") sshd ${pid:-none} eth0 $(ip -n "$(ns "$i")" -o link show eth0 | grep -o 'state [A-Z]*') $(counters "$i")"
    done
}

counters() {
    local n; n=$(ns "$1")
    echo "rx_bytes $(ip netns exec "$n" cat /sys/class/net/eth0/statistics/rx_bytes) tx_bytes $(ip netns exec "$n" cat /sys/class/net/eth0/statistics/tx_bytes)"
}

procs() {
    local pid; pid=$(sshd_pid "$1")
    for p in $(ip netns pids "$(ns "$1")" 2>/dev/null); do
        [ "$p" = "$pid" ] && continue
        local a; a=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) || continue
        [ -n "$a" ] && echo "$p $a"
    done
    return 0
}

cmd=${1:-}; shift || true
case "$cmd" in
    up) up "${1:-3}" ;;
    down) down ;;
    status) status ;;
    exec) [ $# -ge 2 ] || die "usage: testbed.sh exec I CMD..."; run_on "$@" ;;
    link) [ $# -eq 2 ] && [[ "$2" =~ ^(up|down)$ ]] || die "usage: testbed.sh link I up|down"; ip -n "$(ns "$1")" link set eth0 "$2" ;;
    counters) [ $# -eq 1 ] || die "usage: testbed.sh counters I"; counters "$1" ;;
    procs) [ $# -eq 1 ] || die "usage: testbed.sh procs I"; procs "$1" ;;
    kill) [ $# -eq 2 ] || die "usage: testbed.sh kill I PATTERN"
          procs "$1" | grep -F -- "$2" | grep -v "testbed.sh" | awk '{print $1}' | xargs -r kill -9 ;;
    *) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
