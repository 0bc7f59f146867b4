#!/usr/bin/env bash
# bench/run.sh - what `make bench` runs: builds what is missing, says where
# the numbers come from (date, CPU, kernel), then prints one table per section.
#
# Usage: bench/run.sh [SECTION...]   (default: every section in SECTIONS)
# Environment: B, the build directory (default: build); QUICK=1 for short runs.
# Exit status: 0 if every table ran (a MISS is a result, not a failure);
# 1 if a build or a benchmark failed; 2 for an unknown section.
#
# A section NAME is two functions: needs_NAME prints the binaries it runs
# (relative to $B) and table_NAME prints its table, failing if a benchmark
# did.  To add one, write both and append NAME to SECTIONS.

set -u

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$(realpath -m -- "${B:-$root/build}")
QUICK=${QUICK:-}
export QUICK

SECTIONS=(libgreen)

# ---- sections -------------------------------------------------------------

# Micro-benchmarks of the runtime against their baselines (issue 2).
needs_libgreen() {
	echo bench/bench_libgreen
}

table_libgreen() {
	"$B/bench/bench_libgreen"
}

# ---- driver ---------------------------------------------------------------

quick() {
	[ -n "$QUICK" ] && [ "$QUICK" != 0 ]
}

header() {
	local cpu

	cpu=$(sed -n 's/^model name[[:space:]]*: *//p' /proc/cpuinfo 2>/dev/null | head -n 1)
	[ -n "$cpu" ] || cpu=$(uname -m)
	echo "greend benchmarks$(quick && echo ' (QUICK=1: shortened runs)')"
	echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "cpu:     $cpu"
	echo "nproc:   $(nproc)"
	echo "kernel:  $(uname -srm)"
	echo "commit:  $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown)"
}

# Build the binaries the chosen sections run, if they are missing or stale.
# The environment of an enclosing `make bench` is dropped: this is a make of
# its own, not a part of that one's job server.
build() {
	local s t targets=()

	for s in "$@"; do
		for t in $("needs_$s"); do
			targets+=("$B/$t")
		done
	done
	[ ${#targets[@]} -eq 0 ] && return 0
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		make -C "$root" -s --no-print-directory B="$B" "${targets[@]}" >&2
}

main() {
	local s status=0 sections=("$@")

	[ ${#sections[@]} -gt 0 ] || sections=("${SECTIONS[@]}")
	for s in "${sections[@]}"; do
		if ! declare -F "table_$s" >/dev/null; then
			echo "run.sh: no section '$s' (sections: ${SECTIONS[*]})" >&2
			return 2
		fi
	done
	if ! build "${sections[@]}"; then
		echo "run.sh: the build failed" >&2
		return 1
	fi
	header
	for s in "${sections[@]}"; do
		echo
		echo "== $s =="
		if ! "table_$s"; then
			echo "run.sh: a benchmark of the $s table failed" >&2
			status=1
		fi
	done
	return $status
}

main "$@"
