#!/usr/bin/env bash
# Installs redis-server (Debian package) for the stores/redis tests, which
# start their own server on 127.0.0.1. Does nothing when it is installed.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
	echo "redis-server already installed: $(redis-server --version)"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "redis.sh: redis-server is missing and installing it needs root (apt-get install redis-server)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package's own service is not used: tests start their own servers.
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable --now redis-server >/dev/null 2>&1 || true
fi
echo "installed $(redis-server --version)"
