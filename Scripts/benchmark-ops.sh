#!/usr/bin/env bash
# GEMM and conv2d GFLOP/s per backend beside OpenBLAS/CLBlast called directly (release build).
# Extra arguments go to `kiln benchmark ops` (e.g. --devices cpu --gemm-sizes 256,512).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build -c release --product kiln
.build/release/kiln benchmark ops "$@"
