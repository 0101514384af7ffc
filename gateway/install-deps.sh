#!/usr/bin/env bash
# install-deps.sh installs the gateways that the gateway integration tests
# run (nginx, Caddy, HAProxy) from Debian's packages, when they are missing.
#
# Idempotent and non-interactive: safe to run on every `make test`, as root
# in CI with no stdin. Package post-install scripts are kept from starting
# system services (which would bind port 80) by a temporary policy-rc.d, and
# nothing here needs a running init system. Waits (bounded) for a dpkg lock
# held by another install.
set -euo pipefail

# command -> Debian package
declare -A pkgs=([nginx]=nginx [caddy]=caddy [haproxy]=haproxy)

missing=()
for cmd in "${!pkgs[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
		missing+=("${pkgs[$cmd]}")
	fi
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "gateway/install-deps.sh: nginx, caddy and haproxy already installed"
	exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "gateway/install-deps.sh: need root (or sudo) to install: ${missing[*]}" >&2
		exit 1
	fi
	sudo=(sudo -n)
fi

# Keep post-install scripts from starting nginx/haproxy/caddy as services:
# invoke-rc.d asks policy-rc.d, and exit status 101 means "not allowed".
# An existing policy-rc.d (as in Docker images) is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	"${sudo[@]}" sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
	made_policy=1
fi
cleanup() {
	if [ "$made_policy" -eq 1 ]; then
		"${sudo[@]}" rm -f "$policy"
	fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
echo "gateway/install-deps.sh: installing ${missing[*]}"
"${sudo[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${missing[@]}" </dev/null
for cmd in "${!pkgs[@]}"; do
	if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
		echo "gateway/install-deps.sh: $cmd still missing after install" >&2
		exit 1
	fi
done
