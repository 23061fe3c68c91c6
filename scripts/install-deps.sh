#!/usr/bin/env bash
# Installs the external tools the tests compare against, when missing:
# qemu-img/qemu-io, libvhdi (vhdiinfo, vhdimount, pyvhdi), 7-Zip, nbdinfo,
# FUSE 3, e2fsprogs (mkfs.ext4, debugfs), xz and bzip2.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-img || need+=(qemu-utils)
have vhdiinfo || need+=(libvhdi-utils)
# pyvhdi is Debian's binding for the system python3, not for a python3
# that may come first in PATH (pyenv).
/usr/bin/python3 -c 'import pyvhdi' >/dev/null 2>&1 ||
	python3 -c 'import pyvhdi' >/dev/null 2>&1 || need+=(python3-libvhdi)
have 7zz || need+=(7zip)
have nbdinfo || need+=(libnbd-bin)
have fusermount3 || need+=(fuse3)
have mkfs.ext4 || need+=(e2fsprogs)
have xz || need+=(xz-utils)
have bzip2 || need+=(bzip2)
have losetup || need+=(mount)

[ ${#need[@]} -eq 0 ] && exit 0

echo "installing: ${need[*]}" >&2
sudo=
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		sudo=sudo
	else
		echo "install-deps: not root and no sudo; install: ${need[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}" >/dev/null
