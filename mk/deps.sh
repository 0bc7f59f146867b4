#!/usr/bin/env bash
# deps.sh - makes sure the Debian packages the build (and, with "test", the
# tests and benchmarks) need are installed.  As root it installs what is
# missing; otherwise it prints the command to run and fails, so a build never
# stops halfway on a missing header.
#
#   mk/deps.sh          check/install DEPS
#   mk/deps.sh test     check/install DEPS and DEPS_TEST
#   mk/deps.sh deb      check/install DEPS and DEPS_DEB (make deb)
#   mk/deps.sh fuzz     check/install DEPS and DEPS_FUZZ (make fuzz only)
#
# Add packages to the lists below (real package names: dpkg-query does not
# know virtual ones).
set -euo pipefail

# One package a line, so that changes to the lists merge cleanly.
DEPS=(
	libev-dev
	libjansson-dev
	libcmocka-dev
	libmicrohttpd-dev
	pkg-config
)
DEPS_TEST=(
	python3
	curl
	redis-server
	redis-tools
	wrk
	gdb
	g++
	postgresql-15
	pbzip2
	siege
	prometheus
	rustc
	ruby
	openjdk-17-jre-headless
	memcached
	libmemcached-tools
	nginx-light
	python3-psycopg2
	python3-gevent
	nodejs
)

DEPS_DEB=(
	dpkg-dev
	debhelper
	lintian
)
# libFuzzer: clang and its sanitizer runtimes, for `make fuzz` only.
DEPS_FUZZ=(
	clang
	libclang-rt-14-dev
)

prog=mk/deps.sh

case ${1:-build} in
build) want=("${DEPS[@]}") ;;
test) want=("${DEPS[@]}" "${DEPS_TEST[@]}") ;;
deb) want=("${DEPS[@]}" "${DEPS_DEB[@]}") ;;
fuzz) want=("${DEPS[@]}" "${DEPS_FUZZ[@]}") ;;
*)
	echo "usage: $prog [test|deb|fuzz]" >&2
	exit 2
	;;
esac

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "$prog: no dpkg-query (not Debian?); assuming these are installed: ${want[*]}" >&2
	exit 0
fi

installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == *" installed" ]]
}

missing_of() {
	local p
	for p in "$@"; do
		installed "$p" || printf '%s\n' "$p"
	done
}

mapfile -t missing < <(missing_of "${want[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0

echo "$prog: missing packages: ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
	echo "$prog: install them with:" >&2
	echo "    sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# A failed update (no network, one bad mirror) may still leave usable lists.
apt-get update -q || echo "$prog: apt-get update failed; trying the install anyway" >&2
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
	"${missing[@]}"

mapfile -t missing < <(missing_of "${want[@]}")
if [ ${#missing[@]} -ne 0 ]; then
	echo "$prog: still missing after apt-get install: ${missing[*]}" >&2
	exit 1
fi
