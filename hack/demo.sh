#!/bin/sh
# demo.sh HUSK — build a busybox bundle under target/demo and run a container in it with husk.
set -eu
HUSK=${1:-target/release/husk}
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=$top/target/demo
root=$top/target/demo-state

"$top/hack/mkrootfs.sh" "$bundle/rootfs" >/dev/null
cat > "$bundle/config.json" <<'JSON'
{
  "ociVersion": "1.2.1",
  "process": {
    "terminal": false,
    "user": { "uid": 0, "gid": 0 },
    "args": ["sh", "-c", "echo \"hello from $(hostname): pid $$, $(id -un) in $(pwd)\"; echo \"kernel $(uname -r), $(ls /proc | grep -c '^[0-9]') process(es) visible\"; cat /proc/self/status | grep CapEff"],
    "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/root",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
    "noNewPrivileges": true
  },
  "root": { "path": "rootfs", "readonly": true },
  "hostname": "husk-demo",
  "mounts": [
    { "destination": "/proc", "type": "proc", "source": "proc" },
    { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
    { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
    { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
    { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] }
  ],
  "linux": {
    "namespaces": [{ "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" }],
    "maskedPaths": ["/proc/kcore", "/proc/keys", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"]
  }
}
JSON
echo "+ $HUSK --root $root run --bundle $bundle husk-demo-$$"
exec "$HUSK" --root "$root" run --bundle "$bundle" "husk-demo-$$"
