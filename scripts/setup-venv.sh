#!/usr/bin/env bash
# Creates .venv with pgmlops and its dev + embeddings extras. torch is installed first,
# pinned to the CPU build that lies on this machine's disk, so no resolver ever pulls a
# CUDA build for sentence-transformers.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/pip show torch 2>/dev/null | grep -q '^Version: 2.13.0' || .venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[dev,embeddings]'
echo "[setup-venv] ok: $(.venv/bin/python -c 'import pgmlops, torch; print("torch", torch.__version__)')"
