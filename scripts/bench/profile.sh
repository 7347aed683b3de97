#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Deterministic cost of the agent per SMTP session: the agent under valgrind's
# callgrind while a bounded smtp-source flood (to smtp-sink, on the loopback of a
# network namespace of its own) runs. Instruction counts do not depend on what
# else the machine does, so two builds compare even on a busy machine.
#
#   scripts/bench/profile.sh [SESSIONS] [PARALLEL]     (default 1000 20)
#
# Counters are zeroed once the agent is up and dumped once every session line is
# written, so start-up (BPF load) and teardown are not in the figure. Prints
# instructions per session and the syscalls per session (from a second,
# unprofiled run under strace -c), and leaves build/bench/callgrind.out.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
[ "$(id -u)" -eq 0 ] || { echo "profile: needs root" >&2; exit 77; }
if [ -z "${SMTPWATCH_PROFILE_NETNS:-}" ]; then
	exec unshare --net env SMTPWATCH_PROFILE_NETNS=1 "$0" "$@"
fi
SW=${SW:-build/smtpwatch} # another build to compare: SW=/tmp/base/build/smtpwatch
N=${1:-1000}
PAR=${2:-20}
PORT=2599 # not a default port: other agents and tests leave it alone
B=build/bench
mkdir -p "$B"
WORK=$(mktemp -d /tmp/smtpwatch-profile.XXXXXX)
AGENT_PID= SINK_PID=
cleanup() {
	for p in $AGENT_PID $SINK_PID; do
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
ip link set lo up

smtp-sink -u nobody 127.0.0.1:$PORT 256 >/dev/null 2>&1 &
SINK_PID=$!

# Lines to our port from smtp-source (other agents' tests may talk SMTP meanwhile).
count() {
	python3 - "$1" "$2" <<'EOF'
import json, sys
n = 0
with open(sys.argv[1], errors="replace") as f:
    for line in f:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event", {}).get("action") == "smtp_session" and \
           e.get("destination", {}).get("port") == int(sys.argv[2]) and \
           e.get("process", {}).get("name") == "smtp-source":
            n += 1
print(n)
EOF
}

# run WRAPPER...: the agent under WRAPPER, one flood, sessions seen on stdout.
run() {
	local out=$WORK/out.ndjson sock=$WORK/sw.sock i
	: >"$out"
	"$@" "$SW" run --ports $PORT --output "$out" --socket "$sock" 2>"$WORK/agent.log" &
	AGENT_PID=$!
	for i in $(seq 600); do
		"$SW" status --socket "$sock" >/dev/null 2>&1 && break
		kill -0 "$AGENT_PID" 2>/dev/null || { cat "$WORK/agent.log" >&2; return 1; }
		sleep 0.2
	done
	sleep 1
	[ "$1" = valgrind ] && callgrind_control -z "$AGENT_PID" >/dev/null
	local t0=$SECONDS
	timeout 300 smtp-source -s "$PAR" -m "$N" 127.0.0.1:$PORT >/dev/null 2>&1
	echo "flood: $N sessions in $((SECONDS - t0)) s" >&2
	for i in $(seq 300); do
		[ "$(count "$out" $PORT)" -ge "$N" ] && break
		sleep 0.2
	done
	SEEN=$(count "$out" $PORT)
	LINES=$(wc -l <"$out")
	cp "$out" "$B/profile.ndjson"
	[ "$1" = valgrind ] && callgrind_control -d "$AGENT_PID" >/dev/null
	# strace passes SIGTERM on to nobody: stop the agent itself, strace follows.
	local pid=$AGENT_PID
	[ "$1" = strace ] && pid=$(pgrep -P "$AGENT_PID" | head -1)
	kill -TERM "${pid:-$AGENT_PID}"
	wait "$AGENT_PID"
	AGENT_PID=
}

run valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.%p" || exit 1
# The dump after the flood is the part ".1"; the final one (teardown) is not counted.
f=$(ls "$WORK"/cg.*.1 2>/dev/null | head -1)
[ -n "$f" ] || { echo "profile: no callgrind dump" >&2; exit 1; }
cp "$f" "$B/callgrind.out"
ir=$(grep -m1 '^summary:' "$f" | awk '{print $2}')
echo "callgrind: $ir instructions for $SEEN sessions ($LINES lines): $((ir / (SEEN ? SEEN : 1))) per session"
callgrind_annotate --inclusive=no "$B/callgrind.out" 2>/dev/null | sed -n '/^Ir/,$p' | head -40

if command -v strace >/dev/null; then
	run strace -c -f -o "$WORK/strace.txt" || exit 1
	echo "syscalls for $SEEN sessions ($LINES lines):"
	sed -n '1,/^---.*total/p;/total/p' "$WORK/strace.txt" | awk 'NR<=2 || /total/ || ($4+0) > 0' | head -30
fi
