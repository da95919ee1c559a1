#!/usr/bin/env bash
# Distributed testing, MMDetection's manner:  bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
# Several nodes: run it on every node with NNODES (node count), NODE_RANK (0..NNODES-1), MASTER_ADDR (the
# address of node 0) and PORT (a free port there, default 29500) set in the environment.
# The interpreter: $PYTHON, else the active virtualenv/conda env's python, else the checkout's .venv, else python3.
ROOT_DIR="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -n "${VIRTUAL_ENV:-}${CONDA_PREFIX:-}" ]] && command -v python > /dev/null; then PYTHON=python
  elif [[ -x "$ROOT_DIR/.venv/bin/python" ]]; then PYTHON="$ROOT_DIR/.venv/bin/python"
  else PYTHON=python3
  fi
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$(dirname $0)/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    $(dirname "$0")/test.py \
    $CONFIG \
    $CHECKPOINT \
    --launcher pytorch ${@:4}
