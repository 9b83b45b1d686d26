#!/usr/bin/env bash
# Install what DueCourse needs on a fresh Debian 12 machine: system packages, uv, and the locked venv (.venv).
# Idempotent and quick when everything is already there, so `make` targets can call it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests and the demo need, one per line.
APT_PACKAGES=(
    postgresql
    fonts-noto-cjk   # Chinese letters (WeasyPrint) and the verification page
    chromium         # browser tests (Playwright drives Debian's chromium, never a downloaded one)
    poppler-utils    # pdftotext / pdffonts read rendered letters back in tests
    zbar-tools       # zbarimg decodes the QR code printed on a notice, in tests
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ]; then
        echo "bootstrap: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
        echo "bootstrap: missing Debian packages ${missing[*]}; not root, so not installing them" >&2
    fi
fi

# uv from PyPI when the machine has none; `python3 -m uv` works even when pip put no script on PATH.
if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    if ! python3 -m uv --version >/dev/null 2>&1; then
        echo "bootstrap: installing uv with pip" >&2
        python3 -m pip install -q uv >&2 || python3 -m pip install -q --break-system-packages uv >&2
    fi
    UV=(python3 -m uv)
fi

# The venv exactly as locked (dev group included); never re-resolves, never downloads a Python.
UV_PYTHON_DOWNLOADS=never "${UV[@]}" sync --frozen --quiet >&2
