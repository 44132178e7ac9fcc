#!/bin/sh
# kernel.sh — fetch Debian's kernel package and extract it into the cache; print its directory.
#
# The directory holds vmlinuz, config and lib/modules/<version>/. The default package is the
# distribution's `linux-image-amd64` metapackage (Debian 12: 6.1), resolved to the versioned
# `linux-image-<version>-amd64` it depends on. Idempotent: a cached kernel is reused.
#
# Environment: HUSK_VM_CACHE (default <workspace>/target/husk-vm), HUSK_VM_KERNEL_PKG.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../.." && pwd)
CACHE=${HUSK_VM_CACHE:-$WS/target/husk-vm}
PKG=${HUSK_VM_KERNEL_PKG:-linux-image-amd64}

log() { echo "hack/vm/kernel.sh: $*" >&2; }

mkdir -p "$CACHE/kernel"
# Private scratch dirs: two runs (v1 and v2 at once) may fetch at the same time.
DL=$(mktemp -d "$CACHE/kernel/download.XXXXXX")
trap 'rm -rf "$DL" "${tmp:-}"' EXIT

# apt-get download, once more after `apt-get update` if the package lists are missing or stale.
download() {
	rm -f "$DL"/*.deb
	# As root, apt warns that the _apt user cannot write here; harmless.
	if ! (cd "$DL" && apt-get download "$1" >/dev/null 2>&1); then
		log "apt-get download $1 failed; running apt-get update"
		apt-get update -qq >&2
		(cd "$DL" && apt-get download "$1" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2)
	fi
	ls "$DL"/*.deb
}

# A previously resolved versioned package (skips the network when cached).
if [ -f "$CACHE/kernel/$PKG.resolved" ]; then
	real=$(cat "$CACHE/kernel/$PKG.resolved")
	if [ -f "$CACHE/kernel/$real/vmlinuz" ]; then
		echo "$CACHE/kernel/$real"
		exit 0
	fi
fi

command -v apt-get >/dev/null || { log "apt-get not found (a Debian host is needed)"; exit 1; }

deb=$(download "$PKG")
real=$PKG
# A metapackage ships no kernel: follow its `linux-image-*` dependency.
if ! dpkg-deb -c "$deb" | grep -q '/boot/vmlinuz-'; then
	real=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[^ ]*\).*/\1/p' | head -n1)
	[ -n "$real" ] || { log "$PKG ships no kernel and depends on no linux-image-*"; exit 1; }
	deb=$(download "$real")
fi

out="$CACHE/kernel/$real"
if [ ! -f "$out/vmlinuz" ]; then
	tmp=$(mktemp -d "$out.tmp.XXXXXX")
	mkdir "$tmp/x"
	dpkg-deb -x "$deb" "$tmp/x"
	ver=$(basename "$(find "$tmp/x/lib/modules" -mindepth 1 -maxdepth 1 | head -n1)")
	mv "$tmp/x/boot/vmlinuz-$ver" "$tmp/vmlinuz"
	mv "$tmp/x/boot/config-$ver" "$tmp/config"
	mkdir -p "$tmp/lib/modules"
	mv "$tmp/x/lib/modules/$ver" "$tmp/lib/modules/$ver"
	echo "$ver" >"$tmp/version"
	rm -rf "$tmp/x"
	# Whoever finishes first wins; the loser's copy is removed by the trap.
	[ -f "$out/vmlinuz" ] || { rm -rf "$out"; mv -T "$tmp" "$out"; }
	log "kernel $ver ($real) in $out"
fi
echo "$real" >"$CACHE/kernel/$PKG.resolved.$$"
mv -f "$CACHE/kernel/$PKG.resolved.$$" "$CACHE/kernel/$PKG.resolved"
echo "$out"
