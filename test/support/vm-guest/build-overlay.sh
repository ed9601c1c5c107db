#!/bin/bash
# Builds the node-plugin guest on top of shared/vm-initiator/run.sh's artifacts:
# an extra initramfs archive (Linux unpacks concatenated cpio archives in order,
# later files replacing earlier ones) with its own /init, a command agent, and
# the host tools the node plugin runs, all taken from Debian .debs fetched with
# `apt-get download`. Nothing installed on this machine goes into the guest.
#
# Usage: build-overlay.sh BASE OUT
#   BASE  run.sh's VMI_WORK after `run.sh build` (vmlinuz, initramfs.cpio.gz,
#         debs/, initramfs/ with its modules.dep)
#   OUT   where the overlay goes; OUT/debs caches the extra packages
# Result: OUT/initrd.gz = base archive + overlay archive, ready for -initrd.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BASE=$1
OUT=$2
DEBS=$OUT/debs
ROOT=$OUT/pkgroot
OVL=$OUT/overlay

# Packages beyond run.sh's: GNU coreutils, util-linux (blkid, blockdev), mount,
# xfsprogs and the libraries they need that run.sh's set lacks. The node plugin
# in a pod runs the host's GNU tools through nsenter; busybox applets answer
# some options differently, so the guest runs the same Debian binaries.
EXTRA_PKGS="coreutils util-linux mount xfsprogs libinih1 liburcu8 libacl1 libattr1 libgmp10"
# Tool name in the guest -> path inside the extracted packages. The agent finds
# them first on its search path (/usr/local/sbin), ahead of busybox's applets.
TOOLS="stat:usr/bin/stat readlink:bin/readlink test:usr/bin/test mkdir:bin/mkdir
 touch:bin/touch rmdir:bin/rmdir rm:bin/rm cat:bin/cat dd:bin/dd sync:bin/sync
 sha256sum:usr/bin/sha256sum blkid:sbin/blkid blockdev:sbin/blockdev
 mount:bin/mount umount:bin/umount mkfs.ext4:sbin/mke2fs resize2fs:sbin/resize2fs
 e2fsck:sbin/e2fsck mkfs.xfs:sbin/mkfs.xfs xfs_growfs:usr/sbin/xfs_growfs"
# Kernel modules beyond run.sh's (dependencies come from modules.dep).
EXTRA_MODS="xfs"

log() { echo "build-overlay: $*" >&2; }
die() { log "ERROR: $*"; exit 3; }

[ -s "$BASE/initramfs.cpio.gz" ] && [ -s "$BASE/vmlinuz" ] && [ -d "$BASE/initramfs/lib/modules" ] || die "$BASE holds no run.sh build (run.sh build first)"
mkdir -p "$DEBS"
for p in $EXTRA_PKGS; do
    ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 && continue
    log "apt-get download $p"
    ( cd "$DEBS" && apt-get download -q "$p" 2>&1 | grep -v -e unsandboxed -e '^Get:' >&2 || true )
    ls "$DEBS/${p}_"*.deb >/dev/null 2>&1 || die "download of $p failed (run apt-get update?)"
done

rm -rf "$ROOT" "$OVL"
mkdir -p "$ROOT" "$OVL/usr/local/sbin" "$OVL/trireme" "$OVL/etc/iscsi"
for d in "$BASE"/debs/*.deb "$DEBS"/*.deb; do
    case $(basename "$d") in linux-image*) continue ;; esac
    dpkg-deb -x "$d" "$ROOT"
done
BB=$ROOT/bin/busybox
LDSO=$(find "$ROOT" -name ld-linux-x86-64.so.2 -type f | head -n1)
[ -x "$BB" ] && [ -n "$LDSO" ] || die "busybox or the dynamic loader missing from the packages"
LIBPATH=$ROOT/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu

missing=""
for entry in $TOOLS; do
    name=${entry%%:*} rel=${entry#*:}
    [ -e "$ROOT/$rel" ] || die "$rel not found in the packages"
    cp -L "$ROOT/$rel" "$OVL/usr/local/sbin/$name"
    # Every library must resolve inside the extracted packages: ld.so falls back
    # to this machine's own /lib, which must never leak into the guest.
    while read -r so lib; do
        [ -n "$so" ] || continue
        case $lib in
            "$ROOT"/*) r=${lib#"$ROOT"/}
                       # run.sh's archive already holds the ones iscsid needs.
                       [ -e "$BASE/initramfs/$r" ] || [ -e "$OVL/$r" ] && continue
                       mkdir -p "$OVL/$(dirname "$r")"; cp -L "$lib" "$OVL/$r" ;;
            *) missing="$missing $so($name)" ;;
        esac
    done < <("$LDSO" --library-path "$LIBPATH" --list "$ROOT/$rel" | awk '/=>/ { print $1 " " $3 }')
done
[ -z "$missing" ] || die "libraries not in the packages:$missing"

# Debian's own iscsid.conf: the defaults a node running open-iscsi starts with.
cp "$ROOT/etc/iscsi/iscsid.conf" "$OVL/etc/iscsi/iscsid.conf"

# Extra kernel modules from the same kernel package run.sh used.
KDEB=$(ls "$BASE"/debs/linux-image-[0-9]*.deb | head -n1)
KV=$(ls "$BASE/initramfs/lib/modules" | head -n1)
KROOT=$OUT/kroot
rm -rf "$KROOT"; mkdir -p "$KROOT"
dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$KROOT" "./lib/modules/$KV"
# The package ships no modules.dep (depmod makes it at install time).
"$BB" depmod -b "$KROOT" "$KV"
MD=$KROOT/lib/modules/$KV
cp "$BASE/initramfs/lib/modules/$KV/modules.dep" "$OUT/modules.dep"
queue=""
for m in $EXTRA_MODS; do
    f=$(cd "$MD" && find kernel -name "$m.ko" | head -n1)
    [ -n "$f" ] || die "module $m not in $KV"
    queue="$queue $f"
done
while [ -n "${queue// /}" ]; do
    next=""
    for rel in $queue; do
        grep -q "^$rel:" "$OUT/modules.dep" && continue
        mkdir -p "$OVL/lib/modules/$KV/$(dirname "$rel")"
        cp "$MD/$rel" "$OVL/lib/modules/$KV/$rel"
        grep "^$rel:" "$MD/modules.dep" >> "$OUT/modules.dep"
        next="$next $(awk -v k="$rel:" '$1 == k { $1 = ""; print }' "$MD/modules.dep")"
    done
    queue=$next
done
mkdir -p "$OVL/lib/modules/$KV"
cp "$OUT/modules.dep" "$OVL/lib/modules/$KV/modules.dep"
rm -rf "$KROOT"

install -m 755 "$HERE/init.sh" "$OVL/init"
install -m 755 "$HERE/agent.sh" "$OVL/trireme/agent.sh"
install -m 755 "$HERE/by-path.sh" "$OVL/trireme/by-path.sh"

( cd "$OVL" && find . | LC_ALL=C sort | "$BB" cpio -o -H newc -R 0:0 2>/dev/null | "$BB" gzip -6 ) > "$OUT/overlay.cpio.gz"
cat "$BASE/initramfs.cpio.gz" "$OUT/overlay.cpio.gz" > "$OUT/initrd.gz.tmp"
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"
rm -rf "$ROOT" "$OVL"
log "built $OUT/initrd.gz ($(du -h "$OUT/initrd.gz" | cut -f1)), kernel $KV"
