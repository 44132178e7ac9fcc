#!/usr/bin/env bash
# e2e-containerd.sh [RUNTIME...] — containerd's io.containerd.runc.v2 shim with each RUNTIME as
# its runc binary (runc options BinaryName, set per container by `ctr run --runc-binary`).
#
#   hack/e2e-containerd.sh husk runc
#
# RUNTIME is `husk` (=$HUSK, target/release/husk or target/debug/husk, built if missing), a name
# in $PATH (runc, crun) or a path. Every step runs once per runtime; a table step | runtime... and
# the line `N passed, M failed[, K skipped]` close the run. Exit status 1 if anything failed.
#
# Fully offline and private: a containerd daemon of its own (--config with its own root, state,
# socket addresses), a namespace of its own, and an OCI image layout built here by hand from a
# busybox-static rootfs (hack/mkrootfs.sh) and loaded with `ctr images import`. The shim keeps the
# runtime's state under /run/containerd/runc/<namespace> (fixed in the shim); that namespace is
# unique to this run and removed at exit. Root only. E2E_KEEP=1 keeps the work dir.
# Steps run in subshells and read RT, U, RTNAME set there; sh -c scripts are single-quoted.
# shellcheck disable=SC2031,SC2016,SC2034
set -uo pipefail
# shellcheck source=hack/e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

ensure_pkgs containerd:containerd ctr:containerd containerd-shim-runc-v2:containerd \
	/bin/busybox:busybox-static script:bsdutils jq:jq sha256sum:coreutils

e2e_setup containerd
e2e_parse_runtimes "$@"

NS=husk-e2e-$$
IMG=localhost/husk-e2e:latest
SOCK=$W/containerd.sock

# ---- the image: an OCI layout by hand ---------------------------------------------------------

"$E2E_TOP/hack/mkrootfs.sh" "$W/rootfs" >/dev/null || die "mkrootfs failed"
L=$W/oci
mkdir -p "$L/blobs/sha256"
blob() { # FILE MEDIATYPE → moves FILE into the layout, prints its descriptor JSON
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$L/blobs/sha256/$d"
	printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$d" "$s"
}
tar -C "$W/rootfs" --numeric-owner -cf "$W/layer.tar" . || die "tar of the rootfs failed"
diffid=$(sha256sum "$W/layer.tar" | cut -d' ' -f1)
layer=$(blob "$W/layer.tar" application/vnd.oci.image.layer.v1.tar)
cat >"$W/config.json" <<EOF
{"architecture":"$(dpkg --print-architecture)","os":"linux",
 "config":{"Env":["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["/bin/sh"],"WorkingDir":"/"},
 "rootfs":{"type":"layers","diff_ids":["sha256:$diffid"]}}
EOF
config=$(blob "$W/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
	"$config" "$layer" >"$W/manifest.json"
manifest=$(blob "$W/manifest.json" application/vnd.oci.image.manifest.v1+json)
printf '{"schemaVersion":2,"manifests":[%s]}' \
	"${manifest%\}},\"annotations\":{\"io.containerd.image.name\":\"$IMG\",\"org.opencontainers.image.ref.name\":\"latest\"}}" \
	>"$L/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
tar -C "$L" -cf "$W/image.tar" oci-layout index.json blobs || die "tar of the OCI layout failed"

# ---- a private containerd -----------------------------------------------------------------

CRI=""
command -v crictl >/dev/null 2>&1 && CRI=1
{
	cat <<EOF
version = 2
root = "$W/root"
state = "$W/state"
$([ -n "$CRI" ] || echo 'disabled_plugins = ["io.containerd.grpc.v1.cri"]')
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  address = "$W/debug.sock"
[metrics]
  address = ""
# The runtime under test as the runc shim's runc binary, for every call the shim makes: used by
# the CRI plugin (Kubernetes RuntimeClass handler "<name>"); see docs/containerd.md.
EOF
	for name in "${E2E_RUNTIMES[@]}"; do
		cat <<EOF
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$name]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.$name.options]
  BinaryName = "${E2E_RTPATH[$name]}"
EOF
	done
	[ -z "$CRI" ] || cat <<EOF
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMG"
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "$W/cni"
EOF
} >"$W/config.toml"

containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
CPID=$!
# Stop the daemon last, after every container of the namespace is gone.
at_exit "kill $CPID; sleep 1; kill -9 $CPID; umount -R '$W/root' '$W/state'; rm -rf '/run/containerd/runc/$NS'"
C=(ctr --address "$SOCK" --namespace "$NS" --connect-timeout 10s)
E2E_ABBREV="s|${C[*]}|ctr|g"
wait_for 30 "${C[@]}" version || die "containerd did not start: $(tail -3 "$W/containerd.log")"
at_exit "for t in \$(${C[*]} task ls -q); do ${C[*]} task kill -a -s SIGKILL \$t; ${C[*]} task delete -f \$t; done; \
for c in \$(${C[*]} containers ls -q); do ${C[*]} containers delete \$c; done; \
${C[*]} images rm $IMG; ${C[*]} namespaces rm $NS"
timeout 120 "${C[@]}" images import "$W/image.tar" >"$W/import.log" 2>&1 ||
	die "ctr images import failed: $(tail -2 "$W/import.log")"
"${C[@]}" images ls -q | grep -qx "$IMG" || die "ctr images import did not create $IMG: $(cat "$W/import.log")"

# ---- steps --------------------------------------------------------------------------------

STEPS=(run_rm run_detached run_tty exec exec_tty task_ps pause_resume kill kill_all
	delete_running delete_paused metrics resources create_fails binaryname_config)
# E2E_STEPS="run_rm kill" runs only those steps.
[ -z "${E2E_STEPS:-}" ] || read -ra STEPS <<<"$E2E_STEPS"

# In a step: ctr run with the runtime under test as the runc shim's BinaryName.
step_env() {
	RUN=("${C[@]}" run --runc-binary "$RT")
	# Say so plainly if the daemon is gone (rather than 10s connect timeouts on every step).
	kill -0 "$CPID" 2>/dev/null || fail "the private containerd (pid $CPID) is gone; its log: $W/containerd.log"
}

step_cleanup() {
	local c
	kill -0 "$CPID" 2>/dev/null || return 0
	for c in "$U" "$U-2"; do
		"${C[@]}" task kill -a -s SIGKILL "$c"
		"${C[@]}" task delete -f "$c"
		"${C[@]}" containers delete "$c"
	done
}

task_status() { "${C[@]}" task ls | awk -v id="$1" '$1 == id {print $3}'; }
task_pid() { "${C[@]}" task ls | awk -v id="$1" '$1 == id {print $2}'; }
status_is() { [ "$(task_status "$1")" = "$2" ]; }

start_sleeper() { # ID [ARGS...]
	local id=$1
	shift
	must "${RUN[@]}" -d "$@" "$IMG" "$id" sleep 1000 >/dev/null
	wait_for 10 status_is "$id" RUNNING || fail "task $id: status '$(task_status "$id")', want RUNNING"
}

t_run_rm() {
	out=$(must "${RUN[@]}" --rm "$IMG" "$U" sh -c 'echo hello-from-ctr; exit 0')
	expect "output" "$out" hello-from-ctr
	[ -z "$("${C[@]}" containers ls -q | grep -x "$U")" ] || fail "container $U still listed after --rm"
	[ ! -e "/run/containerd/runc/$NS/$U" ] || fail "runtime state /run/containerd/runc/$NS/$U left behind"
}

t_run_detached() {
	start_sleeper "$U"
	pid=$(task_pid "$U")
	[ -d "/proc/$pid" ] || fail "task pid $pid not alive"
	expect "comm of the task's pid" "$(cat "/proc/$pid/comm")" sleep
	must "${C[@]}" task kill -s SIGKILL "$U" >/dev/null
	wait_for 10 status_is "$U" STOPPED || fail "after SIGKILL: status '$(task_status "$U")', want STOPPED"
	must "${C[@]}" task delete "$U" >/dev/null
	must "${C[@]}" containers delete "$U" >/dev/null
	[ ! -e "/run/containerd/runc/$NS/$U" ] || fail "runtime state /run/containerd/runc/$NS/$U left behind"
}

t_run_tty() {
	out=$(must script -qec "${RUN[*]} --rm -t $IMG $U sh -c 'tty; stty size'" /dev/null | tr -d '\r')
	contains "tty inside" "$out" /dev/pts/0
}

t_exec() {
	start_sleeper "$U"
	out=$(must "${C[@]}" task exec --exec-id e1 "$U" sh -c 'echo exec-ok $(cat /proc/1/comm); test -t 0 || echo no-tty')
	contains "exec output" "$out" "exec-ok sleep"
	contains "exec without --tty" "$out" no-tty
	# exit status of the exec'd process reaches ctr
	rc=0
	"${C[@]}" task exec --exec-id e2 "$U" sh -c 'exit 3' >/dev/null 2>&1 || rc=$?
	expect "exit status of exec" "$rc" 3
}

t_exec_tty() {
	start_sleeper "$U"
	out=$(must script -qec "${C[*]} task exec -t --exec-id e1 $U sh -c 'tty; test -t 0 && echo stdin-is-tty'" /dev/null | tr -d '\r')
	contains "exec --tty" "$out" /dev/pts/
	contains "exec --tty stdin" "$out" stdin-is-tty
}

t_task_ps() {
	must "${RUN[@]}" -d "$IMG" "$U" sh -c 'sleep 1000 & sleep 1000' >/dev/null
	wait_for 10 status_is "$U" RUNNING || fail "task not RUNNING"
	pid=$(task_pid "$U")
	must "${C[@]}" task ps "$U" >/dev/null
	# sh execs its last command: two sleeps
	wait_for 10 sh -c "[ \$(${C[*]} task ps $U | tail -n +2 | wc -l) -ge 2 ]" ||
		fail "task ps: $(must "${C[@]}" task ps "$U" | tail -n +2 | awk '{print $1}' | xargs), want 2 pids"
	pids=$(must "${C[@]}" task ps "$U" | tail -n +2 | awk '{print $1}')
	contains "task ps lists the init pid $pid" " $(echo "$pids" | xargs) " " $pid "
	for p in $pids; do
		[ "$(readlink "/proc/$p/ns/pid")" = "$(readlink "/proc/$pid/ns/pid")" ] || fail "task ps: pid $p is not in the task's pid namespace"
	done
}

t_pause_resume() {
	start_sleeper "$U"
	pid=$(task_pid "$U")
	must "${C[@]}" task pause "$U" >/dev/null
	expect "status after pause" "$(task_status "$U")" PAUSED
	expect "host view of the paused process" "$(awk '/^State:/ {print $2}' "/proc/$pid/status")" D
	must "${C[@]}" task resume "$U" >/dev/null
	expect "status after resume" "$(task_status "$U")" RUNNING
	out=$(must "${C[@]}" task exec --exec-id e1 "$U" echo alive)
	expect "exec after resume" "$out" alive
}

t_kill() {
	# attached, so ctr's exit status is the task's
	timeout "$CMD_TIMEOUT" "${RUN[@]}" --rm "$IMG" "$U" sh -c 'trap "exit 7" TERM; while :; do sleep 0.2; done' \
		>"$E2E_STEPDIR/run.out" 2>&1 &
	runpid=$!
	wait_for 10 status_is "$U" RUNNING || fail "task not RUNNING"
	sleep 0.5 # let sh install its trap
	must "${C[@]}" task kill -s SIGTERM "$U" >/dev/null
	rc=0
	wait "$runpid" || rc=$?
	expect "exit status after the TERM trap [$(tail -1 "$E2E_STEPDIR/run.out")]" "$rc" 7
	# killing a task that is gone is an error naming it
	out=$(mustfail "${C[@]}" task kill "$U")
	contains "kill of a deleted task" "$out" "not found"
}

t_kill_all() {
	must "${RUN[@]}" -d "$IMG" "$U" sh -c 'sleep 1000 & sleep 1000 & wait' >/dev/null
	wait_for 10 status_is "$U" RUNNING || fail "task not RUNNING"
	# Three processes: sh and two sleeps, found from the host (no runtime `ps` needed).
	pid=$(task_pid "$U")
	wait_for 10 sh -c "[ \$(cat /proc/$pid/task/*/children | wc -w) -ge 2 ]" || fail "the task's sleeps never started"
	pids="$pid $(cat /proc/"$pid"/task/*/children)"
	must "${C[@]}" task kill --all -s SIGKILL "$U" >/dev/null
	wait_for 10 status_is "$U" STOPPED || fail "after kill --all: status '$(task_status "$U")', want STOPPED"
	for p in $pids; do
		wait_for 5 sh -c "[ ! -d /proc/$p ] || grep -q '^State:.*Z' /proc/$p/status" || fail "pid $p survived kill --all"
	done
}

t_delete_running() {
	start_sleeper "$U"
	pid=$(task_pid "$U")
	must "${C[@]}" task delete -f "$U" >/dev/null
	[ -z "$(task_status "$U")" ] || fail "task still listed: $(task_status "$U")"
	wait_for 5 sh -c "[ ! -d /proc/$pid ]" || fail "pid $pid survived delete -f"
	[ ! -e "/run/containerd/runc/$NS/$U" ] || fail "runtime state /run/containerd/runc/$NS/$U left behind"
}

t_delete_paused() {
	start_sleeper "$U"
	pid=$(task_pid "$U")
	must "${C[@]}" task pause "$U" >/dev/null
	expect "status after pause" "$(task_status "$U")" PAUSED
	must "${C[@]}" task delete -f "$U" >/dev/null
	[ -z "$(task_status "$U")" ] || fail "task still listed: $(task_status "$U")"
	wait_for 5 sh -c "[ ! -d /proc/$pid ]" || fail "pid $pid survived delete -f of the paused task"
	[ ! -e "/run/containerd/runc/$NS/$U" ] || fail "runtime state /run/containerd/runc/$NS/$U left behind"
}

t_metrics() {
	start_sleeper "$U" --memory-limit 67108864
	out=$(must "${C[@]}" task metrics "$U")
	contains "metrics (names: $(echo "$out" | awk 'NR > 3 {print $1}' | xargs))" "$out" "pids.current"
	limit=$(echo "$out" | awk '$1 == "memory.limit_in_bytes" || $1 == "memory.max" {print $2}')
	expect "memory limit in metrics" "$limit" 67108864
}

# The value of a cgroup file of PID's cgroup for CONTROLLER (v1 layout, or v2 when unified).
cg_file() { # PID CONTROLLER FILE
	local path
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		path=$(awk -F: '$1 == "0" {print $3}' "/proc/$1/cgroup")
		cat "/sys/fs/cgroup$path/$3"
	else
		path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$1/cgroup")
		cat "/sys/fs/cgroup/$2$path/$3"
	fi
}

t_resources() {
	start_sleeper "$U" --memory-limit 67108864 --cpu-quota 50000 --cpu-period 100000
	pid=$(task_pid "$U")
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		expect "memory.max" "$(cg_file "$pid" memory memory.max)" 67108864
		expect "cpu.max" "$(cg_file "$pid" cpu cpu.max)" "50000 100000"
	else
		expect "memory.limit_in_bytes" "$(cg_file "$pid" memory memory.limit_in_bytes)" 67108864
		expect "cpu.cfs_quota_us" "$(cg_file "$pid" cpu cpu.cfs_quota_us)" 50000
	fi
	contains "cgroup path" "$(cat "/proc/$pid/cgroup")" "/$NS/$U"
}

t_create_fails() {
	rc=0
	err=$(timeout "$CMD_TIMEOUT" "${RUN[@]}" --rm "$IMG" "$U" no-such-command-e2e 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "ctr run of a missing command succeeded"
	case $err in
	*"executable file not found"* | *"no such file or directory"*) ;;
	*) fail "error text: '$(echo "$err" | tail -1 | cut -c1-200)', want 'executable file not found'" ;;
	esac
	contains "error names the command" "$err" no-such-command-e2e
	[ -z "$(task_status "$U")" ] || fail "task still listed after the failed create"
	[ ! -e "/run/containerd/runc/$NS/$U" ] || fail "runtime state /run/containerd/runc/$NS/$U left behind"
	# A file that is not executable
	rc=0
	err=$(timeout "$CMD_TIMEOUT" "${RUN[@]}" --rm "$IMG" "$U-2" /etc/passwd 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "ctr run of a non-executable file succeeded"
	contains "error text" "$err" "permission denied"
	[ -z "$(task_status "$U-2")" ] || fail "task still listed after the failed create"
}

# BinaryName from config.toml (the CRI plugin's runtime options) — what Kubernetes uses through a
# RuntimeClass. Only the CRI plugin reads it, so this needs crictl.
t_binaryname_config() {
	[ -n "$CRI" ] || skip "no crictl (no cri-tools package in Debian bookworm); only the CRI plugin reads config.toml's BinaryName — the other steps set the same option through ctr --runc-binary"
	cat >"$W/pod-$RTNAME.json" <<EOF
{"metadata":{"name":"$U","namespace":"default","uid":"$U"},"log_directory":"$W/podlogs","linux":{"security_context":{"namespace_options":{"network":2}}}}
EOF
	cat >"$W/ctr-$RTNAME.json" <<EOF
{"metadata":{"name":"c"},"image":{"image":"$IMG"},"command":["sleep","1000"],"log_path":"c.log","linux":{}}
EOF
	CRI_=(crictl --runtime-endpoint "unix://$SOCK" --image-endpoint "unix://$SOCK" --timeout 30s)
	pod=$(must "${CRI_[@]}" runp --runtime "$RTNAME" "$W/pod-$RTNAME.json")
	ctr=$(must "${CRI_[@]}" create "$pod" "$W/ctr-$RTNAME.json" "$W/pod-$RTNAME.json")
	must "${CRI_[@]}" start "$ctr" >/dev/null
	out=$(must "${CRI_[@]}" exec "$ctr" echo cri-exec)
	expect "crictl exec" "$out" cri-exec
	must "${CRI_[@]}" stopp "$pod" >/dev/null
	must "${CRI_[@]}" rmp "$pod" >/dev/null
}

e2e_main
[ "$E2E_FAILED" = 0 ]
