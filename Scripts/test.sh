#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test on every backend (CPU, and OpenCL on PoCL).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build --build-tests
swift test "$@"
