#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, idempotently:
# Debian's redis-server, openssl, chromium and chromium-driver, and a Python
# virtualenv (target/test-venv) with Selenium for the browser test.
# Runs unattended (CI=true, no stdin); does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(redis-server openssl chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    echo "test-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update </dev/null
    $sudo apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
fi

venv=target/test-venv
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    echo "test-deps: creating $venv with selenium"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'selenium>=4.10,<5' </dev/null
fi
echo "test-deps: redis-server, openssl, chromium, chromedriver and $venv ready"
