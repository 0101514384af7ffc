#!/usr/bin/env bash
# Installs Debian's prometheus package (prometheus and promtool), which the
# tests in internal/metrics run: `promtool check rules`, `promtool test
# rules`, `promtool check metrics` and a real Prometheus scraping introspectd.
#
# Idempotent and quick when both binaries are on PATH already. Runs as root
# (CI) or through sudo; never reads standard input.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if have promtool && have prometheus; then
	exit 0
fi

if ! have apt-get; then
	echo "install-prometheus: promtool/prometheus missing and apt-get not found;" \
		"install Prometheus (with promtool) by hand" >&2
	exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if have sudo; then
		sudo="sudo -n"
	else
		echo "install-prometheus: need root (or sudo) to apt-get install prometheus" >&2
		exit 1
	fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-prometheus: installing Debian's prometheus package (promtool, prometheus)"
$sudo apt-get update -qq </dev/null >/dev/null
# Without an init system (containers, CI) the package's postinst starts no
# daemon; the tests start their own Prometheus on a free loopback port.
$sudo apt-get install -y -qq --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	prometheus </dev/null >/dev/null

for b in promtool prometheus; do
	if ! have "$b"; then
		echo "install-prometheus: $b still not on PATH after installing prometheus" >&2
		exit 1
	fi
done
echo "install-prometheus: $(prometheus --version 2>&1 | head -n1)"
