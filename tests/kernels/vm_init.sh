#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# PID 1 of the VM that tests/kernels/test_suite_6_1.sh boots: sets up what an installed
# Debian system has (proc, sys, devpts, tmpfs, cgroup v2, bpffs, loopback, a machine id),
# runs tests/run.sh on the repository copy, and powers off. Everything it says goes to
# the serial console; lines starting with @@ are markers for the host.
# Arguments: repository path, seconds the tests may take, test groups...
repo=$1 budget=$2
shift 2
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
mark() { echo "@@SW $*"; }
mark_machine() { # what the host checks the VM by (needs /proc)
	mark kernel "$(uname -r)"
	mark cpus "$(nproc)" mem_kb "$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)"
}
off() {
	sync
	echo o > /proc/sysrq-trigger # power off now: PID 1 must not exit
	sleep 30
}

if [ "$*" = systemd ]; then
	# The installed package under a real systemd as PID 1: the root disk (a snapshot)
	# gets one unit that runs tests/kernels/vm_systemd.sh once the system is up;
	# systemd mounts, loads and starts everything else as on any Debian 12 host.
	mount -t proc proc /proc
	mount -o remount,rw /
	mark_machine
	cat > /etc/systemd/system/sw-vmtest.service <<EOF
[Unit]
Description=smtpwatch tests under systemd
Wants=multi-user.target
After=multi-user.target
[Service]
Type=oneshot
WorkingDirectory=$repo
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
Environment=HOME=/root LANG=C.UTF-8 TERM=dumb
ExecStart=/bin/bash tests/kernels/vm_systemd.sh $budget
EOF
	# The serial console is the tests' own: no login prompt on it.
	ln -sf /dev/null /etc/systemd/system/serial-getty@ttyS0.service
	ln -sf /dev/null /etc/systemd/system/getty@tty1.service
	tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
	: > /etc/smtpwatch-vm-test # tests/kernels/systemd_unit.py runs only where this is
	umount /proc
	exec /lib/systemd/systemd --unit=sw-vmtest.service
	mount -t proc proc /proc
	mark no_systemd
	off
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
mount -o remount,rw /
echo 1 > /proc/sys/kernel/printk # kernel messages stay out of the results
hostname "$(cat /etc/hostname)"
tr -d - < /proc/sys/kernel/random/uuid > /etc/machine-id
ip link set lo up
# What the agent attaches through: Debian builds these as modules (the kernel would
# request them too; loaded here so that a missing one is named).
for m in sch_ingress cls_bpf veth; do
	modprobe "$m" || mark modprobe_failed "$m"
done
mark_machine

cd "$repo" || { mark no_repo "$repo"; off; }
mark suite_begin "$(cut -d' ' -f1 /proc/uptime)"
if [ -f build/vm-script.sh ]; then
	timeout -k 10 "$budget" bash build/vm-script.sh 2>&1
else
	timeout -k 10 "$budget" tests/run.sh "$@" 2>&1
fi
mark suite_end "rc=$?" "$(cut -d' ' -f1 /proc/uptime)"
off
