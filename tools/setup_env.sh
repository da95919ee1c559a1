#!/usr/bin/env bash
# Create .venv in the repository and install the pinned OpenMMLab stack plus mmdet-asl (editable, with
# [multilabel,dev]) and the linter.
# Idempotent: when the pins and pyproject are unchanged and the stack imports, a second run exits in seconds.
#
#   bash tools/setup_env.sh            # uses ../shared/wheelhouse for mmcv when it holds a fitting wheel
#   MMDET_ASL_WHEELHOUSE=/path bash tools/setup_env.sh
#   PYTHON=python3.11 bash tools/setup_env.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
PINS="$ROOT/requirements/pinned.txt"
WHEELHOUSE="${MMDET_ASL_WHEELHOUSE:-$ROOT/../shared/wheelhouse}"
STAMP="$VENV/.mmdet_asl_setup"
want="$(cat "$PINS" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] \
   && [[ -x "$VENV/bin/ruff" ]] \
   && "$VENV/bin/python" -c "import mmdet_asl, mmdet, mmpretrain, timm, mmcv.ops
from mmengine.utils import get_installed_path as p; import os; assert os.path.isfile(p('mmdet_asl') + '/.mim/model-index.yml')" \
      2>/dev/null; then
  echo "[setup_env] .venv is up to date ($VENV)"
  exit 0
fi

t0=$SECONDS
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# Build tools first: mmcv's setup.py imports pkg_resources (setuptools < 81) and is built
# without build isolation so that it compiles against the torch installed here.
"${PIP[@]}" install -q -c "$PINS" setuptools wheel ninja numpy
# torch first, so mmcv's build (if any) sees the pinned torch.
"${PIP[@]}" install -q -c "$PINS" torch torchvision
echo "[setup_env] torch installed ($((SECONDS - t0)) s)"

if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
  find_links=()
  if [[ -d "$WHEELHOUSE" ]]; then
    find_links=(--find-links "$WHEELHOUSE")
    echo "[setup_env] looking for a prebuilt mmcv in $WHEELHOUSE"
  else
    echo "[setup_env] no wheelhouse at $WHEELHOUSE: mmcv 2.1.0 builds from source (slow: see docs/installation.md)"
  fi
  # --no-cache-dir: pip would otherwise silently reuse a cached wheel built against another torch.
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" "${PIP[@]}" install --no-cache-dir --no-build-isolation \
    "${find_links[@]}" -c "$PINS" mmcv
  echo "[setup_env] mmcv installed ($((SECONDS - t0)) s)"
fi

"${PIP[@]}" install -q -c "$PINS" -e "$ROOT[multilabel,dev]" ruff
# MMEngine and mim find a package's configs at <distribution location>/mmdet_asl/.mim (`mmdet_asl::` config
# paths, `mim search mmdet-asl`); an editable install puts only a path hook in site-packages, so the package
# folder is linked there (the checkout's mmdet_asl/.mim links configs/, tools/ and model-index.yml).
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [[ ! -e "$SITE/mmdet_asl" ]]; then
  ln -s "$ROOT/mmdet_asl" "$SITE/mmdet_asl"
fi
# Exit status 2: a CUDA device but an mmcv without CUDA ops (the wheelhouse's is CPU-only); the environment
# works on the CPU, and check_env.py has said how to build mmcv for the GPU.
"$VENV/bin/python" tools/misc/check_env.py || [[ $? -eq 2 ]]
echo "$want" > "$STAMP"
echo "[setup_env] done in $((SECONDS - t0)) s: activate with 'source .venv/bin/activate'"
