#!/usr/bin/env bash
# e2e-podman.sh [RUNTIME...] — Podman (through conmon) with each RUNTIME as its OCI runtime.
#
#   hack/e2e-podman.sh husk runc
#
# RUNTIME is `husk` (=$HUSK, target/release/husk or target/debug/husk, built if missing), a name
# in $PATH (runc, crun) or a path. Every step runs once per runtime; a table step | runtime... and
# the line `N passed, M failed[, K skipped]` close the run. Exit status 1 if anything failed.
#
# Fully offline and private: the image is imported from a busybox-static rootfs
# (hack/mkrootfs.sh), storage/runroot/tmpdir/CNI config/events log live in a temporary dir, and a
# private containers.conf (CONTAINERS_CONF) and storage.conf (CONTAINERS_STORAGE_CONF) are used.
# Root only. Rootless steps use a throw-away user, removed at the end. /etc/subuid and
# /etc/subgid get ranges for that user and for --userns=auto; both files are restored on exit.
# E2E_KEEP=1 keeps the work dir; CMD_TIMEOUT/STEP_TIMEOUT bound each command/step (seconds).
# Steps run in subshells and read RT, U, RTNAME set there; sh -c scripts are single-quoted.
# shellcheck disable=SC2031,SC2016,SC2034
set -uo pipefail
# shellcheck source=hack/e2e-lib.sh
. "$(dirname "$0")/e2e-lib.sh"

ensure_pkgs podman:podman conmon:conmon /usr/lib/cni/bridge:containernetworking-plugins \
	iptables:iptables newuidmap:uidmap /bin/busybox:busybox-static script:bsdutils \
	catatonit:catatonit jq:jq

e2e_setup podman
e2e_parse_runtimes "$@"

IMG=localhost/husk-e2e:latest
ROOTLESS_USER=husk-e2e-$$
ROOTLESS_USER=${ROOTLESS_USER:0:31}

# ---- private configuration --------------------------------------------------------------------

mkdir -p "$W/storage" "$W/runroot" "$W/tmp" "$W/cni" "$W/bin"
cat >"$W/containers.conf" <<EOF
[containers]
# As root Podman raises nofile and nproc to 1048576 (or its own hard limit); above the hard limit
# of the process that runs the runtime that fails for every runtime on a machine whose bounding
# set lacks CAP_SYS_RESOURCE, with "error setting rlimit type 6". Small fixed limits instead.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[network]
network_backend = "cni"
network_config_dir = "$W/cni"
cni_plugin_dirs = ["/usr/lib/cni"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$W/events.log"
tmp_dir = "$W/tmp"
volume_path = "$W/volumes"
static_dir = "$W/storage/libpod"
# conmon passes --log-format=json only to runtimes whose file name is listed here.
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "husk"]
[engine.runtimes]
EOF
for name in "${E2E_RUNTIMES[@]}"; do
	printf '%s = ["%s"]\n' "$name" "${E2E_RTPATH[$name]}" >>"$W/containers.conf"
done
cat >"$W/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$W/storage"
runroot = "$W/runroot"
[storage.options]
root-auto-userns-user = "$ROOTLESS_USER"
auto-userns-min-size = 1024
auto-userns-max-size = 65536
EOF
export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
export CONTAINERS_REGISTRIES_CONF=$W/registries.conf
: >"$W/registries.conf"

P=(podman --root "$W/storage" --runroot "$W/runroot" --storage-driver vfs --cgroup-manager cgroupfs
	--events-backend file --tmpdir "$W/tmp")
# Reasons print these options as "podman".
E2E_ABBREV="s|${P[*]}|podman|g"
# In a step: podman with the runtime under test.
step_env() { PM=("${P[@]}" --runtime "$RT"); }

# Leave nothing running: remove every container and pod of the private store at exit.
at_exit "${P[*]} rm -af -t 0; ${P[*]} pod rm -af -t 0; umount -R '$W/storage' '$W/runroot' 2>/dev/null"

# ---- the image ------------------------------------------------------------------------------

"$E2E_TOP/hack/mkrootfs.sh" "$W/rootfs" >/dev/null || die "mkrootfs failed"
tar -C "$W/rootfs" -cf "$W/rootfs.tar" . || die "tar failed"
timeout 120 "${P[@]}" import --change 'CMD=["/bin/sh"]' --change 'ENV=PATH=/bin' \
	"$W/rootfs.tar" "$IMG" >/dev/null || die "podman import failed"

# ---- subordinate ids (restored at exit) and the rootless user ---------------------------------

for f in /etc/subuid /etc/subgid; do
	if [ -e "$f" ]; then
		cp -p "$f" "$W/$(basename "$f").orig"
		at_exit "cp -p '$W/$(basename "$f").orig' '$f'"
	else
		at_exit "rm -f '$f'"
	fi
done
ROOTLESS_OK=""
if useradd -m -d "$W/home" -s /bin/sh "$ROOTLESS_USER" 2>"$W/useradd.err"; then
	at_exit "kill -9 \$(pgrep -U '$ROOTLESS_USER') 2>/dev/null; sleep 0.5; userdel -f '$ROOTLESS_USER'; rm -rf '/run/user/$(id -u "$ROOTLESS_USER")'"
	ROOTLESS_OK=1
else
	ROOTLESS_WHY="useradd failed: $(cat "$W/useradd.err")"
fi
# One range for the rootless user (also used for --userns=auto as root): 2000000-2065535.
sed -i "/^$ROOTLESS_USER:/d" /etc/subuid /etc/subgid 2>/dev/null
echo "$ROOTLESS_USER:2000000:65536" >>/etc/subuid
echo "$ROOTLESS_USER:2000000:65536" >>/etc/subgid

# ---- steps --------------------------------------------------------------------------------

STEPS=(run_rm run_detached_exec_stop run_tty exec_tty exec_detach resources update pause_unpause
	kill_signal stop_timeout read_only caps privileged seccomp_default seccomp_custom uidmap
	userns_auto pod network_none network_default preserve_fds create_fails restart rootless)
# E2E_STEPS="run_rm kill" runs only those steps.
[ -z "${E2E_STEPS:-}" ] || read -ra STEPS <<<"$E2E_STEPS"



step_cleanup() {
	"${P[@]}" rm -f -t 0 "$U" "$U-2" "$U-3"
	"${P[@]}" pod rm -f -t 0 "$U-pod"
}

t_run_rm() {
	out=$(must "${PM[@]}" run --rm --name "$U" "$IMG" echo hello-from-podman)
	expect "output" "$out" hello-from-podman
	# --rm removed it
	mustfail "${PM[@]}" container exists "$U" >/dev/null
}

t_run_detached_exec_stop() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	expect "state after run -d" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" running
	out=$(must "${PM[@]}" exec "$U" sh -c 'echo exec-ok $(cat /proc/1/comm)')
	expect "exec output" "$out" "exec-ok sleep"
	must "${PM[@]}" stop -t 2 "$U" >/dev/null
	expect "state after stop" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" exited
	must "${PM[@]}" rm "$U" >/dev/null
	mustfail "${PM[@]}" container exists "$U" >/dev/null
}

# A terminal for podman -t: script(1) runs the command on a pty.

t_run_tty() {
	out=$(must script -qec "${PM[*]} run --rm -t --name $U $IMG sh -c 'tty; stty size'" /dev/null | tr -d '\r')
	contains "tty inside" "$out" /dev/pts/0
}

t_exec_tty() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	out=$(must script -qec "${PM[*]} exec -t $U sh -c 'tty; test -t 0 && echo stdin-is-tty'" /dev/null | tr -d '\r')
	contains "exec -t tty" "$out" /dev/pts/
	contains "exec -t stdin" "$out" stdin-is-tty
}

t_exec_detach() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	must "${PM[@]}" exec -d "$U" sh -c 'sleep 0.3; echo done > /tmp/exec-d' >/dev/null
	wait_for 10 "${PM[@]}" exec "$U" test -f /tmp/exec-d || fail "exec -d: /tmp/exec-d never appeared"
}

# Reads a cgroup file inside the container for v1 (per-controller dirs) or v2 (unified) layouts.
CG_SCRIPT='
v1() { for d in "$@"; do [ -r "/sys/fs/cgroup/$d" ] && { cat "/sys/fs/cgroup/$d"; return; }; done; echo missing; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "mem=$(cat /sys/fs/cgroup/memory.max)"
  echo "pids=$(cat /sys/fs/cgroup/pids.max)"
  echo "cpu=$(cut -d" " -f1 /sys/fs/cgroup/cpu.max)"
else
  echo "mem=$(v1 memory/memory.limit_in_bytes)"
  echo "pids=$(v1 pids/pids.max)"
  echo "cpu=$(v1 cpu/cpu.cfs_quota_us cpu,cpuacct/cpu.cfs_quota_us)"
fi'

t_resources() {
	out=$(must "${PM[@]}" run --rm --name "$U" --memory 64m --pids-limit 50 --cpus 0.5 "$IMG" sh -c "$CG_SCRIPT")
	contains "memory limit" "$out" "mem=67108864"
	contains "pids limit" "$out" "pids=50"
	contains "cpu quota" "$out" "cpu=50000"
}

t_update() {
	must "${PM[@]}" run -d --name "$U" --memory 64m --pids-limit 50 "$IMG" sleep 1000 >/dev/null
	# Podman 4.3's update has no --pids-limit; the pids limit must survive the update untouched.
	must "${PM[@]}" update --memory 96m --cpus 0.25 "$U" >/dev/null
	out=$(must "${PM[@]}" exec "$U" sh -c "$CG_SCRIPT")
	contains "memory after update" "$out" "mem=100663296"
	contains "pids after update" "$out" "pids=50"
	contains "cpu after update" "$out" "cpu=25000"
}

t_pause_unpause() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	must "${PM[@]}" pause "$U" >/dev/null
	expect "state after pause" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" paused
	pid=$(must "${PM[@]}" inspect -f '{{.State.Pid}}' "$U")
	st=$(awk '/^State:/ {print $2}' "/proc/$pid/status")
	expect "host view of the paused process" "$st" D
	must "${PM[@]}" unpause "$U" >/dev/null
	expect "state after unpause" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" running
	out=$(must "${PM[@]}" exec "$U" echo alive)
	expect "exec after unpause" "$out" alive
}

t_kill_signal() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sh -c 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.2; done' >/dev/null
	wait_for 10 sh -c "${P[*]} logs $U | grep -q ready" || fail "container never became ready"
	must "${PM[@]}" kill -s USR1 "$U" >/dev/null
	wait_for 10 sh -c "${P[*]} logs $U | grep -q got-usr1" || fail "kill -s USR1: trap never ran: $("${P[@]}" logs "$U" 2>&1 | tail -1)"
	expect "state after USR1" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" running
	must "${PM[@]}" kill "$U" >/dev/null
	wait_for 10 sh -c "[ \"\$(${P[*]} inspect -f '{{.State.Status}}' $U)\" = exited ]" || fail "kill (KILL): still $("${PM[@]}" inspect -f '{{.State.Status}}' "$U")"
	expect "exit code after kill" "$(must "${PM[@]}" inspect -f '{{.State.ExitCode}}' "$U")" 137
}

t_stop_timeout() {
	# sleep as pid 1 ignores SIGTERM (no handler), so stop must escalate to SIGKILL after -t.
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	t0=$(date +%s)
	must "${PM[@]}" stop -t 2 "$U" >/dev/null
	dt=$(($(date +%s) - t0))
	[ "$dt" -ge 2 ] || fail "stop returned after ${dt}s, before the 2s timeout"
	expect "state after stop" "$(must "${PM[@]}" inspect -f '{{.State.Status}}' "$U")" exited
	expect "exit code after SIGKILL" "$(must "${PM[@]}" inspect -f '{{.State.ExitCode}}' "$U")" 137
}

t_read_only() {
	out=$(must "${PM[@]}" run --rm --name "$U" --read-only "$IMG" sh -c 'touch /x 2>&1 || echo ro-ok; touch /tmp/y && echo tmp-rw')
	contains "rootfs write" "$out" "Read-only file system"
	contains "rootfs read-only" "$out" ro-ok
	contains "/tmp writable" "$out" tmp-rw
}

t_caps() {
	out=$(must "${PM[@]}" run --rm --name "$U" --cap-drop all --cap-add NET_ADMIN --cap-add KILL "$IMG" grep CapEff /proc/self/status)
	# CAP_KILL = 5, CAP_NET_ADMIN = 12
	expect "CapEff" "$(echo "$out" | awk '{print $2}')" 0000000000001020
	out=$(must "${PM[@]}" run --rm --name "$U-2" --cap-drop CHOWN "$IMG" sh -c 'grep CapEff /proc/self/status; chown 1 /tmp 2>&1 || echo chown-denied')
	contains "chown after --cap-drop CHOWN" "$out" chown-denied
}

t_privileged() {
	host=$(awk '/^CapBnd/ {print $2}' /proc/self/status)
	out=$(must "${PM[@]}" run --rm --name "$U" --privileged "$IMG" sh -c 'grep CapEff /proc/self/status; grep Seccomp: /proc/self/status; ls /dev | wc -l')
	contains "CapEff = the host's bounding set" "$out" "$host"
	contains "no seccomp when privileged" "$out" "Seccomp:	0"
	ndev=$(echo "$out" | tail -n1)
	[ "$ndev" -gt 20 ] || fail "/dev has only $ndev entries under --privileged"
}

t_seccomp_default() {
	out=$(must "${PM[@]}" run --rm --name "$U" "$IMG" sh -c 'grep Seccomp: /proc/self/status; unshare -U true 2>&1 || echo unshare-denied')
	contains "seccomp mode" "$out" "Seccomp:	2"
	out=$(must "${PM[@]}" run --rm --name "$U-2" --security-opt seccomp=unconfined "$IMG" grep Seccomp: /proc/self/status)
	contains "seccomp=unconfined" "$out" "Seccomp:	0"
}

t_seccomp_custom() {
	cat >"$W/seccomp-$RTNAME.json" <<'EOF'
{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
  "syscalls": [
    { "names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1 }
  ]
}
EOF
	out=$(must "${PM[@]}" run --rm --name "$U" --security-opt "seccomp=$W/seccomp-$RTNAME.json" "$IMG" \
		sh -c 'mkdir /tmp/d 2>&1 || echo mkdir-denied; touch /tmp/f && echo touch-ok')
	contains "mkdir under the custom profile" "$out" mkdir-denied
	contains "mkdir error" "$out" "Operation not permitted"
	contains "other syscalls" "$out" touch-ok
}

t_uidmap() {
	out=$(must "${PM[@]}" run --rm --name "$U" --uidmap 0:100000:5000 --gidmap 0:100000:5000 "$IMG" \
		sh -c 'cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/busybox')
	expect "uid_map" "$(echo "$out" | sed -n 1p | xargs)" "0 100000 5000"
	expect "gid_map" "$(echo "$out" | sed -n 2p | xargs)" "0 100000 5000"
	expect "uid inside" "$(echo "$out" | sed -n 3p)" 0
	expect "rootfs owner inside" "$(echo "$out" | sed -n 4p)" 0
}

t_userns_auto() {
	must "${PM[@]}" run -d --name "$U" --userns=auto "$IMG" sleep 1000 >/dev/null
	out=$(must "${PM[@]}" exec "$U" cat /proc/self/uid_map | xargs)
	case $out in
	"0 20"*) ;;
	*) fail "uid_map under --userns=auto: '$out', want a range from $ROOTLESS_USER's 2000000" ;;
	esac
	pid=$(must "${PM[@]}" inspect -f '{{.State.Pid}}' "$U")
	hostuid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
	[ "$hostuid" -ge 2000000 ] || fail "container pid 1 runs as host uid $hostuid"
}

t_pod() {
	must "${P[@]}" pod create --name "$U-pod" --share net,ipc,uts >/dev/null
	must "${PM[@]}" run -d --pod "$U-pod" --name "$U" "$IMG" sleep 1000 >/dev/null
	must "${PM[@]}" run -d --pod "$U-pod" --name "$U-2" "$IMG" sleep 1000 >/dev/null
	ns='for n in net ipc uts pid; do readlink /proc/self/ns/$n; done'
	ns1=$(must "${PM[@]}" exec "$U" sh -c "$ns")
	ns2=$(must "${PM[@]}" exec "$U-2" sh -c "$ns")
	expect "shared net,ipc,uts" "$(echo "$ns1" | head -3)" "$(echo "$ns2" | head -3)"
	[ "$(echo "$ns1" | tail -1)" != "$(echo "$ns2" | tail -1)" ] || fail "pid namespace shared but not asked for"
	must "${P[@]}" pod stop -t 1 "$U-pod" >/dev/null
	must "${P[@]}" pod rm "$U-pod" >/dev/null
}

t_network_none() {
	out=$(must "${PM[@]}" run --rm --name "$U" --network none "$IMG" sh -c 'ls /sys/class/net | xargs')
	expect "interfaces" "$out" lo
}

t_network_default() {
	out=$(must "${PM[@]}" run --rm --name "$U" "$IMG" sh -c 'ls /sys/class/net | xargs; ip -4 -o addr show eth0')
	contains "interfaces" "$out" "eth0 lo"
	contains "address on the default network" "$out" "inet 10.88."
}

t_preserve_fds() {
	exec 3>"$W/fd3-$RTNAME" 4>"$W/fd4-$RTNAME"
	must "${PM[@]}" run --rm --name "$U" --preserve-fds 2 "$IMG" sh -c 'echo via-fd3 >&3; echo via-fd4 >&4' >/dev/null
	exec 3>&- 4>&-
	expect "written through fd 3" "$(cat "$W/fd3-$RTNAME")" via-fd3
	expect "written through fd 4" "$(cat "$W/fd4-$RTNAME")" via-fd4
}

t_create_fails() {
	rc=0
	err=$(timeout "$CMD_TIMEOUT" "${PM[@]}" run --rm --name "$U" "$IMG" no-such-command-e2e 2>&1) || rc=$?
	expect "exit status of a missing command [$(echo "$err" | tail -1 | cut -c1-200)]" "$rc" 127
	case $err in
	*"executable file not found"* | *"no such file or directory"*) ;;
	*) fail "error text: '$(echo "$err" | tail -1)', want 'executable file not found'" ;;
	esac
	contains "error names the command" "$err" no-such-command-e2e
	mustfail "${PM[@]}" container exists "$U" >/dev/null
	# A file that is not executable: "permission denied" → 126.
	rc=0
	err=$(timeout "$CMD_TIMEOUT" "${PM[@]}" run --rm --name "$U-2" "$IMG" /etc/passwd 2>&1) || rc=$?
	expect "exit status of a non-executable command [$(echo "$err" | tail -1 | cut -c1-200)]" "$rc" 126
	contains "error text" "$err" "permission denied"
}

t_restart() {
	must "${PM[@]}" run -d --name "$U" "$IMG" sleep 1000 >/dev/null
	pid1=$(must "${PM[@]}" inspect -f '{{.State.Pid}}' "$U")
	must "${PM[@]}" restart -t 1 "$U" >/dev/null
	# podman may still report the old run's "stopping" for a moment after restart returns.
	wait_for 10 sh -c "[ \"\$(${PM[*]} inspect -f '{{.State.Status}}' $U)\" = running ]" ||
		fail "state after restart: $("${PM[@]}" inspect -f '{{.State.Status}}' "$U" 2>&1), want running"
	pid2=$(must "${PM[@]}" inspect -f '{{.State.Pid}}' "$U")
	[ "$pid1" != "$pid2" ] || fail "restart: same pid $pid1"
	# a restart policy: conmon's exit → podman restarts it
	must "${PM[@]}" run -d --name "$U-2" --restart on-failure:2 "$IMG" sh -c 'exit 3' >/dev/null
	wait_for 20 sh -c "[ \"\$(${P[*]} inspect -f '{{.RestartCount}}' $U-2)\" = 2 ]" ||
		fail "restart policy: RestartCount $("${P[@]}" inspect -f '{{.RestartCount}}' "$U-2" 2>&1)"
}

t_rootless() {
	[ -n "$ROOTLESS_OK" ] || skip "$ROOTLESS_WHY"
	uid=$(id -u "$ROOTLESS_USER")
	# The user needs to reach the runtime binary: a copy with the same file name.
	mkdir -p "$W/bin/$RTNAME"
	cp "$RT" "$W/bin/$RTNAME/$RTNAME"
	chmod -R a+rX "$W/bin" "$W/rootfs.tar"
	mkdir -p "/run/user/$uid"
	chown "$uid" "/run/user/$uid"
	chmod 0700 "/run/user/$uid"
	cat >"$W/rootless-$RTNAME.conf" <<EOF
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "youki", "krun", "husk"]
EOF
	chmod a+r "$W/rootless-$RTNAME.conf"
	AS=(runuser -u "$ROOTLESS_USER" -- env -i HOME="$W/home" PATH=/usr/sbin:/usr/bin:/sbin:/bin
		XDG_RUNTIME_DIR="/run/user/$uid" CONTAINERS_CONF="$W/rootless-$RTNAME.conf"
		podman --storage-driver vfs --runtime "$W/bin/$RTNAME/$RTNAME")
	must "${AS[@]}" import "$W/rootfs.tar" "$IMG" >/dev/null
	out=$(must "${AS[@]}" run --rm --network none "$IMG" sh -c 'id -u; cat /proc/self/uid_map | xargs')
	expect "uid inside" "$(echo "$out" | head -1)" 0
	contains "user namespace" "$(echo "$out" | tail -1)" "0 $uid 1"
	must "${AS[@]}" run -d --network none --name "$U" "$IMG" sleep 1000 >/dev/null
	out=$(must "${AS[@]}" exec "$U" echo rootless-exec)
	expect "rootless exec" "$out" rootless-exec
	must "${AS[@]}" rm -f -t 0 "$U" >/dev/null
}

e2e_main
[ "$E2E_FAILED" = 0 ]
