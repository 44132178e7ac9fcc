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
DL="$CACHE/kernel/download"

# apt-get download, once more after `apt-get update` if the package lists are missing or stale.
download() {
	rm -rf "$DL"
	mkdir -p "$DL"
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
rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp/x"
dpkg-deb -x "$deb" "$out.tmp/x"
ver=$(ls "$out.tmp/x/lib/modules" | head -n1)
mv "$out.tmp/x/boot/vmlinuz-$ver" "$out.tmp/vmlinuz"
mv "$out.tmp/x/boot/config-$ver" "$out.tmp/config"
mkdir -p "$out.tmp/lib/modules"
mv "$out.tmp/x/lib/modules/$ver" "$out.tmp/lib/modules/$ver"
echo "$ver" >"$out.tmp/version"
rm -rf "$out.tmp/x" "$DL"
mv "$out.tmp" "$out"
echo "$real" >"$CACHE/kernel/$PKG.resolved"
log "kernel $ver ($real) in $out"
echo "$out"
