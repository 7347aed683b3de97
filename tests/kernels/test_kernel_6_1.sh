#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The CO-RE promise on Debian 12's kernel: the very build/smtpwatch built here boots with
# /boot/vmlinuz-6.1.*-cloud-amd64 under qemu (TCG, no KVM needed), attaches (clsact, since
# 6.1 has no tcx), reports IPv4 and IPv6 SMTP sessions with the right process, and detaches
# on SIGTERM. The VM runs from an initramfs built here: static busybox, the agent with the
# exact shared libraries ldd lists, a static smtp_peer, iproute2's tc, and the modules
# (sch_ingress, cls_bpf, veth) that Debian builds as modules. The VM has no network
# device: all its traffic stays on its own loopback.
# Prints PASS/FAIL/SKIP lines for tests/run.sh.
set -u
cd "$(dirname "$0")/../.." || exit 1
root=$PWD
out=$root/build/kernels
tag=kernel_6_1
cases=(loads session_ipv4 session_ipv6 clean_exit no_cgroup2)
helo="kernel-6-1.test"
peer_vm=/usr/local/bin/smtp_peer # where smtp_peer lives inside the VM
t0=$SECONDS

skip_all() { echo "SKIP $tag: $*"; exit 0; }
fail_all() {
	for c in "${cases[@]}"; do echo "FAIL ${tag}_$c: $*"; done
	exit 1
}

. tests/kernels/vm_kernel.sh
find_vm_kernel "device nodes in the initramfs, /boot readable"
for t in python3 cpio gzip gcc ldd; do
	command -v "$t" >/dev/null || fail_all "$t missing: run scripts/install-deps.sh"
done
[ -x build/smtpwatch ] || fail_all "build/smtpwatch missing: run make"
tc_bin=$(command -v tc) || fail_all "tc missing (Debian package iproute2)"

# ---- initramfs ----
rm -rf "$out/root-6.1"
mkdir -p "$out/root-6.1" || fail_all "cannot create $out/root-6.1"
r=$out/root-6.1
mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,proc,sys,dev,run,tmp,root}

gcc -static -O2 -Wall -Wextra -Werror -std=gnu11 -D_GNU_SOURCE \
	tests/tools/smtp_peer.c -o "$out/smtp_peer-static" 2>"$out/smtp_peer-static.log" ||
	fail_all "gcc -static smtp_peer failed: $(tail -n 3 "$out/smtp_peer-static.log")"
install -m 0755 "$out/smtp_peer-static" "$r$peer_vm"
install -m 0755 "$busybox" "$r/bin/busybox"
mknod -m 600 "$r/dev/console" c 5 1
mknod -m 666 "$r/dev/null" c 1 3

# A dynamic program at the same path, with each library and the loader at the path ldd
# names, so the VM's loader finds them exactly as the host's does (no ld.so.cache there).
bundle() { # host path, path inside the VM
	local lib
	mkdir -p "$r$(dirname "$2")"
	cp -L "$1" "$r$2" || return 1
	for lib in $(ldd "$1" | grep -o '/[^ ]*'); do
		[ -e "$r$lib" ] && continue
		mkdir -p "$r$(dirname "$lib")"
		cp -L "$lib" "$r$lib" || return 1
	done
}
bundle "$root/build/smtpwatch" /usr/sbin/smtpwatch || fail_all "cannot bundle build/smtpwatch"
bundle "$tc_bin" /usr/sbin/tc || fail_all "cannot bundle $tc_bin"

# Modules and their dependencies from modules.dep, dependencies first, decompressed
# because busybox insmod reads plain ELF only.
declare -A seen=()
order=()
dep_line() { grep -E "(^|/)$1\.ko(\.[a-z]+)?:" "$moddir/modules.dep" | head -n 1; }
add_module() { # module path relative to $moddir, as modules.dep writes it
	local path=$1 line d deps
	[ -n "${seen[$path]:-}" ] && return 0
	seen[$path]=1
	line=$(grep -E "^${path//./\\.}:" "$moddir/modules.dep" | head -n 1)
	deps=${line#*:}
	# modules.dep lists a module's direct and indirect dependencies, the deepest last.
	for d in $(echo $deps | tr ' ' '\n' | tac); do add_module "$d"; done
	order+=("$path")
}
for m in sch_ingress cls_bpf veth; do
	line=$(dep_line "$m")
	if [ -z "$line" ]; then
		# Built into this kernel: nothing to load.
		grep -qE "(^|/)$m\.ko" "$moddir/modules.builtin" 2>/dev/null && continue
		fail_all "module $m is neither in $moddir/modules.dep nor built in"
	fi
	add_module "${line%%:*}"
done
: > "$r/etc/modules"
for p in "${order[@]}"; do
	src=$moddir/$p
	dst=$r/lib/modules/$kver/${p%.ko*}.ko
	mkdir -p "$(dirname "$dst")"
	case $p in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" > "$dst" ;;
	*.ko.zst) zstd -q -dc "$src" > "$dst" ;;
	*.ko.gz) gzip -dc "$src" > "$dst" ;;
	*) false ;;
	esac || fail_all "cannot copy or decompress $src"
	echo "/lib/modules/$kver/${p%.ko*}.ko" >> "$r/etc/modules"
done

echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"
echo 'root:x:0:' > "$r/etc/group"
printf 'HELO=%s\nPEER=%s\n' "$helo" "$peer_vm" > "$r/etc/test.env"

cat > "$r/init" <<'EOF'
#!/bin/busybox sh
# PID 1 in the 6.1 VM. Every result goes to the console between @@ markers.
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin
. /etc/test.env
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mkdir -p /sys/fs/cgroup /sys/fs/bpf
# A hard need missing: before cgroup2 is mounted the agent must refuse in one sentence.
smtpwatch run --output /tmp/nocg.json --socket /run/nocg.sock >/tmp/nocg.err 2>&1
echo "@@SW nocgroup_rc $?" # (mark() is defined below)
echo "@@BEGIN nocgroup"; cat /tmp/nocg.err; echo "@@END nocgroup"
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
echo 1 > /proc/sys/kernel/printk # keep kernel messages out of the results
hostname vm-6-1
ip link set lo up
t() { cut -d' ' -f1 /proc/uptime; }
mark() { echo "@@SW $*"; }
begin() { echo "@@BEGIN $1"; }
end() { echo "@@END $1"; }
finish() { sync; poweroff -f; sleep 10; }

mark kernel "$(uname -r)"
while read -r m; do
	insmod "$m" || mark insmod_failed "$m"
done < /etc/modules
mark modules "$(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"

mark t_agent_start "$(t)"
smtpwatch run --output /tmp/events.json --socket /run/sw.sock -v >/tmp/agent.log 2>&1 &
AGENT=$!
up=0
i=0
while [ $i -lt 600 ]; do # up to 60 s: the verifier is slow under TCG
	if smtpwatch status --socket /run/sw.sock >/tmp/status.json 2>/tmp/status.err; then
		up=1
		break
	fi
	kill -0 $AGENT 2>/dev/null || break
	sleep 0.1
	i=$((i + 1))
done
mark t_agent_up "$(t)"
mark status_rc $((1 - up))
begin status; cat /tmp/status.json /tmp/status.err; end status
if [ $up -ne 1 ]; then
	kill -TERM $AGENT 2>/dev/null
	sleep 2
	kill -KILL $AGENT 2>/dev/null
	wait $AGENT
	mark agent_rc $?
	begin agent_log; cat /tmp/agent.log; end agent_log
	# Once more with libbpf's debug log, which carries the verifier's messages.
	smtpwatch run --output /tmp/events2.json --socket /run/sw2.sock -v -v >/tmp/agent-vv.log 2>&1 &
	A2=$!
	i=0
	while kill -0 $A2 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	kill -TERM $A2 2>/dev/null
	sleep 1
	kill -KILL $A2 2>/dev/null
	begin agent_debug_log; tail -n 400 /tmp/agent-vv.log; end agent_debug_log
	finish
fi
# iproute2's tc by its path: busybox sh prefers its own applets, whatever PATH says.
TC=/usr/sbin/tc
begin tc_during; $TC filter show dev lo ingress; $TC filter show dev lo egress; end tc_during

$PEER server 2525 2 60 >/tmp/server.log 2>&1 &
SERVER=$!
mark server_pid $SERVER
sleep 0.5
$PEER client 127.0.0.1 2525 "$HELO" >/tmp/client4.log 2>&1 &
C4=$!
wait $C4
mark client4 pid=$C4 rc=$?
$PEER client ::1 2525 "$HELO" >/tmp/client6.log 2>&1 &
C6=$!
wait $C6
mark client6 pid=$C6 rc=$?
wait $SERVER
mark server_rc $?
begin client4; cat /tmp/client4.log; end client4
begin client6; cat /tmp/client6.log; end client6
begin server; cat /tmp/server.log; end server

# Sessions are reported within ~1 s of the close; allow 2 s, more if TCG is slow.
sleep 2
i=0
while [ "$(grep -c '"smtp_session"' /tmp/events.json 2>/dev/null)" -lt 2 ] && [ $i -lt 80 ]; do
	sleep 0.1
	i=$((i + 1))
done
smtpwatch status --socket /run/sw.sock >/tmp/status2.json 2>&1
mark status2_rc $?
begin status2; cat /tmp/status2.json; end status2

mark t_sigterm "$(t)"
kill -TERM $AGENT
( sleep 30; kill -KILL $AGENT ) 2>/dev/null &
WATCHDOG=$!
wait $AGENT
mark agent_rc $?
kill $WATCHDOG 2>/dev/null
mark t_agent_exit "$(t)"
# Without the clsact qdisc tc complains on stderr; only stdout lists filters.
begin tc_after; $TC filter show dev lo ingress 2>/dev/null; $TC filter show dev lo egress 2>/dev/null; end tc_after
begin qdisc_after; $TC qdisc show dev lo; end qdisc_after
mark qdisc_rc $?
begin events; cat /tmp/events.json; end events
begin agent_log; cat /tmp/agent.log; end agent_log
mark done
finish
EOF
chmod 0755 "$r/init"

(cd "$r" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out/initramfs-6.1.cpio.gz" ||
	fail_all "cannot write $out/initramfs-6.1.cpio.gz"
t_built=$((SECONDS - t0))

# ---- boot ----
log=$out/console-6.1.log
tb=$SECONDS
# -nic none: the VM gets no network device, so nothing can leave it.
timeout 240 qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot -nic none \
	-kernel "$kernel" -initrd "$out/initramfs-6.1.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet" </dev/null >"$log" 2>&1
qrc=$?
t_boot=$((SECONDS - tb))

# ---- verdicts ----
python3 - "$log" "$tag" "$helo" "$peer_vm" "$qrc" "$kver" "$t_built" "$t_boot" <<'EOF'
import json, re, sys

log, tag, helo, peer, qrc, kver, t_built, t_boot = sys.argv[1:]
text = open(log, "rb").read().decode("utf-8", "replace").replace("\r", "")
lines = text.split("\n")

marks, blocks, cur = {}, {}, None
# Markers are searched, not anchored: the firmware's terminal escapes precede the first.
for ln in lines:
    m = re.search(r"@@BEGIN (\S+)\s*$", ln)
    if m:
        cur = m.group(1)
        blocks[cur] = []
        continue
    if re.search(r"@@END \S+\s*$", ln):
        cur = None
        continue
    if cur:
        blocks[cur].append(ln)
        continue
    m = re.search(r"@@SW (\S+) ?(.*?)\s*$", ln)
    if m:
        marks[m.group(1)] = m.group(2)

results = []
def verdict(case, problems):
    name = f"{tag}_{case}"
    results.append(f"PASS {name}" if not problems else f"FAIL {name}: {'; '.join(problems)}")

def kv(s):
    return dict(p.split("=", 1) for p in s.split() if "=" in p)

vm_ok = "done" in marks or "agent_rc" in marks
boot_problem = None
if marks.get("kernel") is None:
    boot_problem = f"the VM never ran /init (qemu exit {qrc})"
elif marks["kernel"] != kver:
    boot_problem = f"the VM runs {marks['kernel']}, not {kver}"
elif not vm_ok:
    boot_problem = f"the VM stopped before the end (qemu exit {qrc}{', timeout' if qrc == '124' else ''})"

# loads: status ok, every hook attached, clsact on lo
p = []
status = None
if marks.get("status_rc") != "0":
    p.append("smtpwatch status never exited 0")
else:
    try:
        status = json.loads("\n".join(blocks.get("status", [])))
    except ValueError as e:
        p.append(f"status is not JSON ({e})")
if isinstance(status, dict):
    att = status.get("attach", {})
    if att.get("tc_mode") != "clsact":
        p.append(f"tc_mode is {att.get('tc_mode')!r}, not 'clsact'")
    lo = [i for i in att.get("interfaces", []) if i.get("name") == "lo"]
    if not lo or not lo[0].get("attached"):
        p.append("lo is not attached")
    if not att.get("programs"):
        p.append("no programs attached")
if status and not any("bpf" in l for l in blocks.get("tc_during", [])):
    p.append("no bpf filter on lo while the agent ran")
for m in marks:
    if m == "insmod_failed":
        p.append(f"insmod failed: {marks[m]}")
if boot_problem and not blocks.get("status"):
    p.insert(0, boot_problem)
# When the agent did not come up, say why in the verdict: its last words, and the
# verifier's, from the log.
alog = blocks.get("agent_log", [])
why = [l for l in alog if l.startswith("smtpwatch:") or "program load failed" in l]
for i, l in enumerate(alog):
    if re.match(r"processed \d+ insns", l) and i > 0:
        why.append("verifier: " + alog[i - 1])
if marks.get("status_rc") != "0" and why:
    p.append("agent says: " + " | ".join(why[-4:]))
verdict("loads", p)
not_up = None if marks.get("status_rc") == "0" else (boot_problem or "the agent never attached")

events, bad = [], 0
for ln in blocks.get("events", []):
    if not ln.strip():
        continue
    try:
        events.append(json.loads(ln))
    except ValueError:
        bad += 1
sessions = [e for e in events if e.get("event", {}).get("action") == "smtp_session"]

def check_session(case, client, family, dst_ip):
    p = []
    c = kv(marks.get(client, ""))
    if not_up:
        verdict(case, [not_up]); return
    if c.get("rc") != "0":
        p.append(f"smtp_peer {client} failed (rc {c.get('rc')}): " +
                 " | ".join(blocks.get(client, [])[-3:]))
    pid = int(c.get("pid", -1))
    mine = [s for s in sessions if s.get("process", {}).get("pid") == pid]
    if not mine:
        seen = [(s.get("process", {}).get("pid"), s.get("network", {}).get("type"),
                 s.get("smtp", {}).get("helo")) for s in sessions]
        p.append(f"no smtp_session with process.pid {pid} (sessions: {seen}, "
                 f"{len(events)} events, {bad} unparsable lines)")
    else:
        s = mine[0]
        sm, proc = s.get("smtp", {}), s.get("process", {})
        if sm.get("helo") != helo: p.append(f"smtp.helo {sm.get('helo')!r}")
        if sm.get("helo_verb") != "EHLO": p.append(f"smtp.helo_verb {sm.get('helo_verb')!r}")
        if sm.get("banner") != "vm ESMTP" and "vm ESMTP" not in str(sm.get("banner")):
            p.append(f"smtp.banner {sm.get('banner')!r}")
        if not any(r.get("code") == 250 for r in sm.get("replies", [])):
            p.append(f"no 250 in smtp.replies {sm.get('replies')!r}")
        if proc.get("executable") != peer: p.append(f"process.executable {proc.get('executable')!r}")
        if s.get("destination", {}).get("port") != 2525:
            p.append(f"destination.port {s.get('destination', {}).get('port')!r}")
        if s.get("destination", {}).get("ip") != dst_ip:
            p.append(f"destination.ip {s.get('destination', {}).get('ip')!r}")
        if s.get("network", {}).get("type") != family:
            p.append(f"network.type {s.get('network', {}).get('type')!r}")
    verdict(case, p)

check_session("session_ipv4", "client4", "ipv4", "127.0.0.1")
check_session("session_ipv6", "client6", "ipv6", "::1")

p = []
if not_up:
    p.append(not_up)
elif "agent_rc" not in marks:
    p.append(boot_problem or "no agent exit code")
elif marks["agent_rc"] != "0":
    p.append(f"agent exited {marks['agent_rc']} after SIGTERM")
left = [l for l in blocks.get("tc_after", []) if l.strip()]
if not_up:
    pass
elif "tc_after" not in blocks:
    p.append("no tc listing after exit")
elif left:
    p.append("filters left on lo: " + " | ".join(left[:4]))
if not not_up:
    # The agent created lo's clsact qdisc (lo has none at boot), so it removes it too.
    if marks.get("qdisc_rc") != "0":
        p.append(f"tc qdisc show failed in the VM (rc {marks.get('qdisc_rc')})")
    elif any("clsact" in l for l in blocks.get("qdisc_after", [])):
        p.append("the clsact qdisc the agent created is left on lo")
verdict("clean_exit", p)

# no_cgroup2: exit 69 and one sentence that says what to do
p = []
err = [l for l in blocks.get("nocgroup", []) if l.strip()]
if boot_problem and "nocgroup_rc" not in marks:
    p.append(boot_problem)
elif marks.get("nocgroup_rc") != "69":
    p.append(f"exit code {marks.get('nocgroup_rc')} without cgroup v2, want 69")
elif len(err) != 1 or "cgroup v2 is not mounted" not in err[0] or "mount" not in err[0]:
    p.append(f"message {err!r}")
verdict("no_cgroup2", p)

for r in results:
    print(r)
t = {k: marks.get(k) for k in ("t_agent_start", "t_agent_up", "t_sigterm", "t_agent_exit")}
print(f"# {kver}: initramfs built in {t_built}s, VM ran {t_boot}s (qemu exit {qrc}); "
      f"VM uptime at agent start {t['t_agent_start']}s, "
      f"{'attached' if not not_up else 'gave up waiting'} {t['t_agent_up']}s, "
      f"SIGTERM {t['t_sigterm']}s, exited {t['t_agent_exit']}s; "
      f"{len(sessions)} smtp_session events")
sys.exit(0 if all(r.startswith("PASS") for r in results) else 1)
EOF
rc=$?
if [ $rc -ne 0 ]; then
	echo "# console log $log, last 60 lines:"
	tail -n 60 "$log" | sed 's/^/#   /'
fi
exit $rc
