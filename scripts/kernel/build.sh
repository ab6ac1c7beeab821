#!/usr/bin/env bash
# Build the guest for the kernel backend (docs/kernel.md): an arm64 Linux Image from Debian's
# linux-source package with scripts/kernel/config.fragment and scripts/kernel/patches/*.patch,
# and an initramfs with busybox, scripts/kernel/init and the agent (scripts/kernel/agent/agent.c).
#
# Idempotent, runs as root on a fresh Debian bookworm machine, never asks a question. Packages
# that are not build dependencies (the kernel source, busybox for arm64) come through a PRIVATE
# apt configuration under the cache, so the machine's own apt state is untouched. The Debian
# revision is never pinned (it rotates); the highest linux-source-7.* in trixie-backports is used.
#
# Cache: ${SMMU_KERNEL_CACHE:-/var/cache/smmu-conform/kernel}
#   src/                 the unpacked, patched kernel source (read by the Rust side for facts)
#   build/               the out-of-tree kernel build (incremental across config/patch changes)
#   images/<key>/        Image, headers/, release; key = source version + sha256(fragment, patches)
#   initrd/<key>/        initrd.gz, agent; key = image key + sha256(agent.c, init) + busybox version
#   current/             Image, initrd.gz (symlinks into the above) and version
# Force a rebuild: SMMU_KERNEL_REBUILD=1 (rebuilds Image and initrd under the same keys), or
# remove the cache directory (everything, including the downloads).
# A kernel under review instead of Debian's: SMMU_KERNEL_SRC=/path/to/linux (a Linux source tree
# with the arm-smmu-v3 iommufd path; use its own SMMU_KERNEL_CACHE). The test-only patches are
# applied to that tree in place (recorded in its .smmu-patches/; `patch -R` undoes them), it is
# built out of tree in $cache/build-tree, and make decides what is out of date on every run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${SMMU_KERNEL_CACHE:-/var/cache/smmu-conform/kernel}
jobs=${SMMU_KERNEL_JOBS:-3}
rebuild=${SMMU_KERNEL_REBUILD:-0}
export DEBIAN_FRONTEND=noninteractive
cross=aarch64-linux-gnu-

# Elapsed seconds on every line: the phases of a cold build can be timed from the log.
log() { echo "build.sh: [+${SECONDS}s] $*" >&2; }
die() { echo "build.sh: error: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs build dependencies)"
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# One build at a time per cache (CI and a developer, or two helpers, may share it).
exec 9>"$cache/.lock"
flock 9

# 1. Build dependencies, from the machine's own apt sources (bookworm).
deps="gcc-aarch64-linux-gnu libc6-dev-arm64-cross flex bison bc cpio libelf-dev libssl-dev xz-utils make gcc libc6-dev patch"
missing=""
for p in $deps; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing build dependencies:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086 # word splitting of the package list is intended
    apt-get install -y -qq --no-install-recommends $missing
fi
# QEMU is not needed to build, but run-guest.sh and the Rust side need it: install it the
# project's way if it is missing, so that build.sh alone prepares a fresh machine.
if ! command -v qemu-system-aarch64 >/dev/null 2>&1; then
    log "qemu-system-aarch64 missing: running scripts/install-qemu.sh"
    sh "$repo/scripts/install-qemu.sh"
fi

# 2. The private apt configuration: own sources, lists, package cache and (empty) dpkg status.
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/sources.list.d" "$cache/debs"
: >"$apt_dir/status"
# Same mirror as the machine's bookworm entry where there is one (CI machines may use a proxy).
mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/sources.list" <<EOT
deb [arch=amd64 signed-by=$keyring] $mirror trixie-backports main
deb [arch=arm64 signed-by=$keyring] $mirror bookworm main
EOT
cat >"$apt_dir/apt.conf" <<EOT
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/sources.list.d";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$apt_dir/sources.list.d";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir";
Dir::Cache::archives "$apt_dir/archives";
APT::Architecture "amd64";
APT::Architectures { "amd64"; "arm64"; };
APT::Sandbox::User "root";
EOT
papt() { APT_CONFIG="$apt_dir/apt.conf" "$@"; }

# Refresh the private lists at most once a day (the Debian revision rotates; a stale list names
# a .deb that is gone from the mirror).
stamp="$apt_dir/updated"
papt_update() {
    log "apt-get update (private lists in $apt_dir)"
    papt apt-get update -qq
    cp "$apt_dir/sources.list" "$stamp"
}
if ! cmp -s "$stamp" "$apt_dir/sources.list" || [ -n "$(find "$stamp" -mmin +1440)" ]; then
    papt_update
fi
# apt-get download into $cache/debs; a failure may mean the lists name a revision that has
# rotated off the mirror: refresh them once and retry.
papt_download() {
    (cd "$cache/debs" && papt apt-get download -qq "$1") && return 0
    log "download of $1 failed: refreshing the lists and retrying once"
    papt_update
    (cd "$cache/debs" && papt apt-get download -qq "${1%%=*}")
}

# 3. The kernel source: a tree under review (SMMU_KERNEL_SRC), or the highest linux-source-7.*
# (architecture all).
if [ -n "${SMMU_KERNEL_SRC:-}" ]; then
    src=$(cd "$SMMU_KERNEL_SRC" 2>/dev/null && pwd) || die "SMMU_KERNEL_SRC=$SMMU_KERNEL_SRC: no such directory"
    [ -f "$src/Makefile" ] && [ -d "$src/drivers/iommu/arm/arm-smmu-v3" ] ||
        die "SMMU_KERNEL_SRC=$src is not a Linux source tree with drivers/iommu/arm/arm-smmu-v3"
    srcpkg=tree
    srcver="$src@$(git -C "$src" describe --always --dirty --abbrev=12 2>/dev/null || echo unversioned)"
    build="$cache/build-tree"
    # The cache key cannot see every edit of a working tree: always rebuild; make's own
    # dependency tracking keeps that incremental.
    rebuild=1
    log "kernel under review: $srcver"
else
    srcpkg=$(papt apt-cache pkgnames linux-source-7. | sort -V | tail -n 1)
    [ -n "$srcpkg" ] || die "no linux-source-7.* package in trixie-backports"
    srcver=$(papt apt-cache policy "$srcpkg" | awk '/Candidate:/ {print $2}')
    [ -n "$srcver" ] && [ "$srcver" != "(none)" ] || die "no candidate version for $srcpkg"
    deb="$cache/debs/${srcpkg}_${srcver//:/%3a}_all.deb"
    if [ ! -s "$deb" ]; then
        log "downloading $srcpkg $srcver"
        rm -f "$cache/debs/${srcpkg}"_*.deb
        papt_download "$srcpkg=$srcver"
        if [ ! -s "$deb" ]; then
            # A retry after refreshed lists may have fetched a newer revision.
            deb=$(ls "$cache/debs/${srcpkg}"_*.deb | sort -V | tail -n 1)
            srcver=$(dpkg-deb -f "$deb" Version)
        fi
    fi

    src="$cache/src"
    if [ "$(cat "$src/.smmu-source" 2>/dev/null || true)" != "$srcpkg $srcver" ]; then
        log "unpacking $srcpkg $srcver into $src"
        rm -rf "$src" "$cache/build"
        mkdir -p "$src"
        # The .deb carries usr/src/linux-source-X.Y.tar.xz; unpack that tarball's single top dir.
        dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' |
            tar -xJ -C "$src" --strip-components=1
        [ -f "$src/Makefile" ] || die "unexpected layout in $deb (no Makefile)"
        echo "$srcpkg $srcver" >"$src/.smmu-source"
    fi
    build="$cache/build"
fi

# 4. Test-only patches (docs/kernel.md says what each does and why it is outside the path under
# test). Applied in place; when the set changes the previous set is reversed first, so only the
# touched files get new mtimes and the incremental build stays short.
applied="$src/.smmu-patches"
shopt -s nullglob
patches=("$here"/patches/*.patch)
want=$(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)
have=$(cat "$applied/sha256" 2>/dev/null || echo none)
if [ "$want" != "$have" ]; then
    if [ -d "$applied" ]; then
        old=("$applied"/*.patch)
        for ((i = ${#old[@]} - 1; i >= 0; i--)); do
            p=${old[i]}
            log "reversing $(basename "$p")"
            patch -d "$src" -p1 -R -s --no-backup-if-mismatch <"$p" ||
                die "cannot reverse $p: remove $src/.smmu-source to re-unpack"
        done
    fi
    rm -rf "$applied"
    mkdir -p "$applied"
    for p in "${patches[@]}"; do
        log "applying $(basename "$p")"
        patch -d "$src" -p1 -s --no-backup-if-mismatch --forward <"$p" || die "patch $p does not apply to $srcpkg $srcver"
        cp "$p" "$applied/"
    done
    echo "$want" >"$applied/sha256"
fi

# 5. The Image, keyed by source version + fragment + patches.
key=$( (echo "$srcpkg $srcver"; cat "$here/config.fragment" "${patches[@]}") |
    sha256sum | cut -c1-16)
img="$cache/images/$key"
kmake() { make -C "$src" O="$build" ARCH=arm64 CROSS_COMPILE="$cross" "$@"; }
if [ "$rebuild" = 1 ] || [ ! -s "$img/Image" ]; then
    mkdir -p "$build"
    log "configuring (allnoconfig + config.fragment)"
    KCONFIG_ALLCONFIG="$here/config.fragment" kmake -s allnoconfig
    # Every option the fragment asks for must have survived Kconfig's dependency resolution.
    bad=0
    while IFS= read -r line; do
        case "$line" in CONFIG_*=*) ;; *) continue ;; esac
        opt=${line%%=*}
        val=${line#*=}
        if [ "$val" = n ]; then
            grep -qx "$opt=y" "$build/.config" && { log "$opt is y, fragment wants n"; bad=1; }
        else
            grep -qx "$opt=$val" "$build/.config" || { log "$opt is not $val in .config"; bad=1; }
        fi
    done <"$here/config.fragment"
    [ "$bad" = 0 ] || die "config.fragment not satisfied (missing dependency?)"
    log "building Image with -j$jobs (about 7 min cold on 2 cores)"
    kmake -s -j"$jobs" Image
    rm -rf "$img.tmp"
    mkdir -p "$img.tmp"
    # `make headers` (not headers_install, which needs rsync) leaves the sanitized uAPI
    # headers in $build/usr/include.
    kmake -s headers
    mkdir -p "$img.tmp/headers"
    cp -a "$build/usr/include" "$img.tmp/headers/include"
    cp "$build/arch/arm64/boot/Image" "$img.tmp/Image"
    kmake -s kernelrelease >"$img.tmp/release"
    cp "$build/.config" "$img.tmp/config"
    rm -rf "$img"
    mv "$img.tmp" "$img"
fi
release=$(cat "$img/release")

# 6. busybox-static for arm64 (bookworm), through the private apt configuration.
bbver=$(papt apt-cache policy busybox-static:arm64 | awk '/Candidate:/ {print $2}')
[ -n "$bbver" ] && [ "$bbver" != "(none)" ] || die "no candidate version for busybox-static:arm64"
bbdir="$cache/busybox/$bbver"
if [ ! -x "$bbdir/bin/busybox" ]; then
    log "downloading busybox-static:arm64 $bbver"
    rm -f "$cache/debs"/busybox-static_*_arm64.deb
    papt_download "busybox-static:arm64=$bbver"
    rm -rf "$bbdir"
    mkdir -p "$bbdir"
    dpkg -x "$cache/debs"/busybox-static_*_arm64.deb "$bbdir"
    [ -x "$bbdir/bin/busybox" ] || die "busybox-static:arm64 has no bin/busybox"
fi

# 7. The agent (static, against the built source's uAPI headers) and the initramfs.
ikey=$( (echo "$key $bbver"; cat "$here/agent/agent.c" "$here/init") | sha256sum | cut -c1-16)
ird="$cache/initrd/$ikey"
if [ "$rebuild" = 1 ] || [ ! -s "$ird/initrd.gz" ]; then
    rm -rf "$ird.tmp"
    mkdir -p "$ird.tmp"
    log "compiling the agent against $img/headers"
    "${cross}gcc" -static -O2 -Wall -Wextra -Werror -std=gnu11 \
        -isystem "$img/headers/include" -o "$ird.tmp/agent" "$here/agent/agent.c"
    # gen_init_cpio (built with the kernel) makes the archive from a list: device nodes and
    # ownership without needing mknod, and the same bytes on every run.
    cat >"$ird.tmp/list" <<EOT
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
dir /bin 0755 0 0
dir /sbin 0755 0 0
file /bin/busybox $bbdir/bin/busybox 0755 0 0
slink /bin/sh busybox 0777 0 0
file /init $here/init 0755 0 0
file /bin/agent $ird.tmp/agent 0755 0 0
EOT
    "$build/usr/gen_init_cpio" "$ird.tmp/list" | gzip -9n >"$ird.tmp/initrd.gz"
    rm -rf "$ird"
    mv "$ird.tmp" "$ird"
fi

# 8. Stable names.
# Each symlink is replaced with a rename, so a guest booting meanwhile sees the old or the new.
mkdir -p "$cache/current"
ln -sfn "$img/Image" "$cache/current/.Image.new"
mv -T "$cache/current/.Image.new" "$cache/current/Image"
ln -sfn "$ird/initrd.gz" "$cache/current/.initrd.gz.new"
mv -T "$cache/current/.initrd.gz.new" "$cache/current/initrd.gz"
echo "$release $srcpkg $srcver" >"$cache/current/version.tmp"
mv "$cache/current/version.tmp" "$cache/current/version"
log "ready: $cache/current/{Image,initrd.gz}: $(cat "$cache/current/version")"
