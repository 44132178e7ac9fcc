#!/bin/sh
# run-tests.sh LAYOUT [TEST...] [-- LIBTEST-ARGS...] — run husk's integration tests as root in
# a qemu VM (Debian's kernel, see vm.sh) whose cgroups are laid out as LAYOUT:
#   v1      cgroup v1 only (a hierarchy per controller, cpu,cpuacct and net_cls,net_prio
#           co-mounted, name=systemd), as on a systemd host booted with cgroup v1
#   v2      cgroup2 only at /sys/fs/cgroup, every controller enabled in the root's
#           cgroup.subtree_control
#   hybrid  v1 plus cgroup2 (no controllers) at /sys/fs/cgroup/unified
# TEST: test target names (the files in integration-tests/tests/ without .rs; also
# `integration_tests` for the harness's own unit tests); default all, or $HUSK_VM_TESTS.
# LIBTEST-ARGS go to every test binary (e.g. a test name filter).
#
# Builds husk and the test binaries on the host (cargo; $HUSK_VM_PROFILE=release for
# --release), copies them (debug info stripped), the libraries they need, hack/ and
# spec-fixtures/ into the VM, runs each test binary there with --test-threads=1, prints its
# result and a summary, and exits 0 only if every test binary passed.
# HUSK=/path/to/runtime tests that runtime instead (e.g. HUSK=/usr/sbin/runc).
# Time limits: the whole VM $HUSK_VM_TIMEOUT (default 900 s), one test binary
# $HUSK_VM_TEST_TIMEOUT (default 600 s). Other settings: see vm.sh.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
CARGO=${CARGO:-cargo}
PROFILE=${HUSK_VM_PROFILE:-debug}

usage() {
	sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
log() { echo "hack/vm/run-tests.sh: $*" >&2; }

[ $# -ge 1 ] || usage
LAYOUT=$1
shift
case $LAYOUT in
v1 | v2 | hybrid | none) ;;
*) usage ;;
esac
TESTS=
while [ $# -gt 0 ]; do
	case $1 in
	--)
		shift
		break
		;;
	-h | --help) usage ;;
	*)
		TESTS="$TESTS $1"
		shift
		;;
	esac
done
[ -n "$TESTS" ] || TESTS=${HUSK_VM_TESTS:-}
# The rest goes to every test binary; quoted now, as "$@" is reused below.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
GUEST_CMD="sh /husk-vm/guest-tests.sh /husk-vm/tests"
for a in "$@"; do GUEST_CMD="$GUEST_CMD $(quote "$a")"; done

cd "$WS"
cargo_flags=
[ "$PROFILE" = release ] && cargo_flags=--release
# shellcheck disable=SC2086
$CARGO build $cargo_flags --bin husk >&2
# shellcheck disable=SC2086
execs=$($CARGO test -p integration-tests $cargo_flags --no-run --message-format=json |
	grep -o '"executable":"[^"]*"' | sed 's/^"executable":"\(.*\)"$/\1/')
[ -n "$execs" ] || {
	log "cargo found no test binaries"
	exit 1
}

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/husk-vm-tests.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
trap 'exit 130' INT TERM
mkdir -p "$SCRATCH/tests"

# A copy without debug info (a tenth of the size; symbols stay for backtraces).
slim() {
	if command -v strip >/dev/null 2>&1; then
		strip --strip-debug -o "$2" "$1"
	else
		cp "$1" "$2"
	fi
}

set -- --copy "$WS/hack" --copy "$WS/spec-fixtures" \
	--copy "$HERE/guest-tests.sh:/husk-vm/guest-tests.sh"
chosen=
for e in $execs; do
	# deps/<target>-<hash>
	name=$(basename "$e")
	name=${name%-*}
	if [ -n "$TESTS" ]; then
		case " $(echo "$TESTS" | tr '\n' ' ') " in *" $name "*) ;; *) continue ;; esac
	fi
	slim "$e" "$SCRATCH/tests/$name"
	set -- "$@" --copy "$SCRATCH/tests/$name:/husk-vm/tests/$name"
	chosen="$chosen $name"
done
[ -n "$chosen" ] || {
	log "no test binary matches:$TESTS (have: $(for e in $execs; do n=$(basename "$e"); printf ' %s' "${n%-*}"; done))"
	exit 2
}

if [ -n "${HUSK:-}" ]; then
	# Another runtime under test (e.g. runc): at the same path inside.
	runtime=$(command -v "$HUSK") || {
		log "HUSK=$HUSK not found"
		exit 1
	}
	set -- "$@" --copy "$runtime" --env "HUSK=$runtime"
else
	slim "$WS/target/$PROFILE/husk" "$SCRATCH/husk"
	set -- "$@" --copy "$SCRATCH/husk:$WS/target/$PROFILE/husk" --env "HUSK=$WS/target/$PROFILE/husk"
fi
set -- "$@" --env HOME=/root --env "HUSK_VM_TEST_TIMEOUT=${HUSK_VM_TEST_TIMEOUT:-600}"

log "layout $LAYOUT, test binaries:$chosen"
start=$(date +%s)
set +e
sh "$HERE/vm.sh" "$@" --log "$SCRATCH/console.log" "$LAYOUT" -- "$GUEST_CMD" 2>&1
rc=$?
set -e
secs=$(($(date +%s) - start))

# Summary: per test binary, the counts from libtest's `test result:` lines.
echo
echo "== VM tests of ${HUSK:-husk}, layout $LAYOUT, kernel $(sed -n 's/^HUSK-VM: kernel \([^,]*\),.*/\1/p' "$SCRATCH/console.log" | head -n1)"
awk -v layout="$LAYOUT" '
	/^HUSK-VM: running / { cur = $3; p = 0; f = 0; i = 0 }
	/^test result: / {
		for (k = 1; k <= NF; k++) {
			if ($k ~ /^passed;?$/) p += $(k - 1)
			if ($k ~ /^failed;?$/) f += $(k - 1)
			if ($k ~ /^ignored;?$/) i += $(k - 1)
		}
	}
	/^failures:$/ { inlist = 1; next }
	inlist && /^    / { failed_names = failed_names "    " cur ": " substr($0, 5) "\n"; next }
	inlist && !/^    / { inlist = 0 }
	/^HUSK-VM-TEST: / {
		split($3, a, "="); split($4, b, "=")
		status = (a[2] == 0) ? "ok" : "FAILED (exit " a[2] ")"
		printf "  %-20s %3d passed, %3d failed, %2d ignored  %4ds  %s\n", $2, p, f, i, b[2], status
		tp += p; tf += f; ti += i; if (a[2] != 0 && f == 0) tf += 1
		p = 0; f = 0; i = 0; n++
	}
	END {
		if (failed_names != "") printf "failed tests:\n%s", failed_names
		printf "husk-vm-%s: %d passed, %d failed, %d skipped\n", layout, tp, tf, ti
	}' "$SCRATCH/console.log"
log "layout $LAYOUT: exit $rc, ${secs}s in all (build excluded)"
exit "$rc"
