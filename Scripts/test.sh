#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test on every backend (CPU, and OpenCL on PoCL),
# then builds the release bundle (Scripts/bundle.sh) and checks it with a cleared environment.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build --build-tests
swift test "$@"
Scripts/bundle.sh  # the self-contained bundle builds and runs with a cleared environment
