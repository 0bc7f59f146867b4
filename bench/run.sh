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

SECTIONS=(libgreen echo http redis memcached queue pg node nginx listen)

# ---- sections -------------------------------------------------------------

# Micro-benchmarks of the runtime against their baselines (issue 2).
needs_libgreen() {
	echo bench/bench_libgreen
}

table_libgreen() {
	"$B/bench/bench_libgreen"
}

# ---- helpers for the server sections ---------------------------------------

# Every process a section starts is recorded here and stopped on exit,
# whatever the way out (end, failure, ^C).
pids=()
tmp=

stop_pid() {
	local pid=$1 i

	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

stop_all() {
	local pid

	for pid in "${pids[@]}"; do
		stop_pid "$pid"
	done
	pids=()
}

cleanup() {
	stop_all
	[ -n "$tmp" ] && rm -rf -- "$tmp"
}

tmpdir() {
	[ -n "$tmp" ] || tmp=$(mktemp -d "${TMPDIR:-/tmp}/greend-bench.XXXXXX")
}

# The green prefix: the shim with every module, found by greenctl.  An
# array, not a function, so that `"${green[@]}" CMD &` is the server itself
# (greenctl execs it) and $! is the server's pid.
green=("$B/greenctl" run --patch all --)

# A free TCP port on 127.0.0.1, chosen by the kernel.
free_port() {
	/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# wait_tcp PORT PID: wait (at most 10 s) until 127.0.0.1:PORT accepts.
wait_tcp() {
	local i

	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || return 1
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# start_echo OUT CMD...: start an echo server with -p 0, wait (at most 10 s)
# for its "listening on" line; sets server and port.  With CMD "greend
# CMD...", CMD runs as a worker of greend instead.
start_echo() {
	local out=$1 i
	shift

	if [ "$1" = greend ]; then
		# A worker of greend: its lines are in greend's log.
		shift
		greend_start echo "$@" -q -p 0 || return 1
		server=$wpid
		out="$tmp/gd-echo/greend.log"
	else
		"$@" -q -p 0 >"$out" 2>&1 &
		server=$!
		pids+=("$server")
	fi
	port=
	for ((i = 0; i < 100; i++)); do
		port=$(sed -n 's/^\(w:0: \)\{0,1\}listening on .*:\([0-9][0-9]*\)$/\2/p' "$out")
		[ -n "$port" ] && return 0
		kill -0 "$server" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: $* did not start:" >&2
	sed 's/^/  /' "$out" >&2
	return 1
}

# kernel_stack_kb VAR: VAR gets the machine's KernelStack (kB) from
# /proc/meminfo, read by the shell itself (sample calls it while a server
# is measured).
kernel_stack_kb() {
	local k v _
	printf -v "$1" 0
	while read -r k v _; do
		[ "$k" = KernelStack: ] && { printf -v "$1" %s "$v"; return 0; }
	done </proc/meminfo
}

# sample PID OUT: until sent SIGTERM (or PID ends), follow the largest
# VmRSS (kB), Threads and KernelStack (kB, the whole machine's) of PID ten
# times a second, then write them to OUT.  RSS leaves out what an OS thread
# costs the kernel: its 16 KiB kernel stack shows in KernelStack instead.
# It starts no process while it samples (the shell's own read, and a
# read -t on a FIFO nobody writes for its pause): processes started beside
# a measured one cost it CPU time on this VM (see greend_once).
sample() {
	local pid=$1 out=$2 k v rss=0 thr=0 ks=0 r t s nap

	mkfifo "$out.nap" && exec {nap}<>"$out.nap" || return 1
	trap 'echo "$rss $thr $ks" >"$out"; exit 0' TERM
	while [ -r "/proc/$pid/status" ]; do
		r=0 t=0
		while read -r k v _; do
			case $k in
			VmRSS:) r=$v ;;
			Threads:) t=$v ;;
			esac
		done <"/proc/$pid/status" 2>/dev/null
		((r > rss)) && rss=$r
		((t > thr)) && thr=$t
		kernel_stack_kb s
		((s > ks)) && ks=$s
		read -r -t 0.1 -u "$nap" _
	done
	echo "$rss $thr $ks" >"$out"
}

# jget KEY JSON: a number from loadgen's one-line JSON.
jget() {
	sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p" <<<"$2"
}

# verdict VALUE OP TARGET: PASS or MISS (OP is >= or <=).
verdict() {
	awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
		ok = (op == ">=") ? (v >= t) : (v <= t)
		print (ok ? "PASS" : "MISS") }'
}

ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

# ---- greend workers -----------------------------------------------------------

# The configuration users deploy: a server as the only worker of a real
# greend, with the shim reporting on its channel (stats every second,
# blocking reports at 100 ms, so the monitor thread ticks every 50 ms).

# greend_conf DIR CMD...: DIR/greend.json, a greend config with its control
# socket in DIR running CMD as worker "w" (patch all, never restarted,
# reporting: stats every second, max_blocking_ms 100).
greend_conf() {
	local d=$1
	shift
	mkdir -p "$d"
	/usr/bin/python3 -c 'import json, sys
d, shim, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
print(json.dumps({"control_socket": d + "/greend.sock", "preload": shim,
                  "stats_interval_ms": 1000,
                  "workers": [{"name": "w", "command": cmd, "patch": "all",
                               "start_secs": 0, "restart": "never",
                               "max_blocking_ms": 100, "stop_timeout_s": 5}]}))' \
		"$d" "$B/libgreen-preload.so" "$@" >"$d/greend.json"
}

# greend_start NAME CMD...: a greend of its own in $tmp/gd-NAME running CMD
# as worker "w" (greend_conf); waits (at most 10 s) until the worker runs
# and sets gd (greend's pid) and wpid (the worker's, or "exited" for a
# program that was done before it was seen running).  The worker's output
# is in $tmp/gd-NAME/greend.log, each line after "w:0: ".
greend_start() {
	local name=$1 d i
	shift
	d="$tmp/gd-$name"
	greend_conf "$d" "$@" || return 1
	"$B/greend" -f -c "$d/greend.json" >"$d/greend.log" 2>&1 &
	gd=$!
	pids+=("$gd")
	wpid=
	for ((i = 0; i < 100; i++)); do
		wpid=$("$B/greenctl" -s "$d/greend.sock" status --json 2>/dev/null |
			/usr/bin/python3 -c 'import json, sys
w = json.load(sys.stdin)["workers"][0]
print(w["pid"] if w["state"] == "running" and w["pid"] else
      "exited" if w["state"] == "exited" else "")' 2>/dev/null)
		[ -n "$wpid" ] && return 0
		kill -0 "$gd" 2>/dev/null || break
		sleep 0.1
	done
	echo "run.sh: greend did not start $*:" >&2
	sed 's/^/  /' "$d/greend.log" | tail -n 20 >&2
	return 1
}

# greend_reports NAME: how many stats reports greend received from the
# worker (proof that it was reporting while it was measured).
greend_reports() {
	"$B/greenctl" -s "$tmp/gd-$1/greend.sock" status --json 2>/dev/null |
		/usr/bin/python3 -c 'import json, sys
w = json.load(sys.stdin)["workers"][0]
print(w["channel"]["received"] if w.get("channel") else 0)' 2>/dev/null
}

# best LABEL KEY FILE: the largest value of rows "LABEL KEY VALUE" (or the
# smallest, for a time, when LOWER=1), and the spread of all of them as a
# percentage of it: "best spread".
best() {
	awk -v l="$1" -v k="$2" -v lower="${LOWER:-0}" '$1 == l && $2 == k {
		v = $3 + 0
		if (n == 0 || v > hi) hi = v
		if (n == 0 || v < lo) lo = v
		n++ }
	END {
		if (!n) { print "0 0"; exit }
		b = lower ? lo : hi
		printf "%s %.0f\n", b, (b > 0 ? 100 * (hi - lo) / b : 0) }' "$3"
}

# three_way TITLE KEY FILE TARGET [UNIT]: one table row from rows labelled
# native, green (greenctl run) and greend (a worker of greend): each best
# and its spread, and both ratios against native with their verdicts.
# With LOWER=1 the values are times and the ratio is native/green; FMT is
# the values' printf format (default %.0f).  TARGET - prints the ratios
# without a verdict (CPU per request: it explains a row, it is no goal).
three_way() {
	local title=$1 key=$2 file=$3 target=$4 n g d ns gs ds rg rd

	read -r n ns < <(best native "$key" "$file")
	read -r g gs < <(best green "$key" "$file")
	read -r d ds < <(best greend "$key" "$file")
	if [ "${LOWER:-0}" = 1 ]; then
		rg=$(ratio "$n" "$g")
		rd=$(ratio "$n" "$d")
	else
		rg=$(ratio "$g" "$n")
		rd=$(ratio "$d" "$n")
	fi
	n=$(printf "${FMT:-%.0f}" "$n")
	g=$(printf "${FMT:-%.0f}" "$g")
	d=$(printf "${FMT:-%.0f}" "$d")
	if [ "$target" = - ]; then
		# A figure that explains the others, with no target of its own.
		printf '%-16s %10s ±%-3s %10s ±%-3s %10s ±%-3s %6sx      %6sx\n' \
			"$title" "$n" "$ns%" "$g" "$gs%" "$d" "$ds%" "$rg" "$rd"
		return
	fi
	printf '%-16s %10s ±%-3s %10s ±%-3s %10s ±%-3s %6sx %s %6sx %s (>= %s)\n' \
		"$title" "$n" "$ns%" "$g" "$gs%" "$d" "$ds%" \
		"$rg" "$(verdict "$rg" '>=' "$target")" "$rd" "$(verdict "$rd" '>=' "$target")" "$target"
}

three_way_header() {
	printf '%-16s %15s %15s %15s %12s %12s\n' "$1" native green greend green/nat greend/nat
}

# ---- echo -------------------------------------------------------------------

# The same pthread echo server natively (a) and greened (b), and the libev
# one (c), each under loadgen with N connections (issue 5).
needs_echo() {
	echo examples/echo_threads
	echo examples/echo_libev
	echo bench/loadgen
	echo greenctl
	echo libgreen-preload.so
}

# echo_run LABEL N MSGS CMD...: one fresh server, one loadgen run; appends
# "LABEL msgs/s p99_us rss_kB threads kstack_kB" to $tmp/echo.rows, where
# kstack is how much KernelStack grew over its value before the server
# started (the server's threads; loadgen has one).
echo_run() {
	local label=$1 n=$2 m=$3 json rc st rss thr ks ks0 sampler bad err
	shift 3

	kernel_stack_kb ks0
	start_echo "$tmp/server.out" "$@" || return 1
	rm -f "$tmp/sample" "$tmp/sample.nap"
	sample "$server" "$tmp/sample" &
	sampler=$!
	pids+=("$sampler")
	json=$(timeout -k 5 120 "$B/bench/loadgen" -p "$port" -c "$n" -n "$m" \
		-s 64 -t 90 2>"$tmp/loadgen.err")
	rc=$?
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null
	read -r rss thr ks <"$tmp/sample" 2>/dev/null || { rss=0; thr=0; ks=0; }
	ks=$((${ks:-0} > ${ks0:-0} ? ks - ks0 : 0))
	if [ "$label" = greend ]; then
		stop_pid "$gd"
		rm -rf -- "$tmp/gd-echo"
	fi
	stop_pid "$server"
	bad=$(jget bad_bytes "$json")
	err=$(jget errors "$json")
	if [ $rc -ne 0 ] || [ "${bad:-1}" != 0 ] || [ "${err:-1}" != 0 ]; then
		echo "run.sh: loadgen against $label, $n connections: exit $rc," \
			"errors ${err:-?}, bad bytes ${bad:-?}" >&2
		sed 's/^/  /' "$tmp/loadgen.err" >&2
		printf '%-7s %-10s %s\n' "$n" "$label" "FAILED (exit $rc, errors ${err:-?}, bad bytes ${bad:-?})"
		return 1
	fi
	st="$label $(jget msgs_per_s "$json") $(jget p99_us "$json") $rss $thr $ks"
	echo "$st" >>"$tmp/echo.rows"
	awk -v n="$n" -v s="$st" 'BEGIN {
		split(s, f, " ")
		printf "%-7s %-10s %11.0f %9.2f %9.1f %10.1f %8d\n", n, f[1], f[2], f[3] / 1000, f[4] / 1024, f[6] / 1024, f[5] }'
}

table_echo() {
	local n m total lim status=0 ns=(100 1000 10000) a b c d k rows a_thr a_rss a_ks b_thr b_rss b_ks c_thr d_thr
	local runs=3 i spread

	tmpdir
	total=300000
	if quick; then
		ns=(100 1000)
		total=60000
		runs=1
	fi
	ulimit -n 100000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
	lim=$(ulimit -n)
	echo "open files: ulimit -n is $lim"
	echo "pthread: native; green: greenctl run; greend: a worker of greend, reporting; libev: by hand"
	echo "each server's best of $runs alternated runs (every run is printed; the ratios use the best)"
	printf '%-7s %-10s %11s %9s %9s %10s %8s\n' conns server msgs/s p99_ms RSS_MiB kstack_MiB threads
	for n in "${ns[@]}"; do
		if [ "$lim" != unlimited ] && ((lim < n + 100)); then
			echo "$n connections: skipped, ulimit -n is $lim and cannot be raised to $((n + 100))"
			continue
		fi
		m=$((total / n))
		((m < 20)) && m=20
		: >"$tmp/echo.rows"
		for ((i = 0; i < runs; i++)); do
			echo_run pthread "$n" "$m" "$B/examples/echo_threads" || { status=1; continue 2; }
			echo_run green "$n" "$m" "${green[@]}" "$B/examples/echo_threads" || { status=1; continue 2; }
			echo_run libev "$n" "$m" "$B/examples/echo_libev" || { status=1; continue 2; }
			echo_run greend "$n" "$m" greend "$B/examples/echo_threads" || { status=1; continue 2; }
		done
		# Each server's best run by msgs/s (its other columns with it),
		# in the order pthread, green, libev, greend; and its spread.
		rows=$(for l in pthread green libev greend; do
			awk -v l=$l '$1 == l && $2 + 0 > m { m = $2 + 0; r = $0 } END { print r }' "$tmp/echo.rows"
		done)
		spread=$(awk '{ v = $2 + 0
			if (!($1 in hi) || v > hi[$1]) hi[$1] = v
			if (!($1 in lo) || v < lo[$1]) lo[$1] = v }
			END { n = split("pthread green libev greend", l, " ")
				for (i = 1; i <= n; i++)
					printf "%s ±%.0f%%  ", l[i], (hi[l[i]] > 0 ? 100 * (hi[l[i]] - lo[l[i]]) / hi[l[i]] : 0) }' \
			"$tmp/echo.rows")
		read -r _ a_thr _ a_rss _ a_ks < <(sed -n 1p <<<"$rows")
		read -r _ b_thr _ b_rss _ b_ks < <(sed -n 2p <<<"$rows")
		read -r _ c_thr _ _ _ _ < <(sed -n 3p <<<"$rows")
		read -r _ d_thr _ _ _ _ < <(sed -n 4p <<<"$rows")
		a=$(ratio "$b_thr" "$a_thr")
		b=$(ratio "$b_rss" "$a_rss")
		c=$(ratio "$b_thr" "$c_thr")
		d=$(ratio "$d_thr" "$c_thr")
		k=$(ratio "$((b_rss + b_ks))" "$((a_rss + a_ks))")
		if [ "$n" = 1000 ]; then
			printf '%-7s b/a msgs/s %5sx (target >= 2    %s)  b/a RSS %5sx (target <= 0.10 %s)  b/c msgs/s %5sx (target >= 0.85 %s)\n' \
				"$n" "$a" "$(verdict "$a" '>=' 2)" "$b" "$(verdict "$b" '<=' 0.10)" \
				"$c" "$(verdict "$c" '>=' 0.85)"
			printf '%-7s b/a RSS+kstack %5sx  greend/libev msgs/s %5sx\n' "" "$k" "$d"
		elif [ "$n" = 10000 ]; then
			printf '%-7s b/a msgs/s %5sx  b/a RSS %5sx  b/a RSS+kstack %5sx  b/c msgs/s %5sx (target >= 0.9 %s)  greend/libev %5sx (%s)\n' \
				"$n" "$a" "$b" "$k" "$c" "$(verdict "$c" '>=' 0.9)" "$d" "$(verdict "$d" '>=' 0.9)"
		else
			printf '%-7s b/a msgs/s %5sx  b/a RSS %5sx  b/a RSS+kstack %5sx  b/c msgs/s %5sx  greend/libev %5sx\n' "$n" "$a" "$b" "$k" "$c" "$d"
		fi
		printf '%-7s msgs/s spread: %s\n' "" "$spread"
	done
	stop_all
	return $status
}

# ---- http -----------------------------------------------------------------

# CPython's http.server natively and greened, under wrk (issue 5).
needs_http() {
	echo greenctl
	echo libgreen-preload.so
}

# http_once LABEL PORT: one wrk run; appends "LABEL rps REQ/S" to
# $tmp/http.rows.
http_once() {
	wrk_small "$1" "$2" "$tmp/http.rows"
}

# wrk_small, wrk_root LABEL PORT ROWS: servers3 clients.
wrk_small() {
	wrk_once "$1" "http://127.0.0.1:$2/small.txt" "$3"
}

wrk_root() {
	wrk_once "$1" "http://127.0.0.1:$2/" "$3"
}

# CPython's http.server under gevent's monkey patching: what a Python user
# would use instead of the shim.
gevent_http=(/usr/bin/python3 -c 'from gevent import monkey
monkey.patch_all()
import runpy, sys
sys.argv[0] = "http.server"
runpy.run_module("http.server", run_name="__main__", alter_sys=True)')

table_http() {
	local pn pg pd pv sn sg sv runs=2 i got labels=(native green greend) l r v

	command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; return 1; }
	tmpdir
	quick && runs=1
	mkdir -p "$tmp/www"
	head -c 1024 /dev/zero | tr '\0' x >"$tmp/www/small.txt"
	pn=$(free_port) && pg=$(free_port) && pd=$(free_port) && pv=$(free_port) || return 1
	/usr/bin/python3 -m http.server -b 127.0.0.1 -d "$tmp/www" "$pn" >/dev/null 2>&1 &
	sn=$!
	pids+=("$sn")
	"${green[@]}" /usr/bin/python3 -m http.server -b 127.0.0.1 -d "$tmp/www" "$pg" >/dev/null 2>&1 &
	sg=$!
	pids+=("$sg")
	greend_start http /usr/bin/python3 -m http.server -b 127.0.0.1 -d "$tmp/www" "$pd" ||
		{ stop_all; return 1; }
	wait_tcp "$pn" "$sn" || { echo "run.sh: native http.server did not start" >&2; stop_all; return 1; }
	wait_tcp "$pg" "$sg" || { echo "run.sh: green http.server did not start" >&2; stop_all; return 1; }
	wait_tcp "$pd" "$wpid" || { echo "run.sh: http.server under greend did not start" >&2; stop_all; return 1; }
	if /usr/bin/python3 -c 'import gevent' 2>/dev/null; then
		"${gevent_http[@]}" -b 127.0.0.1 -d "$tmp/www" "$pv" >/dev/null 2>&1 &
		sv=$!
		pids+=("$sv")
		wait_tcp "$pv" "$sv" || { echo "run.sh: http.server under gevent did not start" >&2; stop_all; return 1; }
		labels+=(gevent)
	fi
	: >"$tmp/http.rows"
	for ((i = 0; i < runs; i++)); do
		for l in "${labels[@]}"; do
			case $l in
			native) http_once native "$pn" ;;
			green) http_once green "$pg" ;;
			greend) http_once greend "$pd" ;;
			gevent) http_once gevent "$pv" ;;
			esac || { stop_all; return 1; }
		done
	done
	got=$(greend_reports http)
	stop_all
	echo "CPython http.server, 1 KiB file, wrk -t2 -c50, best of $runs alternated, ±spread;"
	echo "greend: a worker of greend, reporting (${got:-0} messages received)"
	three_way_header "server"
	three_way "req/s" rps "$tmp/http.rows" 1.0
	if [[ " ${labels[*]} " == *" gevent "* ]]; then
		read -r v _ < <(best gevent rps "$tmp/http.rows")
		read -r r _ < <(best green rps "$tmp/http.rows")
		r=$(ratio "$r" "$v")
		printf 'gevent (monkey.patch_all) %.0f req/s; green/gevent %sx\n' "$v" "$r"
	else
		echo "gevent: not installed (apt-get install python3-gevent), no row"
	fi
}

# ---- redis ----------------------------------------------------------------

# redis-server natively and greened, under redis-benchmark: "do no harm"
# (issue 3, issue 5).
needs_redis() {
	echo greenctl
	echo libgreen-preload.so
}

# redis_once LABEL PORT: one redis-benchmark run; appends "LABEL TEST req/s".
redis_once() {
	local label=$1 p=$2 n=100000 out

	quick && n=20000
	out=$(timeout -k 5 120 redis-benchmark -h 127.0.0.1 -p "$p" -q -t set,get \
		-n "$n" -c 50 2>&1 | tr '\r' '\n')
	if ! grep -q '^SET: .*requests per second' <<<"$out" ||
		! grep -q '^GET: .*requests per second' <<<"$out"; then
		echo "run.sh: redis-benchmark against $label failed:" >&2
		tail -n 5 <<<"$out" | sed 's/^/  /' >&2
		return 1
	fi
	sed -n "s/^\(SET\|GET\): \([0-9.]*\) requests per second.*/$label \1 \2/p" \
		<<<"$out" >>"$tmp/redis.rows"
}

table_redis() {
	local pn pg pd sn sg i t l c0 n=100000 runs=5 got
	local -A port=() pid=()

	command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
		{ echo "redis-server or redis-benchmark is missing (apt-get install redis-server)"; return 1; }
	tmpdir
	quick && { n=20000; runs=1; }
	pn=$(free_port) && pg=$(free_port) && pd=$(free_port) || return 1
	redis-server --port "$pn" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --logfile "$tmp/redis-native.log" &
	sn=$!
	pids+=("$sn")
	"${green[@]}" redis-server --port "$pg" --bind 127.0.0.1 --save '' --appendonly no \
		--daemonize no --logfile "$tmp/redis-green.log" &
	sg=$!
	pids+=("$sg")
	greend_start redis "$(command -v redis-server)" --port "$pd" --bind 127.0.0.1 --save '' \
		--appendonly no --daemonize no --logfile "$tmp/redis-greend.log" || { stop_all; return 1; }
	wait_tcp "$pn" "$sn" || { echo "run.sh: native redis-server did not start" >&2; stop_all; return 1; }
	wait_tcp "$pg" "$sg" || { echo "run.sh: green redis-server did not start" >&2; stop_all; return 1; }
	wait_tcp "$pd" "$wpid" || { echo "run.sh: redis-server under greend did not start" >&2; stop_all; return 1; }
	: >"$tmp/redis.rows"
	port=([native]=$pn [green]=$pg [greend]=$pd)
	pid=([native]=$sn [green]=$sg [greend]=$wpid)
	for ((i = 0; i < runs; i++)); do
		for l in native green greend; do
			c0=$(cpu_ticks "${pid[$l]}")
			redis_once "$l" "${port[$l]}" || { stop_all; return 1; }
			# The server's CPU per request (SET and GET) of this run.
			echo "$l cpu_us $(awk -v c="$(($(cpu_ticks "${pid[$l]}") - c0))" \
				-v hz="$(getconf CLK_TCK)" -v n="$n" \
				'BEGIN { printf "%.1f", 1e6 * c / hz / (2 * n) }')" >>"$tmp/redis.rows"
		done
	done
	got=$(greend_reports redis)
	stop_all
	echo "redis-benchmark -t set,get -n $n -c 50, best of $runs alternated, ±spread;"
	echo "greend: a worker of greend, reporting (${got:-0} messages received)"
	three_way_header "test req/s"
	for t in SET GET; do
		three_way "$t" "$t" "$tmp/redis.rows" 0.97
	done
	LOWER=1 FMT=%.1f three_way "cpu us/req" cpu_us "$tmp/redis.rows" -
}

# ---- programs that run once and time themselves ------------------------------

# greend_once CMD...: CMD run once as the worker of a greend of its own;
# $tmp/gd-once/greend.log gets greend's output.  The wait reads greend's
# output through a FIFO with the shell's own read, so that nothing runs
# beside the program while it is measured, as for the native and green
# runs: a loop that starts grep and sleep ten times a second cost the
# measured program 7% of its CPU time on the 2-core VM (bench/README.md).
greend_once() {
	local d="$tmp/gd-once" fd line rc=1
	greend_conf "$d" "$@" || return 1
	mkfifo "$d/out" || return 1
	"$B/greend" -f -c "$d/greend.json" >"$d/out" 2>&1 &
	gd=$!
	pids+=("$gd")
	exec {fd}<"$d/out"
	# Each line within 120 s: the program's own time limit.
	while IFS= read -r -t 120 -u "$fd" line; do
		printf '%s\n' "$line" >>"$d/greend.log"
		case $line in
		"w:0: elapsed "* | "w:0: lost "*) rc=0; break ;;
		# the worker ended (or never started) without it
		"greend: w:0: "*" -> exited" | "greend: w:0: "*" -> backoff" | \
			"greend: w:0: "*" -> fatal") break ;;
		esac
	done
	stop_pid "$gd"
	cat <&"$fd" >>"$d/greend.log"
	exec {fd}<&-
	return $rc
}

# once LABEL KEY FILE CMD...: run CMD natively (native), under greenctl run
# (green) or as a worker of greend (greend), wait (at most 120 s) for its
# "elapsed S" line and append "LABEL KEY S" to FILE (and "LABEL cpu S" for
# a "cpu S" line).
once() {
	local label=$1 key=$2 file=$3 out t
	shift 3

	out="$tmp/once.out"
	case $label in
	native) timeout -k 5 120 "$@" >"$out" 2>&1 ;;
	green) timeout -k 5 120 "${green[@]}" "$@" >"$out" 2>&1 ;;
	greend)
		# greend's own lines too when the program did not finish.
		if greend_once "$@"; then
			sed -n 's/^w:0: //p' "$tmp/gd-once/greend.log" >"$out"
		else
			cp "$tmp/gd-once/greend.log" "$out"
		fi
		rm -rf -- "$tmp/gd-once"
		;;
	esac
	t=$(sed -n 's/^elapsed \([0-9.]*\)$/\1/p' "$out")
	if [ -z "$t" ]; then
		echo "run.sh: $label $* did not finish:" >&2
		tail -n 5 "$out" | sed 's/^/  /' >&2
		return 1
	fi
	echo "$label $key $t" >>"$file"
	sed -n "s/^cpu \([0-9.]*\)$/$label cpu \1/p" "$out" >>"$file"
}

# ---- queue ------------------------------------------------------------------

# CPython queue.Queue between 10 producer and 10 consumer threads (issue 14).
needs_queue() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
}

table_queue() {
	local runs=5 items=200000 i l

	tmpdir
	quick && { runs=1; items=20000; }
	: >"$tmp/queue.rows"
	for ((i = 0; i < runs; i++)); do
		for l in native green greend; do
			once "$l" s "$tmp/queue.rows" /usr/bin/python3 "$root/bench/queue_threads.py" "$items" ||
				return 1
		done
	done
	echo "CPython queue.Queue, 10 producers, 10 consumers, $items items: seconds, best of $runs alternated"
	three_way_header "program"
	LOWER=1 FMT=%.3f three_way "wall s" s "$tmp/queue.rows" 1.0
	LOWER=1 FMT=%.3f three_way "cpu s" cpu "$tmp/queue.rows" -
}

# ---- pg -------------------------------------------------------------------

# CPython + psycopg2, 100 threads of point queries against a throwaway
# PostgreSQL in a temp dir (issue 14).  PostgreSQL refuses to run as root:
# as root, its cluster belongs to the postgres user.
needs_pg() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
}

pg_bin=/usr/lib/postgresql/15/bin

table_pg() {
	local runs=9 i l d port as=() status=0

	[ -x "$pg_bin/postgres" ] || { echo "PostgreSQL 15 is missing (apt-get install postgresql-15), no row"; return 0; }
	/usr/bin/python3 -c 'import psycopg2' 2>/dev/null ||
		{ echo "psycopg2 is missing (apt-get install python3-psycopg2), no row"; return 0; }
	if quick; then
		echo "QUICK=1: skipped (initdb alone takes seconds)"
		return 0
	fi
	tmpdir
	d="$tmp/pg"
	mkdir -p "$d"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || { echo "run.sh: as root, PostgreSQL needs a postgres user" >&2; return 1; }
		chown postgres: "$d"
		chmod 755 "$tmp"
		as=(runuser -u postgres --)
	fi
	port=$(free_port) || return 1
	"${as[@]}" "$pg_bin/initdb" -D "$d/data" -U postgres --auth=trust >"$d/initdb.log" 2>&1 ||
		{ echo "run.sh: initdb failed:" >&2; tail -n 5 "$d/initdb.log" >&2; return 1; }
	"${as[@]}" "$pg_bin/pg_ctl" -D "$d/data" -l "$d/pg.log" -w -t 30 \
		-o "-k $d -p $port -c listen_addresses= -c max_connections=200 -c fsync=off" start >/dev/null ||
		{ echo "run.sh: PostgreSQL did not start:" >&2; tail -n 5 "$d/pg.log" >&2; return 1; }
	/usr/bin/python3 -c 'import sys, psycopg2
c = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), dbname="postgres", user="postgres")
c.autocommit = True
c.cursor().execute("CREATE TABLE kv (k int PRIMARY KEY, v int); "
                   "INSERT INTO kv SELECT g, g * 7 FROM generate_series(0, 999) g")' "$d" "$port" ||
		{ "${as[@]}" "$pg_bin/pg_ctl" -D "$d/data" -m immediate stop >/dev/null; return 1; }
	: >"$tmp/pg.rows"
	for ((i = 0; i < runs && status == 0; i++)); do
		for l in native green greend; do
			once "$l" s "$tmp/pg.rows" /usr/bin/python3 "$root/bench/pg_threads.py" "$d" "$port" 100 200 ||
				{ status=1; break; }
		done
	done
	"${as[@]}" "$pg_bin/pg_ctl" -D "$d/data" -m fast stop >/dev/null
	[ $status = 0 ] || return 1
	echo "CPython + psycopg2, 100 threads x 200 point queries, PostgreSQL 15 on a Unix socket:"
	echo "seconds, best of $runs alternated"
	three_way_header "program"
	LOWER=1 FMT=%.3f three_way "wall s" s "$tmp/pg.rows" 1.0
	LOWER=1 FMT=%.3f three_way "cpu s" cpu "$tmp/pg.rows" -
}

# ---- servers under wrk ---------------------------------------------------------

# servers3 NAME CLIENT TARGET TITLE CMD...: CMD (where @PORT@ stands for
# its port and @DIR@ for a directory of its own) natively, under greenctl
# run and as a worker of greend, then "CLIENT LABEL PORT ROWS" on each in
# turn (it appends "LABEL rps N" to ROWS), best of runs; prints the table.
servers3() {
	local name=$1 client=$2 target=$3 title=$4 runs=5 i l got p sp c0 n0 run_s=5
	local -A port=() pid=()
	shift 4

	quick && { runs=1; run_s=2; }
	for l in native green greend; do
		p=$(free_port) || return 1
		port[$l]=$p
		local cmd=("${@//@PORT@/$p}")
		cmd=("${cmd[@]//@DIR@/$tmp/$name-$l}")
		mkdir -p "$tmp/$name-$l"
		case $l in
		native) "${cmd[@]}" >"$tmp/$name-$l/out" 2>&1 & sp=$! ;;
		green) "${green[@]}" "${cmd[@]}" >"$tmp/$name-$l/out" 2>&1 & sp=$! ;;
		greend) greend_start "$name" "${cmd[@]}" || { stop_all; return 1; }; sp=$wpid ;;
		esac
		[ "$l" = greend ] || pids+=("$sp")
		pid[$l]=$sp
	done
	for l in native green greend; do
		wait_tcp "${port[$l]}" "${pid[$l]}" ||
			{ echo "run.sh: $name ($l) did not start:" >&2; tail -n 5 "$tmp/$name-$l/out" >&2; stop_all; return 1; }
	done
	: >"$tmp/$name.rows"
	for ((i = 0; i < runs; i++)); do
		for l in native green greend; do
			c0=$(cpu_ticks "${pid[$l]}")
			n0=$(wc -l <"$tmp/$name.rows")
			"$client" "$l" "${port[$l]}" "$tmp/$name.rows" || { stop_all; return 1; }
			# The server's CPU per request of this run, in microseconds.
			awk -v l="$l" -v c="$(($(cpu_ticks "${pid[$l]}") - c0))" -v hz="$(getconf CLK_TCK)" \
				-v d="${run_s:-5}" 'NR > '"$n0"' && $2 == "rps" && $3 > 0 {
					printf "%s cpu_us %.1f\n%s cores %.2f\n", l, 1e6 * c / hz / ($3 * d),
						l, c / hz / d }' \
				"$tmp/$name.rows" >>"$tmp/$name.rows"
		done
	done
	got=$(greend_reports "$name")
	stop_all
	echo "$title, best of $runs alternated, ±spread;"
	echo "greend: a worker of greend, reporting (${got:-0} messages received)"
	three_way_header "server"
	three_way "${unit:-req/s}" rps "$tmp/$name.rows" "$target"
	LOWER=1 FMT=%.1f three_way "cpu us/req" cpu_us "$tmp/$name.rows" -
	FMT=%.2f three_way "server cores" cores "$tmp/$name.rows" -
}

# cpu_ticks PID: the CPU time (clock ticks) PID and its children (nginx's
# workers, under its master) have used so far.
cpu_ticks() {
	awk -v p="$1" '{
		# comm (field 2) may hold spaces: count fields from its end.
		sub(/^.*\) /, "")
		if (FILENAME == "/proc/" p "/stat" || $2 == p) t += $12 + $13 }
		END { print t + 0 }' /proc/"$1"/stat $(grep -l "^[0-9]* ([^)]*) . $1 " /proc/[0-9]*/stat 2>/dev/null) 2>/dev/null
}

# wrk_once LABEL URL FILE: one wrk run; appends "LABEL rps REQ/S" to FILE.
wrk_once() {
	local d=5s out rps

	quick && d=2s
	out=$(timeout -k 5 60 wrk -t2 -c50 -d"$d" "$2" 2>&1)
	rps=$(sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' <<<"$out")
	if [ -z "$rps" ]; then
		echo "run.sh: wrk against $1 failed:" >&2
		sed 's/^/  /' <<<"$out" >&2
		return 1
	fi
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		echo "note: $1: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | paste -sd ';')"
	fi
	echo "$1 rps $rps" >>"$3"
}

# ---- node -------------------------------------------------------------------

# node's own http module, one process (issue 14).
needs_node() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
}

table_node() {
	skipped_when_quick && return 0
	command -v node >/dev/null || { echo "node is not installed (apt-get install nodejs), no row"; return 0; }
	tmpdir
	command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; return 1; }
	servers3 node wrk_root 0.97 "node $(node --version) http.createServer, 5-byte body, wrk -t2 -c50" \
		"$(command -v node)" -e 'require("http").createServer((q, r) => r.end("hello"))
.listen(+process.argv[1], "127.0.0.1")' @PORT@
}

# ---- nginx ------------------------------------------------------------------

# nginx, one worker process, a 1 KiB static file (issue 14).
needs_nginx() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
}

table_nginx() {
	skipped_when_quick && return 0
	local ngx

	ngx=$(command -v nginx || echo /usr/sbin/nginx)
	[ -x "$ngx" ] || { echo "nginx is not installed (apt-get install nginx-light), no row"; return 0; }
	tmpdir
	mkdir -p "$tmp/www"
	head -c 1024 /dev/zero | tr '\0' x >"$tmp/www/small.txt"
	chmod 755 "$tmp" "$tmp/www"
	cat >"$tmp/nginx.conf" <<-EOF
	daemon off;
	master_process on;
	worker_processes 1;
	pid nginx.pid;
	error_log stderr warn;
	events { worker_connections 1024; }
	http {
		access_log off;
		client_body_temp_path tmp-body;
		proxy_temp_path tmp-proxy;
		fastcgi_temp_path tmp-fastcgi;
		uwsgi_temp_path tmp-uwsgi;
		scgi_temp_path tmp-scgi;
		server { listen 127.0.0.1:PORT; root $tmp/www; }
	}
	EOF
	# nginx reads its port from the configuration: one file per run.
	command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)"; return 1; }
	servers3 nginx wrk_small 0.97 "nginx $("$ngx" -v 2>&1 | sed 's/.*\///'), 1 worker, 1 KiB file, wrk -t2 -c50" \
		/bin/sh -c 'sed "s/PORT/$1/" "$2" >"$3/nginx.conf" && exec "$4" -p "$3" -c "$3/nginx.conf"' \
		sh @PORT@ "$tmp/nginx.conf" @DIR@ "$ngx"
}

# ---- memcached ----------------------------------------------------------------

# memcached with its 4 worker threads, under memcaslap (libmemcached-tools:
# 2 threads, 32 concurrent clients, 9 gets to 1 set of 64-byte values).
needs_memcached() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
}

memcaslap_once() {
	local d=5s out tps

	quick && d=2s
	out=$(timeout -k 5 60 memcaslap -s "127.0.0.1:$2" -T "${clients:-2}" -c 32 -t "$d" -X 64 2>&1)
	tps=$(sed -n 's/^Run time: .* TPS: \([0-9]*\) .*/\1/p' <<<"$out")
	if [ -z "$tps" ]; then
		echo "run.sh: memcaslap against $1 failed:" >&2
		tail -n 5 <<<"$out" | sed 's/^/  /' >&2
		return 1
	fi
	echo "$1 rps $tps" >>"$3"
}

table_memcached() {
	skipped_when_quick && return 0
	local mc

	mc=$(command -v memcached || echo /usr/bin/memcached)
	[ -x "$mc" ] || { echo "memcached is not installed (apt-get install memcached), no row"; return 0; }
	command -v memcaslap >/dev/null ||
		{ echo "memcaslap is not installed (apt-get install libmemcached-tools), no row"; return 0; }
	tmpdir
	# Two client threads and the green server's one OS thread share two
	# cores, so the scheduler gives the server about a third of the
	# machine; with one client thread it gets a core (bench/README.md).
	for clients in 2 1; do
		[ "$clients" = 1 ] && echo
		clients=$clients unit=ops/s servers3 memcached memcaslap_once 0.97 \
			"memcached -t 4, memcaslap -T $clients -c 32, ops/s" \
			"$mc" -u nobody -l 127.0.0.1 -p @PORT@ -t 4 || return 1
	done
}

# ---- driver ---------------------------------------------------------------

quick() {
	[ -n "$QUICK" ] && [ "$QUICK" != 0 ]
}

# skipped_when_quick: true (after saying so) for a table that QUICK=1 drops;
# CI still runs the greend rows of the tables that stay.
skipped_when_quick() {
	quick || return 1
	echo "QUICK=1: skipped (the greend rows of echo, http, redis and queue run)"
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
# ---- listen -----------------------------------------------------------------

# One greend-held port, 1 and 2 instances of the same server behind it
# (issue 10): does a second instance on this 2-core machine add throughput?
needs_listen() {
	echo greend
	echo greenctl
	echo libgreen-preload.so
	echo examples/echo_threads
	echo bench/loadgen
}

# listen_once KIND N: greend with N instances of KIND (echo or http) on one
# port it holds; prints the throughput (msgs/s or req/s).
listen_once() {
	local kind=$1 n=$2 p gd cmd i out d=5s m=200

	quick && { d=2s; m=50; }
	p=$(free_port) || return 1
	if [ "$kind" = echo ]; then
		cmd="[\"$B/examples/echo_threads\", \"-q\", \"-p\", \"$p\"]"
	else
		cmd="[\"/usr/bin/python3\", \"-m\", \"http.server\", \"-b\", \"127.0.0.1\", \"-d\", \"$tmp/www\", \"$p\"]"
	fi
	cat >"$tmp/greend.json" <<-EOF
	{"control_socket": "$tmp/greend.sock", "preload": "$B/libgreen-preload.so",
	 "workers": [{"name": "srv", "instances": $n, "listen": ["127.0.0.1:$p"],
	              "start_secs": 0, "command": $cmd}]}
	EOF
	"$B/greend" -f -c "$tmp/greend.json" >"$tmp/greend.log" 2>&1 &
	gd=$!
	pids+=("$gd")
	for ((i = 0; i < 100; i++)); do
		[ "$("$B/greenctl" -s "$tmp/greend.sock" status --json 2>/dev/null |
			grep -o '"state": *"accepting"' | wc -l)" -ge "$n" ] && break
		sleep 0.1
	done
	if [ "$kind" = echo ]; then
		out=$(timeout -k 5 120 "$B/bench/loadgen" -p "$p" -c 100 -n "$m" -s 64 -t 90 2>&1)
		jget msgs_per_s "$out"
	else
		out=$(timeout -k 5 60 wrk -t2 -c50 -d"$d" "http://127.0.0.1:$p/small.txt" 2>&1)
		sed -n 's/^Requests\/sec:[[:space:]]*\([0-9.]*\).*/\1/p' <<<"$out"
	fi
	stop_pid "$gd"
}

table_listen() {
	local kind one two

	tmpdir
	mkdir -p "$tmp/www"
	head -c 1024 /dev/zero | tr '\0' x >"$tmp/www/small.txt"
	echo "one port held by greend, instances of one unmodified server behind it (greened)"
	printf '%-22s %12s %12s %8s\n' server 1-instance 2-instances 2/1
	for kind in echo http; do
		if [ "$kind" = http ] && ! command -v wrk >/dev/null; then
			echo "http.server: skipped, wrk is not installed (apt-get install wrk)"
			continue
		fi
		one=$(listen_once "$kind" 1)
		two=$(listen_once "$kind" 2)
		if [ -z "$one" ] || [ -z "$two" ]; then
			echo "run.sh: the $kind run behind greend failed" >&2
			sed 's/^/  /' "$tmp/greend.log" | tail -20 >&2
			stop_all
			return 1
		fi
		printf '%-22s %12.0f %12.0f %7sx\n' \
			"$([ "$kind" = echo ] && echo "echo_threads msgs/s" || echo "http.server req/s")" \
			"$one" "$two" "$(ratio "$two" "$one")"
	done
	stop_all
}

# ---- tls --------------------------------------------------------------------

# What per-green-thread TLS costs a switch, by the size of the program's TLS,
# as a ratio to the bare switch (issue 13; bench/bench_tls.c says how).
SECTIONS+=(tls)

needs_tls() {
	echo libgreen-preload.so
	echo bench/bench_tls
	echo tests/helpers/libtls_blob0.so
	echo tests/helpers/libtls_blob1k.so
	echo tests/helpers/libtls_blob16k.so
}

table_tls() {
	"$B/bench/bench_tls" "$B/libgreen-preload.so" "$B/tests/helpers"
}

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

trap cleanup EXIT
trap 'exit 130' INT TERM

main "$@"
