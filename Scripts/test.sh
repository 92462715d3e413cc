#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test on every backend (CPU, and OpenCL on PoCL),
# builds four Examples/ programs as a separate package that depends on Kiln by path, builds the
# release bundle (Scripts/bundle.sh) and checks it with a cleared environment, and runs README's
# first command as written (5 epochs on the real Fashion-MNIST), holding it to README's accuracy.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh
swift build --build-tests
swift test "$@"
Scripts/check-package.sh  # what a new package sees of Kiln: its public API, by path
Scripts/bundle.sh  # the self-contained bundle builds and runs with a cleared environment
first="$(sed -n '/^```sh$/{n;p;q}' README.md | sed 's/ *#.*$//')"
echo "+ $first"
log="$(mktemp)"
bash -c "$first" | tee "$log"
accuracy="$(sed -n 's/.*test accuracy \([0-9.]*\).*/\1/p' "$log")" && rm -f "$log"
awk -v a="$accuracy" 'BEGIN { exit !(a >= 0.87) }' || { echo "README's first command reached test accuracy '$accuracy'; README says 89%" >&2; exit 1; }
