# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Sourced by the 6.1 kernel tests: finds what a VM of Debian 12's cloud kernel needs, or
# calls the caller's skip_all with the reason. Sets kernel, kver, moddir and busybox.
find_vm_kernel() {
	local b
	[ "$(id -u)" -eq 0 ] || skip_all "needs root ($1)"
	command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 missing (Debian package qemu-system-x86)"
	kernel=$(ls /boot/vmlinuz-6.1*cloud* 2>/dev/null | sort -V | tail -n 1)
	[ -n "$kernel" ] || skip_all "no /boot/vmlinuz-6.1*cloud* (Debian package linux-image-cloud-amd64 on Debian 12)"
	kver=${kernel#/boot/vmlinuz-}
	moddir=/lib/modules/$kver
	[ -f "$moddir/modules.dep" ] || skip_all "$moddir/modules.dep missing for $kernel"
	busybox=
	for b in /bin/busybox /usr/bin/busybox; do
		# Its applets run before any library is there: only a static busybox will do.
		if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
	done
	[ -n "$busybox" ] || skip_all "no static busybox (Debian package busybox-static)"
}
