#!/usr/bin/env bash
# build-context.sh BERTH_BINARY OUT_DIR
# Writes a docker build context for Berth's FROM-scratch image to OUT_DIR:
# the Dockerfile, and rootfs/ holding the binary at /usr/local/bin/berth, the
# default config at /etc/docker/registry/config.yml, an empty /tmp, and every
# shared library the binary needs (from ldd, with the dynamic loader), at
# the same paths as on this machine. A static binary needs none.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "$#" -eq 2 ] || { echo "usage: $0 BERTH_BINARY OUT_DIR" >&2; exit 2; }
bin="$1" out="$2"
[ -x "$bin" ] || { echo "$0: $bin is not an executable" >&2; exit 1; }

rm -rf "$out/rootfs"
mkdir -p "$out/rootfs/usr/local/bin" "$out/rootfs/etc/docker/registry" "$out/rootfs/tmp" \
    "$out/rootfs/var/lib/registry"
chmod 1777 "$out/rootfs/tmp"
cp "$here/Dockerfile" "$out/Dockerfile"
cp "$here/config.yml" "$out/rootfs/etc/docker/registry/config.yml"
cp "$bin" "$out/rootfs/usr/local/bin/berth"

# `ldd` lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" and
# "/lib64/ld-linux-x86-64.so.2 (0x…)"; linux-vdso has no file. A static
# binary makes ldd print "not a dynamic executable" and exit 1.
if libs=$(ldd "$bin" 2>/dev/null); then
    grep -o '/[^ ]*' <<<"$libs" | while read -r lib; do
        mkdir -p "$out/rootfs$(dirname "$lib")"
        cp -L "$lib" "$out/rootfs$lib"
    done
fi
