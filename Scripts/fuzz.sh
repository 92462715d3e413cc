#!/usr/bin/env bash
# Long fuzz run of every file reader (Scripts/test.sh runs a few hundred cases per format):
#   Scripts/fuzz.sh [--cases 100000] [--seed N] [--formats npy,h5,…]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product kiln >/dev/null
exec .build/release/kiln fuzz --cases 10000 "$@"
