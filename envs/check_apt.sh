#!/usr/bin/env bash
# Check that the Debian packages in envs/apt.txt are installed; install them as root, else print the command and fail.
set -euo pipefail
list=${1:-envs/apt.txt}
[ -r "$list" ] || { echo "cannot read the package list $list" >&2; exit 1; }
missing=()
for pkg in $(grep -vE '^\s*(#|$)' "$list"); do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v dpkg-query >/dev/null; then
  echo "dnalm needs these Debian/Ubuntu packages (from $list): ${missing[*]}; install their equivalents, then rerun make." >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "dnalm needs Debian packages that are not installed: ${missing[*]}" >&2
  echo "Run this once, then rerun make:" >&2
  echo "    sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
