#!/usr/bin/env bash
# Installs what Switchyard needs on a Debian machine, skipping what is already there.
# Swift 6 itself must be on PATH (a toolchain cannot be fetched from Debian's or PyPI's registries here);
# the system packages below come from Debian.
# --browser also installs Debian's chromium and chromium-driver (the web UI's browser test).
set -euo pipefail
pkgs=(libmpich-dev mpich libnuma-dev python3 python3-pip python3-venv pkg-config curl)
# The multi-host testbed (Scripts/testbed/): network namespaces, veth links and an sshd per test host.
pkgs+=(iproute2 openssh-server openssh-client)
[ "${1:-}" = "--browser" ] && pkgs+=(chromium chromium-driver)
need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in "${pkgs[@]}"; do
    have "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: installing ${need[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "setup: Swift 6 is not on PATH. Install a Swift 6.x toolchain (swift.org) and re-run." >&2
    exit 1
fi
swift_major=$(swift --version 2>&1 | sed -n 's/.*Swift version \([0-9]*\)\..*/\1/p' | head -1)
if [ "${swift_major:-0}" -lt 6 ]; then
    echo "setup: Swift 6 or newer is required (found: $(swift --version 2>&1 | head -1))" >&2
    exit 1
fi
