#!/usr/bin/env bash
# System packages the test suite needs (Debian): headless Chromium renders the HTML reports in tests.
# Installs only what is missing; needs root (or sudo) and Debian's package registry.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# a text font, so headless screenshots of the report show glyphs (a slim image may have none)
if command -v dpkg >/dev/null 2>&1; then dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core); fi
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
