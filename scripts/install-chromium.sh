#!/usr/bin/env bash
# Headless Chromium for the HTML report test (tests/test_html_report.py); idempotent.
#
# Installs the Debian package `chromium` with apt-get when no Chromium is on PATH. Needs
# root (or password-less sudo). Never fails the build: without a browser the rendering
# test is skipped and says why; the other HTML checks still run.
set -uo pipefail
for browser in chromium chromium-browser google-chrome; do
  if command -v "$browser" >/dev/null 2>&1; then exit 0; fi
done
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "browser: no Chromium and no root to install it; the HTML rendering test will be skipped" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: no apt-get here; install Chromium yourself for the HTML rendering test" >&2
  exit 0
fi
echo "browser: installing chromium (Debian package) for the HTML report test"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null 2>&1
  $SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 ||
    echo "browser: installing chromium failed; the HTML rendering test will be skipped" >&2
fi
exit 0
