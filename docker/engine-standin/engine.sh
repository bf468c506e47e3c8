#!/usr/bin/env bash
# Starts dockerd inside the container. Not --privileged (the machines this is tested on
# cannot give a container every capability): all capabilities but CAP_SYS_RESOURCE,
# unconfined seccomp/AppArmor/system paths, the host's cgroup namespace; this script then
# mounts the cgroup hierarchies writable, as Docker's own dind script does.
# Its containers resolve names (the stack's services) through the outer network's DNS:
# Docker's embedded resolver at 127.0.0.11, which they cannot reach (their loopback is
# their own), so dnsmasq forwards to it from this namespace's address (eth0's). And the
# inner engine's resolver forwards single-label names (`prefect-server`) only when the
# host's resolv.conf sets no options: the outer one's `ndots:0` goes.
set -euo pipefail
if ! touch /sys/fs/cgroup/cpu/.writable 2>/dev/null; then
  umount -R /sys/fs/cgroup
  mount -t tmpfs -o mode=755 cgroup_root /sys/fs/cgroup
  # One mount per hierarchy (controllers sharing one are mounted together).
  awk -F: '$2 != "" {print $2}' /proc/self/cgroup | while read -r controllers; do
    dir="/sys/fs/cgroup/${controllers#name=}"
    mkdir -p "$dir"
    mount -t cgroup -o "$controllers" cgroup "$dir"
    # The usual names for co-mounted controllers (cpu,cpuacct -> cpu and cpuacct).
    for one in ${controllers//,/ }; do
      [ "$one" = "$controllers" ] || [ -e "/sys/fs/cgroup/$one" ] || ln -s "$controllers" "/sys/fs/cgroup/$one"
    done
  done
fi
mount --make-rshared /
address="$(ip -4 -o addr show dev eth0 | awk '{split($4, a, "/"); print a[1]; exit}')"
grep -v '^options' /etc/resolv.conf > /tmp/resolv.conf
cat /tmp/resolv.conf > /etc/resolv.conf
dnsmasq --keep-in-foreground --listen-address="$address" --bind-interfaces \
  --no-resolv --no-hosts --server=127.0.0.11 --user=root &
mkdir -p /run/engine
exec dockerd --host unix:///var/run/docker.sock --host unix:///run/engine/docker.sock \
  --dns "$address" --log-level warn "$@"
