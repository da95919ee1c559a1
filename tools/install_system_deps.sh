#!/usr/bin/env bash
# System packages the demos and tests read: Debian's dataset-fashion-mnist (70 000 real Fashion-MNIST
# images, /usr/share/datasets/fashion-mnist) for the multi-label demo canvases. Idempotent.
set -euo pipefail
if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
[[ "$(id -u)" == 0 ]] || SUDO="sudo"
$SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q dataset-fashion-mnist >/dev/null; }
echo "[install_system_deps] installed dataset-fashion-mnist"
