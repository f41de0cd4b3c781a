#!/bin/sh
# Fetch Debian's amd64 kernel package with apt-get download and unpack it with
# dpkg-deb -x into a cache directory, for the QEMU end-to-end test.
# Usage: fetch-kernel.sh CACHE_DIR
# Leaves CACHE_DIR/vmlinuz, CACHE_DIR/modules/ (the kernel's module tree) and
# CACHE_DIR/package (the package name).
set -eu
cache="$1"
[ -f "$cache/vmlinuz" ] && [ -d "$cache/modules" ] && exit 0
mkdir -p "$cache"
cd "$cache"
find_pkg() {
    # The package the metapackage points at, e.g. linux-image-6.1.0-40-amd64.
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
pkg=$(find_pkg)
if [ -z "$pkg" ]; then
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(find_pkg)
fi
[ -n "$pkg" ] || { echo "cannot find Debian's kernel package (apt-cache depends linux-image-amd64)" >&2; exit 1; }
rm -rf unpacked ./*.deb
apt-get download "$pkg" >/dev/null
dpkg-deb -x ./"$pkg"_*.deb unpacked
mv unpacked/boot/vmlinuz-* vmlinuz.tmp
rm -rf modules
mv unpacked/lib/modules/* modules
rm -rf unpacked ./*.deb
echo "$pkg" > package
mv vmlinuz.tmp vmlinuz
