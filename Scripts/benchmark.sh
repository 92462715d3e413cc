#!/usr/bin/env bash
# Kiln vs Keras (TensorFlow CPU) vs PyTorch (CPU) on the workshop CNN and the real Fashion-MNIST.
# Makes .venv-bench (tensorflow-cpu, torch, numpy) on first use and a release build of kiln, then
# runs Scripts/benchmark.py with the given arguments (e.g. --epochs 5 --record).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
.venv-bench/bin/python -c "import tensorflow, torch" 2>/dev/null \
    || .venv-bench/bin/pip install -q tensorflow-cpu "torch==2.13.0+cpu" numpy
swift build -c release --product kiln
.venv-bench/bin/python Scripts/benchmark.py "$@"
