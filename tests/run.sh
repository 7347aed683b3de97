#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Runs every test program and sums their "PASS name" / "FAIL name" / "SKIP name"
# lines. A program that dies without saying FAIL counts as one failure.
# Usage: tests/run.sh [unit|bpf|fuzz|integration|asan|kernels]...   (default: all of them;
# group "systemd" runs only in the VM that tests/kernels/test_unit_systemd_6_1.sh boots)
set -u
cd "$(dirname "$0")/.."
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(unit bpf fuzz integration asan kernels)
build=build/tests
log=build/test.log
mkdir -p build
: > "$log"
pass=0 fail=0 skip=0

run_one() { # name, command...
	local name=$1 out rc
	shift
	echo "== $name" >> "$log"
	out=$("$@" 2>&1)
	rc=$?
	printf '%s\n' "$out" >> "$log"
	printf '%s\n' "$out" | grep -E '^(PASS|FAIL|SKIP) ' | sed "s/^\(PASS\|FAIL\|SKIP\) /\1 ${prefix:-}/" || true
	local p f s
	p=$(printf '%s\n' "$out" | grep -c '^PASS ')
	f=$(printf '%s\n' "$out" | grep -c '^FAIL ')
	s=$(printf '%s\n' "$out" | grep -c '^SKIP ')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "FAIL $name: exited $rc without a verdict (see $log)"
		printf '%s\n' "$out" | tail -5 | sed 's/^/    /'
		f=1
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
}

for g in "${groups[@]}"; do
	case $g in
	unit)
		for src in tests/unit/test_*.c; do
			b=$build/$(basename "$src" .c)
			run_one "$b" "$b"
		done ;;
	bpf)
		for src in tests/bpf/test_*.c; do
			[ -e "$src" ] || continue
			b=$build/$(basename "$src" .c)
			run_one "$b" "$b"
		done ;;
	fuzz)
		# A short run of each fuzzer in make test; `make fuzz` runs them longer.
		secs=${FUZZ_SECONDS:-8}
		for b in build/fuzz/fuzz_*; do
			[ -x "$b" ] || continue
			n=$(basename "$b")
			mkdir -p "build/fuzz/corpus-$n"
			if "$b" -max_total_time="$secs" -print_final_stats=1 "build/fuzz/corpus-$n" \
				>"build/fuzz/$n.log" 2>&1; then
				echo "PASS $n ($secs s, $(grep -o 'stat::number_of_executed_units: *[0-9]*' "build/fuzz/$n.log" | grep -o '[0-9]*$' || echo '?') runs)"
				pass=$((pass + 1))
			else
				echo "FAIL $n: see build/fuzz/$n.log"
				tail -20 "build/fuzz/$n.log" | sed 's/^/    /'
				fail=$((fail + 1))
			fi
		done ;;
	asan)
		# The integration suite again, against the agent built with ASan and UBSan:
		# a leak, an overflow or undefined behaviour fails the agent's exit code.
		for t in tests/integration/test_*.py; do
			prefix=asan: run_one "asan:$t" env SMTPWATCH_BIN=build/asan/smtpwatch \
				ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
				UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
				timeout 900 /usr/bin/python3 "$t"
		done ;;
	integration|kernels)
		for t in tests/$g/test_*.sh tests/$g/test_*.py; do
			[ -e "$t" ] || continue
			case $t in
			*.py) run_one "$t" timeout 900 /usr/bin/python3 "$t" ;;
			# The 6.1 VM runs the whole suite again: it bounds itself (VM_TIMEOUT).
			*) run_one "$t" timeout 2700 bash "$t" ;;
			esac
		done ;;
	systemd)
		# Only inside the VM that boots systemd (tests/kernels/test_unit_systemd_6_1.sh).
		run_one tests/kernels/systemd_unit.py timeout 900 /usr/bin/python3 tests/kernels/systemd_unit.py ;;
	*) echo "unknown test group $g" >&2; exit 64 ;;
	esac
done
echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
