#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run by the sw-vmtest unit that tests/kernels/vm_init.sh writes when the VM boots
# systemd as PID 1 (test group "systemd"): runs that group, then powers the VM off.
# Lines starting with @@ are markers for the host. Argument: seconds the tests may take.
budget=$1
mark() { echo "@@SW $*"; }
mark suite_begin "$(cut -d' ' -f1 /proc/uptime)"
timeout -k 10 "$budget" tests/run.sh systemd 2>&1
mark suite_end "rc=$?" "$(cut -d' ' -f1 /proc/uptime)"
sync
echo o > /proc/sysrq-trigger # now, not through a clean shutdown: the disk is a snapshot
