#!/bin/sh
# vm.sh — run a command as root in a throwaway qemu VM (Debian's kernel, busybox, an
# initramfs) under a chosen cgroup layout; exit with the command's exit code.
#
# usage: hack/vm/vm.sh [options] LAYOUT [--] COMMAND...
#   LAYOUT             v1 | v2 | hybrid | none (see README.md)
#   --copy PATH[:DEST] copy a host file or directory into the guest (at DEST, default the same
#                      absolute path); an ELF file brings the libraries `ldd` names with it
#   --env NAME=VALUE   set in the command's environment
#   --module NAME      load this kernel module (and its dependencies) before the command
#   --timeout SECONDS  give up on the VM after this long (default $HUSK_VM_TIMEOUT or 900)
#   --mem MB           guest memory (default $HUSK_VM_MEM or 2048)
#   --smp N            guest cpus (default $HUSK_VM_SMP or the host's, at most 4)
#   --log FILE         also write the console output here
# COMMAND runs with `sh -c` as PID 1's child, cwd /, stdin /dev/null. Its output (and the
# guest's console) is printed as it comes. Exits 124 if the VM gave no result in time, 125 if
# the VM could not run the command.
#
# Environment: HUSK_VM_CACHE (the kernel, default <workspace>/target/husk-vm),
# HUSK_VM_KERNEL_PKG (default linux-image-amd64), HUSK_VM_MODULES (more --module names),
# HUSK_VM_ACCEL (default tcg: nested KVM hung here), HUSK_VM_KEEP=1 keeps the staged tree.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT=${HUSK_VM_TIMEOUT:-900}
MEM=${HUSK_VM_MEM:-2048}
SMP=${HUSK_VM_SMP:-$(n=$(nproc); [ "$n" -gt 4 ] && n=4; echo "$n")}
ACCEL=${HUSK_VM_ACCEL:-tcg}
BUSYBOX=${BUSYBOX:-/bin/busybox}
LOG=

log() { echo "hack/vm: $*" >&2; }
die() {
	log "$*"
	exit 125
}
usage() {
	sed -n '4,21p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/husk-vm-stage.XXXXXX")
cleanup() {
	if [ "${HUSK_VM_KEEP:-}" = 1 ]; then log "kept $STAGE"; else rm -rf "$STAGE"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ROOT=$STAGE/root
mkdir -p "$ROOT/etc/husk-vm"
: >"$ROOT/etc/husk-vm/env"
: >"$STAGE/modules"
for m in ${HUSK_VM_MODULES:-}; do echo "$m" >>"$STAGE/modules"; done

# Single-quote a value for sh.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

# Copy one path into the staged root (at $2), resolving symlinks of a file.
put() {
	dest=$ROOT/${2#/}
	mkdir -p "$(dirname "$dest")"
	if [ -d "$1" ]; then
		cp -a "$1" "$dest"
	else
		cp -L "$1" "$dest"
	fi
}

is_elf() { [ -f "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' \n')" = '177ELF' ]; }

# The libraries (and dynamic loader) of an ELF file, each at its host path.
put_libs() {
	is_elf "$1" || return 0
	ldd "$1" 2>/dev/null | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p' |
		while read -r lib; do
			[ -e "$ROOT$lib" ] || put "$lib" "$lib"
		done
}

LAYOUT=
while [ $# -gt 0 ]; do
	case $1 in
	--copy)
		[ $# -ge 2 ] || usage
		src=${2%%:*}
		dst=$src
		case $2 in *:*) dst=${2#*:} ;; esac
		[ -e "$src" ] || die "--copy $src: no such file"
		case $src in /*) ;; *) src=$(pwd)/$src ;; esac
		case $dst in /*) ;; *) dst=$(pwd)/$dst ;; esac
		put "$src" "$dst"
		put_libs "$src"
		shift 2
		;;
	--env)
		[ $# -ge 2 ] || usage
		case $2 in *=*) ;; *) die "--env $2: expected NAME=VALUE" ;; esac
		echo "${2%%=*}=$(quote "${2#*=}")" >>"$ROOT/etc/husk-vm/env"
		shift 2
		;;
	--module)
		[ $# -ge 2 ] || usage
		echo "$2" >>"$STAGE/modules"
		shift 2
		;;
	--timeout)
		[ $# -ge 2 ] || usage
		TIMEOUT=$2
		shift 2
		;;
	--mem)
		[ $# -ge 2 ] || usage
		MEM=$2
		shift 2
		;;
	--smp)
		[ $# -ge 2 ] || usage
		SMP=$2
		shift 2
		;;
	--log)
		[ $# -ge 2 ] || usage
		LOG=$2
		shift 2
		;;
	-h | --help) usage ;;
	--)
		shift
		break
		;;
	-*) usage ;;
	*)
		if [ -z "$LAYOUT" ]; then
			LAYOUT=$1
			shift
		else
			break
		fi
		;;
	esac
done
case $LAYOUT in
v1 | v2 | hybrid | none) ;;
*) usage ;;
esac
[ $# -gt 0 ] || usage

# Tools: qemu and cpio from Debian's packages when missing (CI starts from a fresh machine).
need=
command -v qemu-system-x86_64 >/dev/null || need="$need qemu-system-x86"
command -v cpio >/dev/null || need="$need cpio"
if [ -n "$need" ]; then
	log "installing$need"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1 || {
		apt-get update -qq
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $need >/dev/null
	}
fi
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found: apt-get install busybox-static"
if ldd "$BUSYBOX" >/dev/null 2>&1; then
	die "$BUSYBOX is dynamically linked: apt-get install busybox-static"
fi

KDIR=$(sh "$HERE/kernel.sh")
KVER=$(cat "$KDIR/version")

# The guest: busybox with every applet in /bin, the two init stages, the command.
mkdir -p "$ROOT/bin" "$ROOT/sbin" "$ROOT/usr/bin" "$ROOT/usr/sbin" "$ROOT/newroot" \
	"$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp" "$ROOT/run" "$ROOT/root" "$ROOT/var/tmp"
chmod 1777 "$ROOT/tmp" "$ROOT/var/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in $("$BUSYBOX" --list); do
	case $applet in busybox | */* | '') continue ;; esac
	[ -e "$ROOT/bin/$applet" ] || ln -s busybox "$ROOT/bin/$applet"
done
ln -sfn ../../bin/busybox "$ROOT/usr/bin/env"
cp "$HERE/init" "$ROOT/init"
cp "$HERE/init2" "$ROOT/etc/husk-vm/init2"
chmod 0755 "$ROOT/init" "$ROOT/etc/husk-vm/init2"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ROOT/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$ROOT/etc/group"
printf '127.0.0.1 localhost husk-vm\n::1 localhost\n' >"$ROOT/etc/hosts"
# Every argument quoted: the guest runs exactly this argv through sh -c.
{
	printf 'exec sh -c'
	for a in "$@"; do printf ' %s' "$(quote "$a")"; done
	printf '\n'
} >"$ROOT/etc/husk-vm/cmd"

# Kernel modules, dependencies first. The package ships no modules.dep (depmod makes it at
# install time), so each module's own `depends=` (its .modinfo section) is read instead.
if [ -s "$STAGE/modules" ]; then
	mdir=lib/modules/$KVER
	: >"$STAGE/order"
	add_module() {
		# Recursive: keep this call's variables its own (dash and busybox sh know `local`).
		# shellcheck disable=SC3043
		local f rel info d cand
		f=$(find "$KDIR/$mdir/kernel" -name "$1.ko*" | head -n1)
		[ -n "$f" ] || f=$(find "$KDIR/$mdir/kernel" -name "$(echo "$1" | tr _ -).ko*" | head -n1)
		[ -n "$f" ] || f=$(find "$KDIR/$mdir/kernel" -name "$(echo "$1" | tr - _).ko*" | head -n1)
		if [ -z "$f" ]; then
			grep -q "/$1.ko" "$KDIR/$mdir/modules.builtin" 2>/dev/null && return 0
			die "kernel module $1 not found in $KDIR/$mdir"
		fi
		rel=${f#"$KDIR"}
		grep -qx "$rel" "$STAGE/order" && return 0
		info=$(tr '\0' '\n' <"$f")
		# softdep pre: names crypto algorithms and the like, often by alias (crc32c is
		# crc32c_generic): load what is found, skip the rest.
		for d in $(echo "$info" | sed -n 's/^softdep=pre: *//p' | sed 's/ post:.*//'); do
			for cand in "$d" "${d}_generic"; do
				if [ -n "$(find "$KDIR/$mdir/kernel" -name "$cand.ko*" | head -n1)" ]; then
					add_module "$cand"
					break
				fi
			done
		done
		for d in $(echo "$info" | sed -n 's/^depends=//p' | tr ',' ' '); do
			add_module "$d"
		done
		put "$f" "$rel"
		echo "$rel" >>"$STAGE/order"
	}
	while read -r m; do add_module "$m"; done <"$STAGE/modules"
	cp "$STAGE/order" "$ROOT/etc/husk-vm/modules"
fi

# An uncompressed cpio: under TCG the guest unpacks it faster than a gzip'd one.
INITRD=$STAGE/initrd.cpio
(cd "$ROOT" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$INITRD"
size=$(du -m "$INITRD" | cut -f1)
# The initramfs lives in guest memory (twice for a moment while the kernel unpacks it).
[ $((size * 3)) -lt "$MEM" ] || log "warning: initramfs ${size} MiB is large for --mem $MEM"

CONSOLE=$STAGE/console.log
log "booting kernel $KVER ($ACCEL, ${SMP} cpus, ${MEM} MiB, initramfs ${size} MiB, layout $LAYOUT, timeout ${TIMEOUT}s)"
start=$(date +%s)
set +e
# -no-reboot: a kernel panic (panic=-1 reboots at once) ends qemu instead of looping.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-accel "$ACCEL" -cpu max -smp "$SMP" -m "$MEM" \
	-nodefaults -no-user-config -display none -monitor none -serial stdio -no-reboot \
	-kernel "$KDIR/vmlinuz" -initrd "$INITRD" \
	-append "console=ttyS0 panic=-1 quiet loglevel=3 husk_layout=$LAYOUT" \
	</dev/null 2>&1 | stdbuf -o0 tr -d '\r' | tee "$CONSOLE"
set -e
secs=$(($(date +%s) - start))
[ -z "$LOG" ] || cp "$CONSOLE" "$LOG"

rc=$(sed -n 's/^HUSK-VM-RESULT: \([0-9][0-9]*\)$/\1/p' "$CONSOLE" | tail -n1)
if [ -z "$rc" ]; then
	if [ "$secs" -ge "$TIMEOUT" ]; then
		log "no result: the VM did not finish in ${TIMEOUT}s"
		exit 124
	fi
	log "no result: the VM stopped after ${secs}s without printing HUSK-VM-RESULT (see the console output above)"
	exit 125
fi
log "layout $LAYOUT: command exited $rc after ${secs}s (boot included)"
exit "$rc"
