#!/usr/bin/env bash
# Installs the system packages Kiln builds and tests against, skipping those already present:
# OpenCL headers + ICD loader, CLBlast, PoCL (OpenCL on the CPU, for tests), OpenBLAS, clinfo,
# zlib/libpng/libjpeg (dataset loaders), HDF5 (Keras files), ONNX's operator test data, and real
# data: Fashion-MNIST, Seattle's weather and temperatures (vega-datasets) and the fortunes texts;
# Open MPI, for the data-parallel tests (Kiln loads MPI at run time and builds without it).
# Uses sudo when not root.
set -euo pipefail

packages=(ocl-icd-opencl-dev opencl-headers libclblast-dev pocl-opencl-icd libopenblas-dev clinfo
          zlib1g-dev libpng-dev libjpeg62-turbo-dev libhdf5-dev libonnx-testdata dataset-fashion-mnist
          python3-vega-datasets fortunes libopenmpi-dev openmpi-bin)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if ((${#missing[@]})); then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    echo "setup: installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v swift >/dev/null || { echo "setup: swift is not on PATH; install Swift 6 (swift.org) first" >&2; exit 1; }
echo "setup: system packages present"
