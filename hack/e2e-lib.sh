# e2e-lib.sh — shared helpers for hack/e2e-podman.sh and hack/e2e-containerd.sh (bash, sourced).
#
# A script defines its steps as shell functions `t_<name>` and lists them in STEPS; e2e_main runs
# every step once per runtime given on the command line, each in its own subshell with `set -e`,
# under a time limit, and prints a PASS/FAIL/SKIP line per step with the reason, a table
# (step | runtime...) and the closing line `N passed, M failed[, K skipped]`.
#
# Inside a step:
#   must CMD...        run CMD under `timeout $CMD_TIMEOUT`; print its stdout; on failure record
#                      "CMD: exit N: <last stderr line>" as the step's reason and fail the step.
#   mustfail CMD...    the same, but CMD must fail; prints its stderr+stdout.
#   fail MSG / skip MSG   end the step with that reason.
#   expect WHAT GOT WANT  fail with "WHAT: got 'GOT', want 'WANT'" unless equal.
#   contains WHAT HAYSTACK NEEDLE   the same for a substring.
#   $RT (absolute runtime path), $RTNAME (its label), $W (private work dir), $U (unique id prefix).

# shellcheck disable=SC2034 # RT, RTNAME, U, E2E_FAILED are for the scripts that source this
E2E_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CMD_TIMEOUT=${CMD_TIMEOUT:-60}
STEP_TIMEOUT=${STEP_TIMEOUT:-120}

declare -A E2E_RESULT=() E2E_REASON=()
E2E_RUNTIMES=()
declare -A E2E_RTPATH=()
E2E_CLEANUPS=()

log() { printf '%s\n' "$*" >&2; }
die() {
	log "$0: $*"
	exit 1
}

# Register a command string to run at exit (last registered runs first).
at_exit() { E2E_CLEANUPS+=("$1"); }

e2e_cleanup() {
	local rc=$? i p
	trap - EXIT INT TERM
	# A step (its own process group) or watchdog still running when we were interrupted.
	for p in ${E2E_LIVE:-}; do
		kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
	done
	for ((i = ${#E2E_CLEANUPS[@]} - 1; i >= 0; i--)); do
		timeout -k 5 60 bash -c "${E2E_CLEANUPS[$i]}" >/dev/null 2>&1 || true
	done
	exit "$rc"
}

e2e_setup() { # NAME
	[ "$(id -u)" = 0 ] || die "must run as root"
	trap e2e_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	# Under target/, not a shared tmp dir: nothing else globs it away while the daemons run.
	mkdir -p "$E2E_TOP/target/e2e"
	# Podman calls the runtime without --root, so husk's default root gets its seccomp cache:
	# remove what this run made there, as for every other leftover.
	[ -e /run/husk/@seccomp-cache ] || at_exit "rm -rf /run/husk/@seccomp-cache; rmdir /run/husk 2>/dev/null"
	W=$(mktemp -d "$E2E_TOP/target/e2e/$1.XXXXXX")
	chmod 0755 "$W"
	if [ -n "${E2E_KEEP:-}" ]; then
		log "keeping $W"
	else
		at_exit "rm -rf '$W'"
	fi
	export W
}

# Install Debian packages whose command is missing: ensure_pkgs cmd:pkg ...
ensure_pkgs() {
	local missing="" cp
	for cp in "$@"; do
		command -v "${cp%%:*}" >/dev/null 2>&1 || [ -e "${cp%%:*}" ] || missing="$missing ${cp#*:}"
	done
	[ -z "$missing" ] && return 0
	log "installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	timeout 300 apt-get update -qq >/dev/null || die "apt-get update failed"
	# shellcheck disable=SC2086
	timeout 600 apt-get install -y -qq --no-install-recommends $missing >/dev/null || die "apt-get install$missing failed"
}

# Resolve a runtime argument to an absolute path: husk → $HUSK, or the newer of
# target/release/husk and target/debug/husk (built with cargo when neither exists); a bare name →
# $PATH; a path → itself.
resolve_runtime() {
	local r=$1 p
	case $r in
	husk)
		# $HUSK, else the newer of target/release/husk and target/debug/husk, else build it.
		if [ -n "${HUSK:-}" ]; then
			p=$HUSK
		else
			p=$(ls -t "$E2E_TOP/target/release/husk" "$E2E_TOP/target/debug/husk" 2>/dev/null | head -n 1)
		fi
		if [ -z "$p" ]; then
			log "building husk (cargo build)"
			(cd "$E2E_TOP" && cargo build -q) >&2 || die "cargo build failed"
			p=$E2E_TOP/target/debug/husk
		fi
		;;
	*/*) p=$r ;;
	*) p=$(command -v "$r") || die "runtime $r not found in PATH" ;;
	esac
	[ -x "$p" ] || die "runtime $r: $p is not executable"
	p=$(readlink -f "$p")
	printf '%s\n' "$p"
}

e2e_parse_runtimes() {
	[ $# -gt 0 ] || set -- husk
	local r name
	for r in "$@"; do
		name=$(basename "$r")
		E2E_RUNTIMES+=("$name")
		E2E_RTPATH[$name]=$(resolve_runtime "$r") || exit 1
	done
}

# ---- inside a step ----------------------------------------------------------------------------

_reason() { printf '%s\n' "$*" >"$E2E_STEPDIR/reason"; }
fail() {
	_reason "$*"
	exit 1
}
skip() {
	_reason "$*"
	exit 77
}

# A command line for a reason: newlines folded, the long $W path shortened, at most 160 chars.
_cmdline() { printf '%s' "$*" | tr '\n\t' '  ' | sed "${E2E_ABBREV:+$E2E_ABBREV;}s|$W|\$W|g; s|  *| |g" | cut -c1-160; }

_lastline() { grep -v '^[[:space:]]*$' "$1" | tail -n 1 | cut -c1-300; }

must() {
	local out err rc
	out=$E2E_STEPDIR/out.$$.$RANDOM err=$E2E_STEPDIR/err.$$.$RANDOM
	rc=0
	timeout -k 5 "$CMD_TIMEOUT" "$@" >"$out" 2>"$err" </dev/null || rc=$?
	cat "$err" >>"$E2E_STEPDIR/log"
	if [ "$rc" != 0 ]; then
		[ "$rc" = 124 ] && _reason "$(_cmdline "$*"): timed out after ${CMD_TIMEOUT}s" ||
			_reason "$(_cmdline "$*"): exit $rc: $(_lastline "$err")$([ -s "$err" ] || _lastline "$out" | tr -d '\r')"
		exit 1
	fi
	cat "$out"
	rm -f "$out" "$err"
}

mustfail() {
	local out rc
	out=$E2E_STEPDIR/out.$$.$RANDOM
	rc=0
	timeout -k 5 "$CMD_TIMEOUT" "$@" >"$out" 2>&1 </dev/null || rc=$?
	cat "$out" >>"$E2E_STEPDIR/log"
	[ "$rc" = 124 ] && fail "$(_cmdline "$*"): timed out after ${CMD_TIMEOUT}s"
	[ "$rc" != 0 ] || fail "$(_cmdline "$*"): succeeded, expected a failure"
	cat "$out"
	rm -f "$out"
	return 0
}

expect() { [ "$2" = "$3" ] || fail "$1: got '$(printf %s "$2" | tr '\n' ' ' | cut -c1-200)', want '$3'"; }
contains() {
	case $2 in
	*"$3"*) ;;
	*) fail "$1: '$(printf %s "$2" | tr '\n' ' ' | cut -c1-200)' does not contain '$3'" ;;
	esac
}

# Poll COND (a command) every 0.2s for up to N seconds.
wait_for() {
	local n=$1 i=0
	shift
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge $((n * 5)) ] && return 1
		sleep 0.2
	done
}

# ---- running ----------------------------------------------------------------------------------

# e2e_run_step STEP RUNTIME
e2e_run_step() {
	local step=$1 name=$2 rc=0 reason="" start
	E2E_STEPDIR=$W/steps/$name/$step
	mkdir -p "$E2E_STEPDIR"
	start=$(date +%s)
	(
		set -e
		RT=${E2E_RTPATH[$name]}
		RTNAME=$name
		U="e2e-${name}-${step//_/-}"
		if declare -F step_env >/dev/null; then step_env; fi
		"t_$step"
	) >>"$E2E_STEPDIR/log" 2>&1 &
	local pid=$!
	(
		sleep "$STEP_TIMEOUT"
		echo "step timed out after ${STEP_TIMEOUT}s" >"$E2E_STEPDIR/reason"
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	) </dev/null >/dev/null 2>&1 &
	local dog=$!
	E2E_LIVE="$pid $dog"
	wait "$pid" || rc=$?
	kill "$dog" 2>/dev/null
	wait "$dog" 2>/dev/null
	E2E_LIVE=""
	[ -f "$E2E_STEPDIR/reason" ] && reason=$(cat "$E2E_STEPDIR/reason")
	case $rc in
	0) E2E_RESULT[$step|$name]=PASS ;;
	77) E2E_RESULT[$step|$name]=SKIP ;;
	*)
		E2E_RESULT[$step|$name]=FAIL
		[ -n "$reason" ] || reason="exit $rc: $(_lastline "$E2E_STEPDIR/log")"
		;;
	esac
	[ "$rc" = 0 ] && reason=""
	E2E_REASON[$step|$name]=$reason
	printf '%-4s %-22s %-6s %3ss%s\n' "${E2E_RESULT[$step|$name]}" "$step" "$name" "$(($(date +%s) - start))" \
		"${reason:+  — $reason}"
	# Per-step cleanup hook (the script's own), run whatever happened.
	if declare -F step_cleanup >/dev/null; then
		(
			set +e
			RT=${E2E_RTPATH[$name]} RTNAME=$name U="e2e-${name}-${step//_/-}"
			if declare -F step_env >/dev/null; then step_env; fi
			step_cleanup "$step"
		) </dev/null >/dev/null 2>&1 &
		local cpid=$!
		( sleep 60; kill -9 -- "-$cpid" ) 2>/dev/null &
		local cdog=$!
		E2E_LIVE="$cpid $cdog"
		wait "$cpid"
		kill "$cdog" 2>/dev/null
		wait "$cdog" 2>/dev/null
		E2E_LIVE=""
	fi
}

# e2e_main: runs STEPS (array) for each runtime, then the table and the totals.
e2e_main() {
	local name step
	set -m # each step in its own process group, so a timed-out step is killed whole
	for name in "${E2E_RUNTIMES[@]}"; do
		log "== runtime $name: ${E2E_RTPATH[$name]}"
		declare -F runtime_setup >/dev/null && runtime_setup "$name"
		for step in "${STEPS[@]}"; do
			e2e_run_step "$step" "$name"
		done
		declare -F runtime_teardown >/dev/null && runtime_teardown "$name"
	done
	e2e_report
}

e2e_report() {
	local name step p=0 f=0 s=0 r
	echo
	printf '| %-22s |' step
	for name in "${E2E_RUNTIMES[@]}"; do printf ' %-6s |' "$name"; done
	echo
	printf '|%s|' "------------------------"
	for name in "${E2E_RUNTIMES[@]}"; do printf '%s|' "--------"; done
	echo
	for step in "${STEPS[@]}"; do
		printf '| %-22s |' "$step"
		for name in "${E2E_RUNTIMES[@]}"; do
			r=${E2E_RESULT[$step|$name]:-SKIP}
			printf ' %-6s |' "$r"
			case $r in PASS) p=$((p + 1)) ;; FAIL) f=$((f + 1)) ;; *) s=$((s + 1)) ;; esac
		done
		echo
	done
	echo
	for name in "${E2E_RUNTIMES[@]}"; do
		for step in "${STEPS[@]}"; do
			r=${E2E_RESULT[$step|$name]:-SKIP}
			[ "$r" = PASS ] || echo "$r $step [$name]: ${E2E_REASON[$step|$name]}"
		done
	done
	echo
	if [ "$s" -gt 0 ]; then
		echo "$p passed, $f failed, $s skipped"
	else
		echo "$p passed, $f failed"
	fi
	E2E_FAILED=$f
}
