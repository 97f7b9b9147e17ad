#!/usr/bin/env bash
# tools/dist_train.sh CONFIG NUM_PROCS [train.py options]
# Launches NUM_PROCS processes per node with torchrun; gloo on machines without CUDA.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR and PORT on every node.
set -e
CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
TOOLS="$(cd "$(dirname "$0")" && pwd)"
PYTHON=${PYTHON:-python}

PYTHONPATH="$TOOLS/..":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$TOOLS/train.py" \
    $CONFIG \
    --launcher pytorch ${@:3}
