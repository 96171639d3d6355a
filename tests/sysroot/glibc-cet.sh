#!/usr/bin/env bash
# Build Debian trixie's glibc (2.41) with --enable-cet and install it, with trixie's kernel
# headers, into a sysroot laid out like Debian (multiarch):
#
#   DIR/lib64/ld-linux-x86-64.so.2 -> ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
#   DIR/lib/x86_64-linux-gnu/      libc.so.6, libm.so.6, ... (glibc's slibdir)
#   DIR/usr/lib/x86_64-linux-gnu/  crt1.o, crti.o, libc.so, libc_nonshared.a, libc.a, ...
#   DIR/usr/include/               glibc's headers and the kernel's (asm in x86_64-linux-gnu/)
#   DIR/etc/ld.so.cache            made by the sysroot's own ldconfig
#
# so that `gcc --sysroot=DIR -BDIR/usr/lib/x86_64-linux-gnu/ -fcf-protection=full` links a
# fully SHSTK-marked program and `cetbox run --sysroot=DIR -- ./prog` runs it on that glibc.
#
# The sysroot is a cache outside the checkout: ${XDG_CACHE_HOME:-~/.cache}/cetbox/glibc-2.41-cet
# (override with CETBOX_GLIBC_CACHE). A valid cache is reused and nothing is built: its stamp
# names the same recipe (glibc version, configuration, install layout; see `recipe` below) and
# the files the tests use are there. Editing this script's comments or messages keeps the cache. glibc's build tree is kept next to it (build/): glibc's test harness
# (`make test`, tests/sysroot/glibc-tests.sh) runs there.
#
# The last line of standard output is the sysroot's path; progress goes to standard error.
#
# Needs: gcc, make, gawk, bison, python3, dpkg-dev (dpkg-source), apt-get, xz-utils. The
# machine's apt sources are never touched: apt-get runs on a private configuration (a sources
# list naming trixie, its own lists and archive directories) under the cache directory.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CETBOX_GLIBC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cetbox/glibc-2.41-cet}"
sysroot="$cache/sysroot"
build="$cache/build"
apt_dir="$cache/apt"
src_dir="$cache/src"
jobs="${CETBOX_GLIBC_JOBS:-$(nproc)}"

say() { printf 'glibc-cet.sh: %s\n' "$*" >&2; }
die() {
    say "error: $*"
    exit 1
}

# --- The recipe: everything the sysroot's contents depend on. The stamp's first line records
# it; change `layout` whenever the install steps (section 3) change what ends up in the sysroot.
glibc_upstream=2.41
layout=1
kinc="$src_dir/kernel-include"
# Debian's amd64 layout: debian/sysdeps/amd64.mk, linux.mk.
configparms='slibdir = /lib/x86_64-linux-gnu
rtlddir = /lib64'
configure_args=(--prefix=/usr --libdir=/usr/lib/x86_64-linux-gnu
    --libexecdir=/usr/lib/x86_64-linux-gnu --enable-cet --disable-werror
    --with-headers="$kinc" --enable-kernel=3.2 --disable-profile)
recipe="cetbox glibc-cet sysroot: glibc $glibc_upstream, layout $layout, $(printf '%s' "$configparms" | tr '\n' ';'), configure ${configure_args[*]}"

# Files the sysroot must hold (the tests and gcc --sysroot use them).
sysroot_files=(
    lib64/ld-linux-x86-64.so.2
    lib/x86_64-linux-gnu/libc.so.6
    lib/x86_64-linux-gnu/libpthread.so.0
    usr/lib/x86_64-linux-gnu/crt1.o
    usr/lib/x86_64-linux-gnu/crti.o
    usr/lib/x86_64-linux-gnu/libc.so
    usr/lib/x86_64-linux-gnu/libc_nonshared.a
    usr/include/stdio.h
    usr/include/linux/prctl.h
    usr/include/x86_64-linux-gnu/asm/unistd.h
    etc/ld.so.cache
)
cache_valid() {
    [ -f "$sysroot/.cetbox-stamp" ] && [ "$(head -1 "$sysroot/.cetbox-stamp")" = "$recipe" ] ||
        return 1
    local f
    for f in "${sysroot_files[@]}"; do
        [ -e "$sysroot/$f" ] || return 1
    done
}
if cache_valid; then
    say "cached sysroot is valid ($(sed -n 2p "$sysroot/.cetbox-stamp")); nothing to build"
    echo "$sysroot"
    exit 0
fi
if [ -f "$sysroot/.cetbox-stamp" ]; then
    say "cached sysroot at $sysroot does not match this recipe or lacks files: reinstalling"
fi

for tool in gcc make gawk bison python3 dpkg-source apt-get xz; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool '$tool' (Debian: apt-get install gcc make gawk bison python3 dpkg-dev xz-utils)"
done

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 || die "cannot lock $cache/.lock"

# --- 1. Debian trixie's source package and kernel headers, through a private apt configuration.
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc/preferences.d"
cat >"$apt_dir/etc/sources.list" <<'EOF'
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
: >"$apt_dir/status"
# Dir::Etc::SourceParts points at an empty directory so /etc/apt/sources.list.d is not read;
# Dir::State::status at an empty file so the host's installed packages do not matter.
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/etc/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/etc/preferences.d"
    -o "Dir::Etc::Preferences=$apt_dir/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$apt_dir/etc/preferences.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::Cache::Archives=$apt_dir/archives"
    -o "APT::Sandbox::User=$(id -un)"
    -o "Debug::NoLocking=1"
)
mkdir -p "$apt_dir/cache"
say "apt-get update (private configuration in $apt_dir)"
apt-get "${apt_opts[@]}" -q update >&2

mkdir -p "$src_dir"
version="$(apt-cache "${apt_opts[@]}" showsrc glibc | sed -n 's/^Version: //p' | sort -V | tail -1)"
[ -n "$version" ] || die "trixie's Sources index names no glibc"
upstream="${version%%-*}"
[ "$upstream" = "$glibc_upstream" ] ||
    die "trixie's glibc is $upstream, this script builds $glibc_upstream: update glibc_upstream (and the cache name)"
orig="$src_dir/glibc_$upstream.orig.tar.xz"
if [ ! -f "$orig" ]; then
    say "apt-get source --download-only glibc ($version, trixie)"
    # Only the orig tarball (upstream's release) is used: some mirrors lack the .dsc and the
    # .debian.tar.xz of the newest point release, and Debian's patches are its packaging policy.
    (cd "$src_dir" && apt-get "${apt_opts[@]}" -q source --download-only glibc >&2) ||
        say "apt-get source reported missing files; continuing if the orig tarball arrived"
    [ -f "$orig" ] || die "apt-get source did not fetch $(basename "$orig")"
fi
say "glibc $upstream (Debian trixie source package $version, orig tarball)"

if ! ls "$src_dir"/linux-libc-dev_*.deb >/dev/null 2>&1; then
    say "apt-get download linux-libc-dev (trixie)"
    (cd "$src_dir" && apt-get "${apt_opts[@]}" -q download linux-libc-dev:amd64 >&2)
fi
headers_deb="$(ls "$src_dir"/linux-libc-dev_*.deb | head -1)"

# Debian's orig tarball has no manual/ (the manual is GFDL, outside Debian main); glibc's list of
# subdirectories (all-subdirs in Makeconfig) still names it, so drop it from there. Debian's own
# packaging does the same with debian/patches/all/local-remove-manual.diff.
tree="$src_dir/glibc-$upstream"
if [ ! -f "$tree/.cetbox-extracted" ]; then
    rm -rf "$tree"
    say "extracting $(basename "$orig")"
    tar -C "$src_dir" -xf "$orig"
    sed -i 's/^\(.*wctype\) manual /\1 /' "$tree/Makeconfig"
    if grep -qw manual "$tree/Makeconfig"; then die "could not drop manual from $tree/Makeconfig"; fi
    touch "$tree/.cetbox-extracted"
fi

# The headers are unpacked once per .deb, keeping the package's timestamps: glibc's build tree
# tracks header dependencies by mtime, so fresh copies would make `make install` rebuild most of
# glibc. Other headers than the ones glibc was built with mean a build from scratch.
headers="$src_dir/kernel-headers"
if [ "$(cat "$headers/.cetbox-from" 2>/dev/null)" != "$(basename "$headers_deb")" ] ||
    [ ! -d "$kinc/asm" ]; then
    if [ -f "$headers/.cetbox-from" ]; then
        say "kernel headers changed: the build tree starts again"
        rm -rf "$build"
    fi
    rm -rf "$headers" "$kinc"
    mkdir -p "$headers"
    dpkg-deb -x "$headers_deb" "$headers"
    # glibc's --with-headers wants one directory holding linux/, asm/ and asm-generic/ ($kinc).
    mkdir -p "$kinc"
    cp -rLp "$headers/usr/include/linux" "$headers/usr/include/asm-generic" "$kinc/"
    cp -rLp "$headers/usr/include/x86_64-linux-gnu/asm" "$kinc/asm"
    basename "$headers_deb" >"$headers/.cetbox-from"
fi

# --- 2. Configure and build (configparms and configure_args: the recipe above).
# The build tree is reused only if it was configured exactly this way.
build_id="$(printf '%s\n' "$tree" "$configparms" "${configure_args[@]}")"
if [ ! -f "$build/.cetbox-built" ] || [ "$(cat "$build/.cetbox-built")" != "$build_id" ]; then
    rm -rf "$build"
    mkdir -p "$build"
    printf '%s\n' "$configparms" >"$build/configparms"
    say "configure --enable-cet (build tree $build)"
    (cd "$build" && "$tree/configure" "${configure_args[@]}" >"$build/configure.log" 2>&1) ||
        die "configure failed, see $build/configure.log"
    say "make -j$jobs (about 12 minutes on 2 idle cores; log: $build/make.log)"
    start=$(date +%s)
    if ! (cd "$build" && make -j"$jobs" >"$build/make.log" 2>&1); then
        tail -30 "$build/make.log" >&2
        die "make failed, see $build/make.log"
    fi
    say "built in $(($(date +%s) - start)) s"
    printf '%s\n' "$build_id" >"$build/.cetbox-built"
fi

# --- 3. Install into a fresh sysroot, with the kernel headers and an ld.so.cache of its own.
rm -rf "$sysroot.new"
say "make install DESTDIR=$sysroot.new"
(cd "$build" && make install DESTDIR="$sysroot.new" >"$build/install.log" 2>&1) ||
    die "make install failed, see $build/install.log"
mkdir -p "$sysroot.new/usr/include/x86_64-linux-gnu"
cp -rLp "$headers/usr/include/linux" "$headers/usr/include/asm-generic" "$sysroot.new/usr/include/"
cp -rLp "$headers/usr/include/x86_64-linux-gnu/asm" "$sysroot.new/usr/include/x86_64-linux-gnu/"
# Debian's lib64 holds only the interpreter link (rtlddir installs the file itself there; keep
# the real file in slibdir like Debian and link it).
if [ -f "$sysroot.new/lib64/ld-linux-x86-64.so.2" ] && [ ! -L "$sysroot.new/lib64/ld-linux-x86-64.so.2" ]; then
    if [ ! -e "$sysroot.new/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" ]; then
        mv "$sysroot.new/lib64/ld-linux-x86-64.so.2" "$sysroot.new/lib/x86_64-linux-gnu/"
    else
        rm "$sysroot.new/lib64/ld-linux-x86-64.so.2"
    fi
    ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$sysroot.new/lib64/ld-linux-x86-64.so.2"
fi
mkdir -p "$sysroot.new/etc"
printf '/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu\n' >"$sysroot.new/etc/ld.so.conf"
"$sysroot.new/sbin/ldconfig" -r "$sysroot.new" >&2 ||
    die "ldconfig -r $sysroot.new failed"
printf '%s\n%s\n' "$recipe" "Debian glibc $version, --enable-cet, kernel headers $(basename "$headers_deb")" \
    >"$sysroot.new/.cetbox-stamp"
rm -rf "$sysroot"
mv "$sysroot.new" "$sysroot"
cache_valid || die "the new sysroot lacks files the tests need (see sysroot_files)"
say "sysroot ready"
echo "$sysroot"
