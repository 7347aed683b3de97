#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The whole integration suite, and the BPF packet tests, on Debian 12's kernel: boots
# /boot/vmlinuz-6.1.*-cloud-amd64 under qemu (TCG: no KVM needed) on a Debian 12 root
# filesystem (tests/kernels/vm_rootfs.sh, cached in build/kernels/) and runs
# `tests/run.sh bpf integration` there, on a copy of this tree with the very
# build/smtpwatch and build/tests/* built here. Each verdict comes back over the serial
# console as it is printed, its name prefixed with "6.1:" so that it counts apart from
# the host's. The VM has no network device: its traffic stays inside it.
# Usage: tests/kernels/test_suite_6_1.sh [GROUP...]   (default: bpf integration; "systemd"
# alone boots systemd as PID 1 instead: see test_unit_systemd_6_1.sh)
# Environment: VM_TIMEOUT (seconds for the whole run, default 2400), VM_MEM (MiB, 2048),
# VM_SCRIPT (a bash script run in the tree in the VM instead of tests/run.sh: to debug).
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(bpf integration)
tag=6.1
vm_timeout=${VM_TIMEOUT:-2400}
t0=$SECONDS

skip_all() { echo "SKIP $tag:suite: $*"; exit 0; }
fail_all() { echo "FAIL $tag:suite: $*"; exit 1; }

. tests/kernels/vm_kernel.sh
find_vm_kernel "debootstrap, device nodes, /boot readable"
for t in python3 cpio gzip mke2fs debugfs debootstrap; do
	command -v "$t" >/dev/null || fail_all "$t missing: run scripts/install-deps.sh"
done
[ -x build/smtpwatch ] || fail_all "build/smtpwatch missing: run make"
[ -x build/tests/smtp_peer ] || fail_all "build/tests/smtp_peer missing: run make tests-build"

# ---- root filesystem (cached) ----
out=$root/build/kernels
mkdir -p "$out" && run=$(mktemp -d "$out/suite.XXXXXX") ||
	fail_all "cannot create a run directory in $out"
trap 'rm -rf "$run"' EXIT
# Runs cut short by a signal leave theirs; none lasts an hour.
find "$out" -maxdepth 1 -name 'suite.*' -mmin +120 -exec rm -rf {} + 2>/dev/null
img=$(tests/kernels/vm_rootfs.sh "$kver" 2>"$run/rootfs.err") ||
	fail_all "no root filesystem: $(tail -n 3 "$run/rootfs.err" | tr '\n' ' ')"
t_rootfs=$((SECONDS - t0))

# ---- the tree, as a second disk mounted at /smtpwatch in the VM ----
# The working tree as it is now (new tests included), and what the tests and `make deb`
# take from build/. Build outputs are made newer than every source so that make in the
# VM, which has no compiler, finds them up to date.
tb=$SECONDS
src=$run/tree
mkdir -p "$src/build"
tar -C "$root" --exclude=./.git --exclude=./build --exclude='__pycache__' -cf - . |
	tar -C "$src" -xf - || fail_all "cannot copy the tree"
(cd "$root/build" && tar -cf - smtpwatch ./*.bpf.o ./*.skel.h ./*.deb agent tests 2>/dev/null) |
	tar -C "$src/build" -xf - || fail_all "cannot copy build/"
find "$src/build" -exec touch -h {} + || fail_all "cannot touch build outputs"
if [ -n "${VM_SCRIPT:-}" ]; then
	cp "$VM_SCRIPT" "$src/build/vm-script.sh" || fail_all "cannot copy $VM_SCRIPT"
fi
size=$(($(du -sm "$src" | cut -f1) + 1024))
mke2fs -q -t ext4 -L sw-tree -E root_owner=0:0 -d "$src" "$run/tree.img" "${size}M" \
	>"$run/mke2fs.log" 2>&1 || fail_all "mke2fs -d of the tree failed: $(tail -n 2 "$run/mke2fs.log")"
rm -rf "$src"

# ---- test_package's cached Debian root, when there is one, as read-only disks ----
# The VM has no network to debootstrap from; with the root the host made, test_package
# installs the .deb in the VM as it does here.
ro_names=()
ro_drives=()
if [ -d build/debootstrap ]; then
	exec 8>build/debootstrap/.lock
	flock 8 # test_package takes it while it writes a root
	for d in build/debootstrap/*/; do
		d=${d%/}
		name=$(basename "$d")
		[ -f "$d/.complete" ] || continue
		dimg=$out/debootstrap-$name.img
		if [ ! -f "$dimg" ] || [ "$d/.complete" -nt "$dimg" ]; then
			rm -f "$dimg"
			mke2fs -q -t ext4 -E root_owner=0:0 -d "$d" "$dimg.tmp" \
				"$(($(du -sm "$d" | cut -f1) * 3 / 2 + 64))M" >"$run/mke2fs-ro.log" 2>&1 &&
				mv "$dimg.tmp" "$dimg" ||
				fail_all "mke2fs -d of $d failed: $(tail -n 2 "$run/mke2fs-ro.log")"
		fi
		ro_names+=("$name")
		ro_drives+=(-drive "file=$dimg,format=raw,if=virtio,readonly=on")
	done
	exec 8>&-
fi
for dimg in "$out"/debootstrap-*.img; do # roots test_package no longer uses
	[ -e "$dimg" ] || continue
	n=${dimg#"$out"/debootstrap-}
	[ -f "build/debootstrap/${n%.img}/.complete" ] || rm -f "$dimg"
done

# ---- initramfs: loads the virtio disk driver, mounts the disks, hands over ----
r=$run/initramfs
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,newroot}
install -m 0755 "$busybox" "$r/bin/busybox"
mknod -m 600 "$r/dev/console" c 5 1
mknod -m 666 "$r/dev/null" c 1 3
declare -A seen=()
order=()
add_module() { # path relative to $moddir as modules.dep writes it; dependencies first
	local path=$1 line d
	[ -n "${seen[$path]:-}" ] && return 0
	seen[$path]=1
	line=$(grep -E "^${path//./\\.}:" "$moddir/modules.dep" | head -n 1)
	for d in $(echo ${line#*:} | tr ' ' '\n' | tac); do add_module "$d"; done
	order+=("$path")
}
for m in virtio_pci virtio_blk; do
	line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n 1)
	if [ -z "$line" ]; then
		grep -qE "(^|/)$m\.ko" "$moddir/modules.builtin" 2>/dev/null && continue
		fail_all "module $m is neither in $moddir/modules.dep nor built in"
	fi
	add_module "${line%%:*}"
done
: > "$r/etc/modules"
for p in "${order[@]}"; do
	dst=/lib/modules/$(basename "${p%.ko*}").ko
	mkdir -p "$r/lib/modules"
	case $p in # busybox insmod reads plain ELF only
	*.ko) cp "$moddir/$p" "$r$dst" ;;
	*.ko.xz) xz -dc "$moddir/$p" > "$r$dst" ;;
	*.ko.zst) zstd -q -dc "$moddir/$p" > "$r$dst" ;;
	*.ko.gz) gzip -dc "$moddir/$p" > "$r$dst" ;;
	*) false ;;
	esac || fail_all "cannot copy or decompress $moddir/$p"
	echo "$dst" >> "$r/etc/modules"
done
cat > "$r/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
fail() { echo "@@SW initramfs_failed $*"; poweroff -f; sleep 30; }
arg() { for w in $(cat /proc/cmdline); do case $w in "$1="*) echo "${w#*=}" ;; esac; done; }
while read -r m; do insmod "$m" || fail "insmod $m"; done < /etc/modules
i=0
disks=$(($(arg swro | tr , ' ' | wc -w) + 2))
while [ "$(ls /dev | grep -c '^vd[a-z]$')" -lt $disks ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
mount -t ext4 /dev/vda /newroot || fail "mount the root disk"
repo=$(arg swrepo)
mkdir -p "/newroot$repo" && mount -t ext4 /dev/vdb "/newroot$repo" || fail "mount the tree disk"
n=0
for name in $(arg swro | tr , ' '); do # vdc, vdd, ...: read-only roots for test_package
	dev=/dev/vd$(echo cdefghij | cut -c$((n + 1)))
	n=$((n + 1))
	mkdir -p "/newroot$repo/build/debootstrap/$name" &&
		mount -t ext4 -o ro "$dev" "/newroot$repo/build/debootstrap/$name" || fail "mount $dev"
done
budget=$(arg swbudget)
groups=$(arg swgroups | tr , ' ')
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /bin/bash "$repo/tests/kernels/vm_init.sh" "$repo" "$budget" $groups
EOF
chmod 0755 "$r/init"
(cd "$r" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$run/initramfs.gz" ||
	fail_all "cannot write the initramfs"
t_prep=$((SECONDS - tb))

# ---- boot; verdicts stream back as the VM prints them ----
log=$run/console.log # this run's own: another run may be going on beside it
tq=$SECONDS
# The tests get the time the VM has, less what booting and powering off take.
budget=$((vm_timeout - 60))
groups_arg=$(IFS=,; echo "${groups[*]}")
# -nic none: no network device, nothing can leave the VM. snapshot=on: the cached root
# image is never written; the tree disk is this run's own.
timeout -k 10 "$vm_timeout" qemu-system-x86_64 -accel tcg -m "${VM_MEM:-2048}" -smp 2 \
	-nographic -no-reboot -nic none \
	-drive "file=$img,format=raw,if=virtio,snapshot=on" \
	-drive "file=$run/tree.img,format=raw,if=virtio" "${ro_drives[@]}" \
	-kernel "$kernel" -initrd "$run/initramfs.gz" \
	-append "console=ttyS0 panic=-1 quiet swrepo=/smtpwatch swbudget=$budget swgroups=$groups_arg swro=$(IFS=,; echo "${ro_names[*]}")" \
	</dev/null 2>&1 | python3 -u -c '
import re, sys
log, tag = sys.argv[1:]
with open(log, "w") as f:
    for raw in sys.stdin.buffer:
        line = raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n")
        f.write(line + "\n")
        f.flush()
        m = re.match(r"(PASS|FAIL|SKIP) (.*)", line)
        if m:
            print(f"{m.group(1)} {tag}:{m.group(2)}", flush=True)
' "$log" "$tag"
qrc=${PIPESTATUS[0]}
t_vm=$((SECONDS - tq))

# ---- what the VM said about itself ----
marks=$(grep -a -o '@@SW .*' "$log" | tr -d '\r')
mark() { printf '%s\n' "$marks" | sed -n "s/^@@SW $1 *//p" | tail -n 1; }
summary=$(grep -a -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
end=$(mark suite_end)
problem=
if [ -z "$(mark kernel)" ]; then
	problem="the VM never ran its init (qemu exit $qrc$(mark initramfs_failed | sed 's/^/, /'))"
elif [ "$(mark kernel)" != "$kver" ]; then
	problem="the VM runs $(mark kernel), not $kver"
elif [ -z "$(mark suite_begin)" ]; then
	problem="the VM stopped before the tests ($(printf '%s\n' "$marks" | tail -n 1))"
elif [ -z "$end" ]; then
	problem="the VM stopped during the tests (qemu exit $qrc$([ "$qrc" = 124 ] && echo ", timeout after ${vm_timeout}s"))"
elif [ "${end%% *}" = rc=124 ]; then
	problem="the tests did not finish within ${budget}s"
elif [ -z "$summary" ]; then
	problem="tests/run.sh printed no summary ($end)"
else
	# Every verdict the VM counted came through the console intact.
	seen="$(grep -a -c '^PASS ' "$log") passed, $(grep -a -c '^FAIL ' "$log") failed, $(grep -a -c '^SKIP ' "$log") skipped"
	[ "$seen" = "$summary" ] || problem="the console carried $seen, the VM's run.sh counted $summary"
fi
for m in modprobe_failed; do
	[ -n "$(mark $m)" ] && problem="${problem:+$problem; }$m $(mark $m)"
done
if [ -n "$problem" ]; then
	echo "FAIL $tag:suite: $problem"
	# Where it stopped: the last test files run.sh began, from its log on the tree disk.
	debugfs -R "cat /build/test.log" "$run/tree.img" 2>/dev/null | grep '^== ' | tail -n 3 |
		sed 's/^/#   ran: /'
fi
# Kept for a look afterwards: the last run's console and the VM's build/test.log.
keep=suite
[ "${groups[*]}" = systemd ] && keep=systemd # the systemd boot's own, beside the suite's
cp "$log" "$out/$keep-6.1-console.log"
debugfs -R "cat /build/test.log" "$run/tree.img" > "$out/$keep-6.1-test.log" 2>/dev/null
echo "# $kver: rootfs ${t_rootfs}s, tree and initramfs ${t_prep}s, VM ${t_vm}s (qemu exit $qrc);" \
	"in the VM: $(mark cpus | sed 's/ mem_kb / CPUs, /') kB, tests from $(mark suite_begin | cut -d' ' -f1)s" \
	"to $(echo "$end" | cut -d' ' -f2)s; VM's run.sh: ${summary:-no summary};" \
	"console $out/$keep-6.1-console.log, VM's test log $out/$keep-6.1-test.log"
[ -z "$problem" ] && [ "${end%% *}" = rc=0 ]
