#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The root filesystem the integration suite runs from inside a VM: Debian 12 (bookworm,
# minbase) from the mirror apt uses here, with the tools the suite drives, the libraries
# build/smtpwatch and build/tests/* link, and the modules of the kernel the VM boots.
# Written as an ext4 image with mke2fs -d (nothing is mounted) and cached in
# build/kernels/ under a key of everything that goes in: reruns take no time.
# Usage: tests/kernels/vm_rootfs.sh KERNEL_VERSION
# Prints the image's path on stdout; progress and errors on stderr; exit 0 or 1.
set -euo pipefail
cd "$(dirname "$0")/../.."
kver=${1:?usage: $0 KERNEL_VERSION}
suite=bookworm
out=build/kernels
moddir=/lib/modules/$kver

# What the tests run: the packages scripts/install-deps.sh installs here, less those
# only the build and this VM's host need; plus binutils (strip, for `make deb`), man-db
# (the man page test), systemd (systemd-analyze) and procps, which a full system has.
host_only='^(clang|llvm|gcc|pkg-config|.*-dev|qemu-system-.*|busybox-static|linux-image-.*|cpio)$'
pkgs=(binutils man-db systemd procps)

die() { echo "vm_rootfs: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap)"
[ -f "$moddir/modules.dep" ] || die "$moddir/modules.dep missing"
for t in debootstrap mke2fs python3 dpkg; do
	command -v "$t" >/dev/null || die "$t missing: run scripts/install-deps.sh"
done

deps=$(sed -n '/^pkgs=(/,/)/p' scripts/install-deps.sh | sed 's/^pkgs=(//; s/)//' |
	tr -s ' \t' '\n\n' | grep -vE "$host_only" | grep .) || die "no pkgs=(...) in scripts/install-deps.sh"
pkgs+=($deps)
# The Debian packages that own each shared library the built programs load, so the
# same binaries run unchanged in the VM.
libs=$(for b in build/smtpwatch build/tests/*; do
	if [ -f "$b" ] && [ -x "$b" ]; then
		ldd "$b" 2>/dev/null | grep -o '=> /[^ ]*' | cut -c4- || true # static: none
	fi
done | xargs -r readlink -f | sort -u)
libpkgs=()
for lib in $libs; do
	# dpkg knows a library by the path its package ships, with or without /usr.
	p=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null) ||
		die "no Debian package owns $lib (loaded by build/smtpwatch or build/tests/*)"
	libpkgs+=("${p%%:*}")
done
mapfile -t include < <(printf '%s\n' "${pkgs[@]}" "${libpkgs[@]}" | sort -u)

# The mirror, found as test_package finds it: from this machine's apt sources.
url=$(python3 -c 'import sys; sys.path.insert(0, "tests/integration")
import test_package; print(test_package.mirror())') || die "cannot read the apt sources"

key=$( { echo "$suite $url $kver"; printf '%s\n' "${include[@]}"; cat tests/kernels/vm_rootfs.sh; } |
	sha1sum | cut -c1-12)
img=$out/rootfs-$suite-$key.img
mkdir -p "$out"
exec 9>"$out/.rootfs.lock"
flock 9 # two runs do not build at once; the second finds the image made
if [ -f "$img" ]; then
	echo "$img"
	exit 0
fi

stage=$out/rootfs-$suite-$key.d
log=$out/rootfs-$suite-$key.log
# A build killed half way may have left debootstrap's /proc and /sys mounted in there.
unmount_stage() {
	{ grep -o " $PWD/$stage/[^ ]*" /proc/self/mounts || true; } | sort -r | xargs -r -n1 umount -l
}
unmount_stage
rm -rf --one-file-system "$stage"
t0=$SECONDS
echo "vm_rootfs: debootstrap $suite from $url with ${#include[@]} packages (log $log)" >&2
# debootstrap installs with policy-rc.d and a fake start-stop-daemon: no daemon starts.
if ! timeout 1200 debootstrap --variant=minbase --include="$(IFS=,; echo "${include[*]}")" \
	"$suite" "$stage" "$url" >"$log" 2>&1; then
	tail -n 5 "$log" >&2
	unmount_stage
	rm -rf --one-file-system "$stage"
	die "debootstrap failed (see $log)"
fi
t_boot=$((SECONDS - t0))

# The kernel's modules, so that modprobe and the kernel's own module requests (nftables
# expressions, overlayfs, veth, clsact) work as on an installed system.
mkdir -p "$stage/usr/lib/modules"
cp -a "$moddir" "$stage/usr/lib/modules/" || die "cannot copy $moddir"
rm -f "$stage/usr/lib/modules/$kver/build" "$stage/usr/lib/modules/$kver/source"
echo vm-6-1 > "$stage/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tvm-6-1\n::1\tlocalhost ip6-localhost\n' > "$stage/etc/hosts"
: > "$stage/etc/machine-id" # filled at boot
rm -rf "$stage/var/cache/apt/archives/"*.deb "$stage/var/lib/apt/lists/"* "$stage/debootstrap"

# Sparse: the free space costs nothing on disk; the VM writes to a snapshot anyway.
used=$(du -sm "$stage" | cut -f1)
if ! mke2fs -q -t ext4 -L sw-root -E root_owner=0:0 -d "$stage" "$img.tmp" \
	"$((used * 3 / 2 + 2048))M" >>"$log" 2>&1; then
	rm -f "$img.tmp"
	die "mke2fs -d failed (see $log)"
fi
mv "$img.tmp" "$img"
rm -rf --one-file-system "$stage"
# Older images and logs are of a package list or a recipe no longer used.
for old in "$out"/rootfs-$suite-*.img "$out"/rootfs-$suite-*.log; do
	[ "${old%.*}" = "${img%.img}" ] || rm -f "$old"
done
echo "vm_rootfs: $img: debootstrap ${t_boot}s, image $((SECONDS - t0))s, ${used} MiB" >&2
echo "$img"
