#!/bin/sh
# Install the two QEMU versions the qemu backend is tested against (see
# /work/shared/reference/qemu-qtest-method.md, "Binaries"):
#   - QEMU 10.0 from Debian bookworm-backports, installed normally (qemu-system-aarch64 on PATH);
#   - QEMU 7.2 from Debian bookworm, unpacked side by side (not installed) into
#     $QEMU72_DIR (default /opt/smmu-conform/qemu-7.2), binary at usr/bin/qemu-system-aarch64.
# Idempotent, needs root, never asks a question. Versions are resolved with apt-cache, never
# pinned to a Debian revision (those rotate with security updates).
set -eu

QEMU72_DIR=${QEMU72_DIR:-/opt/smmu-conform/qemu-7.2}
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then
    echo "install-qemu.sh: must run as root" >&2
    exit 1
fi

# 1. bookworm-backports: same URIs and keyring as the existing bookworm entry.
src=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    uris=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    keyring=$(awk '/^Signed-By:/ {k=$2} /^Suites:/ && / bookworm( |$)/ {s=1} s && /^Signed-By:/ {print $2; exit}' \
        /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    uris=${uris:-http://deb.debian.org/debian}
    keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
    cat >"$src" <<EOT
Types: deb
URIs: $uris
Suites: bookworm-backports
Components: main
Signed-By: $keyring
EOT
    echo "added $src ($uris, $keyring)"
fi
apt-get update -qq

# 2. QEMU 10.0 from backports, installed.
if ! dpkg-query -W -f='${Version}' qemu-system-arm 2>/dev/null | grep -q bpo; then
    apt-get install -y -qq -t bookworm-backports qemu-system-arm
fi

# 3. QEMU 7.2 from bookworm, unpacked only. The candidate version from the bookworm suites
# (not backports): apt-cache madison lists each version with the suite it comes from.
v72=$(apt-cache madison qemu-system-arm | awk -F'|' '$3 ~ /bookworm(-security|-updates)?\/main/ && $3 !~ /backports/ {gsub(/ /,"",$2); print $2; exit}')
if [ -z "$v72" ]; then
    echo "install-qemu.sh: no bookworm qemu-system-arm version found by apt-cache" >&2
    exit 1
fi
stamp="$QEMU72_DIR/.version"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$v72" ]; then
    tmp=$(mktemp -d)
    chmod 755 "$tmp" # apt-get download runs as _apt and must be able to write here
    trap 'rm -rf "$tmp"' EXIT
    rm -rf "$QEMU72_DIR"
    mkdir -p "$QEMU72_DIR"
    # The binary's data (firmware blobs) is not needed with -nodefaults; the shared libraries it
    # links against are the same bookworm libraries the 10.0 install pulled in, except those
    # 7.2-only ones found missing by ldd below, which are downloaded and unpacked too.
    (cd "$tmp" && apt-get download -qq "qemu-system-arm=$v72")
    dpkg -x "$tmp"/qemu-system-arm_*.deb "$QEMU72_DIR"
    missing=$(ldd "$QEMU72_DIR/usr/bin/qemu-system-aarch64" | awk '/not found/ {print $1}')
    for lib in $missing; do
        pkg=$(apt-file search -l "$lib" 2>/dev/null | head -n1 || true)
        if [ -z "$pkg" ]; then
            echo "install-qemu.sh: QEMU 7.2 needs $lib and no package for it is known (install apt-file?)" >&2
            exit 1
        fi
        (cd "$tmp" && apt-get download -qq "$pkg")
        dpkg -x "$tmp/${pkg}"_*.deb "$QEMU72_DIR"
    done
    echo "$v72" >"$stamp"
fi

bin72="$QEMU72_DIR/usr/bin/qemu-system-aarch64"
libpath="$QEMU72_DIR/usr/lib/x86_64-linux-gnu"
if LD_LIBRARY_PATH="$libpath" ldd "$bin72" | grep -q 'not found'; then
    echo "install-qemu.sh: $bin72 still misses libraries:" >&2
    LD_LIBRARY_PATH="$libpath" ldd "$bin72" | grep 'not found' >&2
    exit 1
fi
echo "QEMU 10.0: $(command -v qemu-system-aarch64): $(qemu-system-aarch64 --version | head -n1)"
echo "QEMU 7.2:  $bin72: $(LD_LIBRARY_PATH="$libpath" "$bin72" --version | head -n1)"
