#!/usr/bin/env bash
# check.sh - the runner behind `make check`.  Each test runs alone, from the
# repository root, under a timeout, with its output in $B/test-logs/NAME.log;
# one PASS/FAIL line per test, the log of each failure, and a closing
# "N passed, N failed" line (CI reads that line; keep it last).
#
#   B=/abs/build [T=pattern,...] mk/check.sh UNIT_BINARY... -- IT_SCRIPT...
#
# Unit binaries get `timeout 300`, integration scripts (tests/it_*.sh,
# tests/it_*.py) `timeout 600`; both see B in their environment.
set -u

UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
IT_TIMEOUT=${IT_TIMEOUT:-600}
LOG_LINES=${LOG_LINES:-400}	# how much of a failed test's log to print

cd "$(dirname "$0")/.." || exit 2
: "${B:?B must name the build directory}"
export B
T=${T:-}

# A sanitized shim must come after the ASan runtime in LD_PRELOAD (ASan
# insists on being first); the integration tests prepend this.
if [ -e "$B/libgreen-preload.so" ] &&
	asan=$(ldd "$B/libgreen-preload.so" 2>/dev/null | awk '/libasan/ {print $3}') &&
	[ -n "$asan" ]; then
	export GREEN_ASAN_RUNTIME=$asan
fi

logdir=$B/test-logs
mkdir -p "$logdir" || exit 2
rm -f "$logdir/summary" "$logdir/failed"

units=()
its=()
seen_sep=0
for arg in "$@"; do
	if [ "$arg" = -- ]; then
		seen_sep=1
	elif [ $seen_sep -eq 0 ]; then
		units+=("$arg")
	else
		its+=("$arg")
	fi
done

# T holds patterns separated by commas or spaces; a test runs when its name
# contains one of them (shell globs allowed).
selected() {
	local pat
	[ -z "$T" ] && return 0
	set -f
	for pat in ${T//,/ }; do
		# shellcheck disable=SC2254
		case $1 in *$pat*)
			set +f
			return 0
			;;
		esac
	done
	set +f
	return 1
}

passed=0
failed=0
failures=()

# run NAME TIMEOUT COMMAND...
run() {
	local name=$1 limit=$2 log=$logdir/$1.log rc start end secs why
	shift 2
	start=$(date +%s%N)
	# timeout signals its whole process group, so daemons a test started
	# die with it; -k catches a test that ignores SIGTERM.
	timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null
	rc=$?
	end=$(date +%s%N)
	secs=$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f", ns / 1e9 }')
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		printf 'PASS %s (%ss)\n' "$name" "$secs"
		return
	fi
	case $rc in
	124 | 137) why="timed out after ${limit}s" ;;
	*) why="exit status $rc" ;;
	esac
	failed=$((failed + 1))
	failures+=("$name")
	printf 'FAIL %s (%s, %ss)\n' "$name" "$why" "$secs"
	printf -- '---- %s (last %s lines) ----\n' "$log" "$LOG_LINES"
	tail -n "$LOG_LINES" "$log"
	printf -- '---- end of %s ----\n' "$name"
}

for bin in "${units[@]+"${units[@]}"}"; do
	name=${bin##*/}
	selected "$name" || continue
	if [ ! -x "$bin" ]; then
		failed=$((failed + 1))
		failures+=("$name")
		printf 'FAIL %s (%s was not built)\n' "$name" "$bin"
		continue
	fi
	run "$name" "$UNIT_TIMEOUT" "$bin"
done

for script in "${its[@]+"${its[@]}"}"; do
	name=${script##*/}
	selected "$name" || continue
	if [ -x "$script" ]; then
		run "$name" "$IT_TIMEOUT" "./$script"
	elif [ "${script##*.}" = py ]; then
		run "$name" "$IT_TIMEOUT" python3 "$script"
	else
		run "$name" "$IT_TIMEOUT" bash "$script"
	fi
done

if [ $failed -ne 0 ]; then
	printf 'failed: %s\n' "${failures[*]}"
	printf '%s\n' "${failures[@]}" >"$logdir/failed"
fi
printf '%s %s\n' "$passed" "$failed" >"$logdir/summary"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ $failed -eq 0 ]
