#!/usr/bin/env bash
# Debian packages the graders run for real; idempotent (a no-op once they are present).
#
#   prometheus, prometheus-alertmanager  lab_2_5, triton_2_5 (promtool, amtool, live servers)
#   bubblewrap                           the student-code sandbox when not running as root
#   libb64-0d                            perf_analyzer (triton_2_3), shipped in tritonclient
#
# Needs root or password-less sudo. Never fails setup: without a package, the items that
# need it are reported as ungradable with this script's name, and everything else grades.
set -uo pipefail
want=(prometheus prometheus-alertmanager bubblewrap libb64-0d)
missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
else
  echo "setup-system: missing ${missing[*]} and no root to install them:" >&2
  echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: no apt-get here; install ${missing[*]} yourself" >&2
  exit 0
fi
echo "setup-system: installing ${missing[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
# the packages' own services must not start (no init system in containers, and the graders
# start their own servers on free ports)
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod +x "$policy" && created_policy=1
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -q >/dev/null 2>&1
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    echo "setup-system: installing ${missing[*]} failed; run: sudo apt-get install ${missing[*]}" >&2
fi
[ $created_policy -eq 1 ] && $SUDO rm -f "$policy"
exit 0
