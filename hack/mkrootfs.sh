#!/bin/sh
# mkrootfs.sh DEST — build a minimal busybox root filesystem in DEST.
#
# Uses the host's statically linked busybox (Debian: busybox-static), so it needs
# no network. Idempotent: running it again on the same DEST leaves the same tree.
set -eu

BUSYBOX=${BUSYBOX:-/bin/busybox}

usage() {
	echo "usage: $0 DEST" >&2
	exit 2
}

[ $# -eq 1 ] || usage
DEST=$1
[ -n "$DEST" ] || usage

if [ ! -x "$BUSYBOX" ]; then
	echo "$0: $BUSYBOX not found: install it with 'apt-get install busybox-static'" >&2
	exit 1
fi
# A dynamically linked busybox would not run inside the rootfs.
if command -v file >/dev/null 2>&1 && file -L "$BUSYBOX" | grep -q 'dynamically linked'; then
	echo "$0: $BUSYBOX is dynamically linked: install 'busybox-static' (apt-get install busybox-static)" >&2
	exit 1
fi

mkdir -p "$DEST"
cd "$DEST"

for d in bin proc sys dev tmp etc root var var/tmp run home home/user; do
	mkdir -p "$d"
done
chmod 1777 tmp var/tmp
chmod 0700 root

# Replace (not overwrite through) a previous copy, so a running copy is never truncated.
cp "$BUSYBOX" bin/.busybox.new
chmod 0755 bin/.busybox.new
mv -f bin/.busybox.new bin/busybox

for applet in $("$BUSYBOX" --list); do
	case $applet in
	busybox | */* | '') continue ;;
	esac
	ln -sfn busybox "bin/$applet"
done

cat >etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD

cat >etc/group <<'GROUP'
root:x:0:
user:x:1000:
nogroup:x:65534:
GROUP

chown 1000:1000 home/user
: >etc/hostname
