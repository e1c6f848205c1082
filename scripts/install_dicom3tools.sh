#!/usr/bin/env bash
# Install dciodvfy (Debian's dicom3tools), the DICOM IOD validator tests/test_dicom_seg.py runs on
# the DICOM-SEGs lungseg writes; those checks skip when it is missing. Prints how long it took.
set -euo pipefail
start=$(date +%s)
if ! command -v dciodvfy >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends dicom3tools
fi
echo "dciodvfy:   $(command -v dciodvfy)"
echo "install_dicom3tools.sh: took $(( $(date +%s) - start )) s"
