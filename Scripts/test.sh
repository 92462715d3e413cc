#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test on every backend (CPU, and OpenCL on PoCL),
# builds four Examples/ programs as a separate package that depends on Kiln by path, then builds the
# release bundle (Scripts/bundle.sh) and checks it with a cleared environment.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build --build-tests
swift test "$@"
Scripts/check-package.sh  # what a new package sees of Kiln: its public API, by path
Scripts/bundle.sh  # the self-contained bundle builds and runs with a cleared environment
