#!/bin/bash
# Installs the Debian packages hoard's test peers need. Idempotent: when every binary is
# already present, apt is not touched at all; `apt-get update` runs only if the install
# fails without it.  usage: conformance/scripts/install-peers.sh
set -euo pipefail

# binary -> package that provides it
declare -A NEEDS=(
  [/usr/sbin/sshd]=openssh-server
  [/usr/bin/ssh]=openssh-client
  [/usr/bin/ssh-keygen]=openssh-client
  [/usr/bin/rsync]=rsync
  [/usr/bin/tar]=tar
  [/usr/lib/python3/dist-packages/aiosmtpd/__init__.py]=python3-aiosmtpd
  [/usr/bin/python3]=python3
  [/usr/sbin/smbd]=samba
  [/usr/bin/smbpasswd]=samba
  [/usr/bin/smbclient]=smbclient
  [/usr/bin/ganesha.nfsd]=nfs-ganesha
  [/usr/share/doc/nfs-ganesha-vfs/copyright]=nfs-ganesha-vfs
  [/usr/bin/nfs-ls]=libnfs-utils
  [/usr/bin/nfs-cat]=libnfs-utils
  [/usr/sbin/rpcbind]=rpcbind
  [/usr/sbin/ip]=iproute2
)

missing=()
for bin in "${!NEEDS[@]}"; do
  if [ ! -e "$bin" ]; then
    missing+=("${NEEDS[$bin]}")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-peers: all peer binaries present"
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-peers: installing ${packages[*]}"
if ! "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"; then
  echo "install-peers: install failed, running apt-get update and retrying"
  "${SUDO[@]}" apt-get update
  "${SUDO[@]}" apt-get install -y --no-install-recommends "${packages[@]}"
fi
