#!/usr/bin/env bash
# Kiln vs Keras (TensorFlow CPU) vs PyTorch (CPU) on the workshop CNN and the real Fashion-MNIST, or,
# with `sequences` first, on the sequence workloads (LSTM forecaster, LSTM and Conv1D text models), or,
# with `generative` first, on the DCGAN and the convolutional VAE, or, with `transfer` first, on fine-tuning
# MobileNetV2 and ResNet50 (frozen, unfrozen, cached features), or, with `distributed` first, on data-parallel
# training under mpirun (scaling from 1 to 2 ranks, and test accuracy of 2 ranks against one process).
# Makes .venv-bench (tensorflow-cpu, torch, numpy) on first use and a release build of kiln, then
# runs Scripts/benchmark.py (or benchmark_sequences.py, benchmark_generative.py, benchmark_transfer.py) with the remaining arguments
# (e.g. --epochs 5 --record).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
if [ "${1:-}" = distributed ]; then  # Kiln alone, no Python engines
    shift
    exec python3 Scripts/benchmark_distributed.py "$@"
fi
[ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
.venv-bench/bin/python -c "import tensorflow, torch" 2>/dev/null \
    || .venv-bench/bin/pip install -q tensorflow-cpu "torch==2.13.0+cpu" numpy
swift build -c release --product kiln
if [ "${1:-}" = generative ]; then swift build -c release --product DCGAN; fi  # --quality runs Examples/DCGAN
if [ "${1:-}" = sequences ] || [ "${1:-}" = generative ] || [ "${1:-}" = transfer ]; then
    workloads=$1
    shift
    .venv-bench/bin/python "Scripts/benchmark_$workloads.py" "$@"
else
    .venv-bench/bin/python Scripts/benchmark.py "$@"
fi
