#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The Debian package under a real systemd: boots Debian 12's 6.1 kernel under qemu on the
# same root filesystem as test_suite_6_1.sh, with systemd as PID 1, and runs
# tests/kernels/systemd_unit.py there (dpkg -i, systemctl enable --now, sessions under
# the unit's sandbox, reload, watchdog, upgrade, stop, dpkg -r). Verdicts are prefixed
# "6.1:" like the suite's.
set -u
cd "$(dirname "$0")/../.." || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP 6.1:systemd_unit: needs root (qemu, debootstrap, the package)"
	exit 0
fi
# The package the VM installs: the one make deb builds from this tree.
if ! out=$(make --no-print-directory deb 2>&1); then
	echo "FAIL 6.1:systemd_unit: make deb failed: $(printf '%s\n' "$out" | tail -n 3 | tr '\n' ' ')"
	exit 1
fi
VM_TIMEOUT=${VM_TIMEOUT:-900} exec tests/kernels/test_suite_6_1.sh systemd
