#!/bin/sh
# Installs the Debian packages faultline needs that are missing.
# usage: scripts/deps.sh PACKAGE...
# As root it installs them; otherwise it names them and fails.
set -eu
missing=""
for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "faultline needs these Debian packages, which are not installed:$missing" >&2
    echo "install them as root:  apt-get install$missing" >&2
    exit 1
fi
echo "installing Debian packages:$missing"
export DEBIAN_FRONTEND=noninteractive
# haproxy, nginx and openssh-server are only used as programs the tests and
# the demo start on private ports in private directories: keep their packages
# from starting system services while they install (unless a policy exists).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# written by faultline scripts/deps.sh for one install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
