#!/bin/sh
# deps.sh — install what building and testing husk needs, from Debian's packages.
# Idempotent and quiet when everything is present; needs root (apt-get) otherwise.
set -eu

# busybox-static: the test and demo rootfs. runc: the reference the tests also run against.
# libseccomp-dev: seccomp filters. uidmap: newuidmap/newgidmap for user namespaces, and for
# integration-tests/tests/rootless.rs (run as a throw-away user; setpriv is util-linux, always there).
PKGS="busybox-static runc libseccomp-dev uidmap iproute2"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "hack/deps.sh: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $missing >/dev/null
fi
command -v cargo >/dev/null || { echo "hack/deps.sh: cargo not found: install Rust (rustup)" >&2; exit 1; }
