#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make bench`: the figures of issue 6, each a ratio or a count measured side by
# side in this one run (with the agent / without, interleaved off,on,on,off,...,
# medians), never an absolute time compared with another day.
#
# Everything runs in a network namespace of its own: the traffic stays on its
# loopback, and no port of the host is taken. The agent's cgroup hooks still see
# the whole machine (that is what they are for), so a busy host shows in the
# figures; the run notes other smtpwatch agents it finds.
#
# Writes build/bench.json and prints the table; raw records and logs go to
# build/bench/. Whatever it starts it stops, also on failure or Ctrl-C.
set -uo pipefail # not -e: a failed step is recorded as such and the run goes on

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (BPF programs, kernel.bpf_stats_enabled, a network namespace)" >&2
	exit 77
fi
if [ -z "${SMTPWATCH_BENCH_NETNS:-}" ]; then
	exec unshare --net env SMTPWATCH_BENCH_NETNS=1 "$0" "$@"
fi

SW=build/smtpwatch
B=build/bench
PY=/usr/bin/python3
RAW=$B/raw.jsonl
LOG=$B/run.log
START=$SECONDS
SINK_PORT=2525
OTHER_PORT=8025
IPERF_PORT=5201

mkdir -p "$B"
rm -f "$RAW" "$LOG" "$B"/agent.log "$B"/sink.log "$B"/tcpdump.*.log "$B"/iperf.log build/bench.json
WORK=$(mktemp -d /tmp/smtpwatch-bench.XXXXXX)
SOCK=$WORK/sw.sock
STATS_SAVED=$(cat /proc/sys/kernel/bpf_stats_enabled)
AGENT_PID= SINK_PID= IPERF_PID= TD_PID=
NAGENT=0

log() { printf '[%3ds] %s\n' $((SECONDS - START)) "$*" | tee -a "$LOG" >&2; }
h() { "$PY" scripts/bench/bench.py "$@"; }
rec() { h record "$@" >>"$RAW"; }
note() { log "note: $*"; rec kind=note "text=$*"; }
skip() { log "skip $1: $2"; rec kind=skip "fig=$1" "reason=$2"; }
left() { [ $((SECONDS - START)) -lt "$1" ]; }

# TERM, then KILL after 5 s; only our own children, by pid.
stop_pid() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup() {
	stop_pid "$TD_PID"
	stop_pid "$AGENT_PID"
	stop_pid "$SINK_PID"
	stop_pid "$IPERF_PID"
	TD_PID= AGENT_PID= SINK_PID= IPERF_PID=
	echo "$STATS_SAVED" >/proc/sys/kernel/bpf_stats_enabled
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'trap - INT TERM; log "interrupted"; exit 130' INT TERM

# Wait (bounded) until something listens on a TCP port, without connecting to it.
wait_listen() {
	local i
	for i in $(seq 100); do
		ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.05
	done
	return 1
}

start_agent() {
	local i
	NAGENT=$((NAGENT + 1))
	OUT=$WORK/agent-$NAGENT.ndjson
	: >"$OUT"
	"$SW" run --output "$OUT" --socket "$SOCK" 2>>"$B/agent.log" &
	AGENT_PID=$!
	for i in $(seq 100); do
		"$SW" status --socket "$SOCK" >/dev/null 2>&1 && return 0
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	log "the agent did not come up (see $B/agent.log)"
	stop_pid "$AGENT_PID"
	AGENT_PID=
	return 1
}

stop_agent() {
	stop_pid "$AGENT_PID"
	AGENT_PID=
	rm -f "$OUT"
}

start_sink() {
	smtp-sink -u nobody 127.0.0.1:$SINK_PORT 256 >>"$B/sink.log" 2>&1 &
	SINK_PID=$!
	wait_listen $SINK_PORT || { log "smtp-sink did not listen"; return 1; }
}

stop_sink() {
	stop_pid "$SINK_PID"
	SINK_PID=
}

agent_args() { echo --agent-pid "$AGENT_PID" --output "$OUT" --socket "$SOCK"; }

have() { command -v "$1" >/dev/null 2>&1; }

# ---- preflight ---------------------------------------------------------------------
ip link set lo up || { echo "bench: cannot bring up loopback in the namespace" >&2; exit 1; }
log "smtpwatch bench on $(uname -r), $(nproc) CPUs; raw records in $RAW"
HAVE_FLOOD=1 HAVE_IPERF=1 HAVE_TCPDUMP=1
have smtp-source && have smtp-sink || { HAVE_FLOOD=0; skip flood "postfix's smtp-source/smtp-sink are not installed (Debian package postfix)"; }
have iperf3 || { HAVE_IPERF=0; skip iperf "iperf3 is not installed (Debian package iperf3)"; }
have tcpdump || { HAVE_TCPDUMP=0; skip tcpdump "tcpdump is not installed (Debian package tcpdump)"; }
[ "$HAVE_FLOOD" = 1 ] || skip tcpdump "needs smtp-source/smtp-sink for the flood"
others=$(bpftool -j prog show 2>/dev/null | "$PY" -c 'import json,sys; print(sum(1 for p in json.load(sys.stdin) if p.get("name")=="sw_connect4"))' 2>/dev/null || echo 0)
[ "${others:-0}" -gt 0 ] && note "$others other smtpwatch agent(s) were running during the bench: their programs run in both A and B"
if [ "$STATS_SAVED" != 0 ]; then
	note "kernel.bpf_stats_enabled was $STATS_SAVED; set to 0 for the run, restored after"
fi
echo 0 >/proc/sys/kernel/bpf_stats_enabled

# ---- 1. program cost by test_run (first: the machine is quietest now) ---------------
log "1/7 test_run: tc and cgroup_skb programs minus empty, 10 rounds x 10^6"
if ! timeout 120 "$B/bench_tc" --repeat 1000000 --rounds 10 >"$B/tc.json" 2>>"$LOG"; then
	skip tc "bench_tc failed: $(tail -1 "$LOG")"
	rm -f "$B/tc.json"
fi

# ---- 2-4. with the agent / without, interleaved off,on,on,off,... per figure ---------
# Before each pair, wait (bounded, QUIET_BUDGET seconds in all) while other agents
# are loaded: their programs and their consumer would run in both A and B.
QUIET_BUDGET=${BENCH_QUIET_BUDGET:-90}
quiet() {
	local r waited n
	[ "$QUIET_BUDGET" -gt 0 ] || return 0
	r=$(h quiet --max-wait $((QUIET_BUDGET < 15 ? QUIET_BUDGET : 15)) 2>>"$LOG") || return 0
	read -r waited n <<<"$r"
	QUIET_BUDGET=$((QUIET_BUDGET - ${waited:-0}))
	[ "${n:-0}" = 0 ] || log "other smtpwatch agents still loaded ($n) after ${waited}s: measuring anyway (recorded)"
}
# Pair k runs "off on" when k is even, "on off" when odd.
order() { [ $(($1 % 2)) = 0 ] && echo "off on" || echo "on off"; }
settle() { [ -z "$AGENT_PID" ] || h settle --agent-pid "$AGENT_PID" 2>>"$LOG"; }

PAIRS=8
for ((k = 0; k < PAIRS; k++)); do
	left 200 || { note "time budget: connect loops cut at $k pairs"; break; }
	log "3/7 connect+accept+close, pair $((k + 1))/$PAIRS"
	quiet
	for mode in $(order $k); do
		if [ "$mode" = on ]; then start_agent || continue; settle; fi
		for port in $OTHER_PORT $SINK_PORT; do
			h connect --mode $mode --rep $k --port $port --count 10000 \
				${AGENT_PID:+--agent-pid $AGENT_PID} >>"$RAW" 2>>"$LOG" || log "connect step failed"
			settle
		done
		[ "$mode" = off ] || stop_agent
	done
done

PAIRS=6
if [ "$HAVE_FLOOD" = 1 ]; then
	for ((k = 0; k < PAIRS; k++)); do
		left 260 || { note "time budget: floods cut at $k pairs"; break; }
		log "4/7 SMTP flood, 5000 sessions, smtp-source -s 20, pair $((k + 1))/$PAIRS"
		quiet
		for mode in $(order $k); do
			extra=()
			if [ "$mode" = on ]; then
				start_agent || continue
				settle
				extra=($(agent_args))
			fi
			start_sink && h flood --tag main --mode $mode --rep $k --port $SINK_PORT --sessions 5000 \
				--parallel 20 "${extra[@]}" >>"$RAW" 2>>"$LOG" || log "flood step failed"
			stop_sink
			[ "$mode" = off ] || stop_agent
		done
	done
fi

PAIRS=5
if [ "$HAVE_IPERF" = 1 ]; then
	iperf3 -s -B 127.0.0.1 -p $IPERF_PORT >>"$B/iperf.log" 2>&1 &
	IPERF_PID=$!
	wait_listen $IPERF_PORT || { HAVE_IPERF=0; skip iperf "the iperf3 server did not start"; }
fi
if [ "$HAVE_IPERF" = 1 ]; then
	for ((k = 0; k < PAIRS; k++)); do
		left 340 || { note "time budget: iperf3 cut at $k pairs"; break; }
		log "2/7 iperf3 bulk and 64-byte writes, 3 s each, pair $((k + 1))/$PAIRS"
		quiet
		for mode in $(order $k); do
			if [ "$mode" = on ]; then start_agent || continue; settle; fi
			for t in bulk small; do
				h iperf --mode $mode --rep $k --test $t --port $IPERF_PORT --seconds 3 \
					${AGENT_PID:+--agent-pid $AGENT_PID} >>"$RAW" 2>>"$LOG" || log "iperf3 step failed"
			done
			[ "$mode" = off ] || stop_agent
		done
	done
fi

# ---- 6. tcpdump -i any -w versus the agent, same flood ------------------------------
if [ "$HAVE_TCPDUMP" = 1 ] && [ "$HAVE_FLOOD" = 1 ]; then
	for rep in 0 1 2; do
		left 400 || { note "time budget: tcpdump comparison cut at $rep reps"; break; }
		log "6/7 tcpdump -i any -w versus the agent, same flood, pair $((rep + 1))/3"
		quiet
		for side in $([ $((rep % 2)) = 0 ] && echo "tcpdump agent" || echo "agent tcpdump"); do
			if [ "$side" = tcpdump ]; then
				start_sink || continue
				rm -f "$WORK/flood.pcap"
				tdlog=$B/tcpdump.$rep.log
				tcpdump -i any -Z root -w "$WORK/flood.pcap" "tcp port $SINK_PORT" 2>"$tdlog" &
				TD_PID=$!
				for i in $(seq 100); do
					grep -q "listening on" "$tdlog" && break
					sleep 0.05
				done
				h flood --tag tcpdump --mode tcpdump --rep $rep --port $SINK_PORT --sessions 5000 \
					--parallel 20 --cpu-pid "$TD_PID" >>"$RAW" 2>>"$LOG" || log "tcpdump flood failed"
				stop_pid "$TD_PID"
				TD_PID=
				stop_sink
			else
				start_agent || continue
				settle
				start_sink && h flood --tag vs-tcpdump --mode on --rep $rep --port $SINK_PORT \
					--sessions 5000 --parallel 20 --bpf-stats $(agent_args) >>"$RAW" 2>>"$LOG" ||
					log "agent flood for the tcpdump comparison failed"
				stop_sink
				stop_agent
			fi
		done
	done
	drops=$(grep -h "dropped by kernel" "$B"/tcpdump.*.log 2>/dev/null | tr '\n' ',')
	[ -n "$drops" ] && note "tcpdump per rep: $drops"
fi

# ---- 5, 2 (bpf_stats), 7: one agent ------------------------------------------------
if left 450 && start_agent; then
	log "5/7 idle: 10 s with no SMTP traffic (up to 3 windows if others' traffic shows)"
	quiet
	sleep 2 # let the control request's timer run out
	h idle --agent-pid "$AGENT_PID" --output "$OUT" --seconds 10 >>"$RAW" 2>>"$LOG" || log "idle step failed"
	if [ "$HAVE_IPERF" = 1 ]; then
		log "2/7 BPF CPU share under iperf3 (bpf_stats on for these runs only)"
		for t in bulk small; do
			h iperf --mode stats --test $t --port $IPERF_PORT --seconds 3 --agent-pid "$AGENT_PID" \
				--bpf-stats >>"$RAW" 2>>"$LOG" || log "iperf3 bpf_stats step failed"
			settle
		done
	fi
	if [ "$HAVE_FLOOD" = 1 ] && start_sink; then
		log "7/7 ramp: smtp-source -s 5..100, 3000 sessions each"
		for par in 5 10 20 50 100; do
			left 540 || { note "time budget: ramp cut before -s $par"; break; }
			settle
			h flood --tag ramp --mode on --port $SINK_PORT --sessions 3000 --parallel $par \
				$(agent_args) >>"$RAW" 2>>"$LOG" || log "ramp step failed"
		done
		log "7/7 delay from the kernel's close to the line in the file: 300 sessions"
		settle
		h latency --port $SINK_PORT --output "$OUT" --sessions 300 --interval 0.02 >>"$RAW" 2>>"$LOG" ||
			log "latency step failed"
	fi
	stop_sink
	stop_agent
else
	skip idle "the agent did not start, or no time was left"
fi

stop_pid "$IPERF_PID"
IPERF_PID=
log "report"
h report --raw "$RAW" --tc "$B/tc.json" --json build/bench.json --runtime $((SECONDS - START))
