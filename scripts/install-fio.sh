#!/usr/bin/env bash
# Builds fio with its libiscsi engine and installs it as /usr/local/bin/fio.
#
# Debian's fio package is configured without libiscsi, so the benchmarks could
# not drive an iSCSI target from userspace (this machine's kernel has no iSCSI
# initiator). The build uses Debian's own source package, so the fio version and
# patches are the distribution's; only the engine set changes.
#
# Idempotent: does nothing when a fio on PATH already lists the libiscsi engine.
# Needs root and apt (Debian 12 bookworm or later). Environment:
#   FIO_PREFIX     install prefix (default /opt/trireme-fio); /usr/local/bin/fio links to it
#   FIO_BUILD_DIR  scratch directory for the source (default: a fresh mktemp dir, removed after)
set -euo pipefail

prefix="${FIO_PREFIX:-/opt/trireme-fio}"

# Whether the given fio binary (default: the one on PATH) lists the libiscsi engine.
has_libiscsi_fio() {
  local bin="${1:-fio}"
  command -v "$bin" >/dev/null 2>&1 && "$bin" --enghelp 2>/dev/null | grep -qx '[[:space:]]*libiscsi'
}

if has_libiscsi_fio; then
  echo "install-fio: $(command -v fio) ($(fio --version)) already has the libiscsi engine"
  exit 0
fi
if has_libiscsi_fio "$prefix/bin/fio" && [ "$(id -u)" = 0 ]; then
  # Built before, but the link is missing or PATH finds another fio first.
  ln -sf "$prefix/bin/fio" /usr/local/bin/fio
  echo "install-fio: $prefix/bin/fio already built; linked from /usr/local/bin/fio"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-fio: must run as root (apt-get build-dep, install under $prefix)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
start=$(date +%s)

# deb-src entries: apt-get source and build-dep read them. A separate file
# mirroring each enabled "Types: deb" stanza keeps the distribution's own file
# untouched; one-line sources.list entries get a deb-src twin the same way.
src_file=/etc/apt/sources.list.d/trireme-deb-src.sources
src_list=/etc/apt/sources.list.d/trireme-deb-src.list
if ! grep -Rqs -e '^[[:space:]]*deb-src[[:space:]]' -e '^Types:.*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    for f in /etc/apt/sources.list.d/*.sources; do
      [ "$f" = "$src_file" ] && continue
      sed -e 's/^Types:.*/Types: deb-src/' "$f"
      echo
    done >"$src_file"
  fi
  if [ -f /etc/apt/sources.list ]; then
    sed -n -e 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$src_list"
    [ -s "$src_list" ] || rm -f "$src_list"
  fi
fi

apt-get update -q
apt-get build-dep -y -q fio
# libiscsi-dev is not among fio's Debian build dependencies: it is the point of
# this rebuild. dpkg-dev brings dpkg-source, which apt-get source needs.
apt-get install -y -q --no-install-recommends libiscsi-dev dpkg-dev pkg-config

build_dir="${FIO_BUILD_DIR:-}"
cleanup=0
if [ -z "$build_dir" ]; then
  build_dir=$(mktemp -d /tmp/trireme-fio-build.XXXXXX)
  cleanup=1
fi
mkdir -p "$build_dir"
cd "$build_dir"
# Root inside a container cannot drop to the _apt user for downloads; that only
# costs the privilege separation of the download, not the signature checks.
apt-get source -q -o APT::Sandbox::User=root fio
src=$(find . -maxdepth 1 -type d -name 'fio-*' | head -n 1)
cd "$src"

# fio's configure probes for libiscsi (>= 1.9.0, via pkg-config) only when asked.
./configure --prefix="$prefix" --enable-libiscsi
if ! grep -q '^CONFIG_LIBISCSI=y' config-host.mak; then
  echo "install-fio: configure did not enable libiscsi (is libiscsi-dev installed?)" >&2
  exit 1
fi
make -j"$(nproc)"
make install
ln -sf "$prefix/bin/fio" /usr/local/bin/fio

cd /
[ "$cleanup" = 1 ] && rm -rf "$build_dir"

if ! has_libiscsi_fio "$prefix/bin/fio"; then
  echo "install-fio: $prefix/bin/fio does not list the libiscsi engine" >&2
  exit 1
fi
echo "install-fio: $("$prefix/bin/fio" --version) with libiscsi installed in $prefix (linked from /usr/local/bin/fio) in $(( $(date +%s) - start ))s"
