#!/bin/sh
# /init of the node-plugin test guest (busybox sh): the kernel initiator and
# the host tools, no test scenario. Everything the test does arrives through
# the command agent (agent.sh), the way a node plugin in a pod reaches its host
# through nsenter.
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /run
mkdir -p /run/lock/iscsi /tmp /etc/iscsi/nodes /etc/iscsi/send_targets /etc/iscsi/ifaces /etc/iscsi/isns /etc/iscsi/static
[ -e /dev/console ] && exec </dev/console >/dev/console 2>&1
say() { echo "TRIREME-VM: $*"; }
fail() { say "FAILED: $*"; poweroff -f; echo o > /proc/sysrq-trigger; sleep 60; }

# The agent port and initiator name come from the kernel command line.
AGENT_PORT=7000
INITIATOR=iqn.2026-11.io.trireme.test:vm-node
for arg in $(cat /proc/cmdline); do
    case $arg in
        trireme.agent_port=*) AGENT_PORT=${arg#*=} ;;
        trireme.initiator=*) INITIATOR=${arg#*=} ;;
    esac
done

for m in virtio_pci virtio_net crc32c_generic sd_mod iscsi_tcp ext4 xfs; do
    modprobe "$m" || fail "modprobe $m"
done
modprobe crc32c_intel 2>/dev/null
i=0; while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
[ -e /sys/class/net/eth0 ] || fail "no eth0"
ip link set lo up
ip link set eth0 up
# qemu user-mode networking: the guest is 10.0.2.15, the host's loopback is 10.0.2.2.
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

echo "InitiatorName=$INITIATOR" > /etc/iscsi/initiatorname.iscsi
/usr/sbin/iscsid -f > /tmp/iscsid.log 2>&1 &
ISCSID=$!
# iscsid is ready when its abstract IPC socket listens.
i=0; while ! grep -q ISCSIADM_ABSTRACT_NAMESPACE /proc/net/unix && [ $i -lt 100 ]; do usleep 100000; i=$((i + 1)); done
kill -0 "$ISCSID" 2>/dev/null && grep -q ISCSIADM_ABSTRACT_NAMESPACE /proc/net/unix || fail "iscsid did not start: $(cat /tmp/iscsid.log)"

/trireme/by-path.sh &
# -ll: keep listening and fork one agent per connection, so a long mkfs does not
# hold up a concurrent stats call.
nc -ll -p "$AGENT_PORT" -e /trireme/agent.sh &
say "agent ready on port $AGENT_PORT, kernel $(uname -r), initiator $INITIATOR"
while :; do sleep 3600; done
