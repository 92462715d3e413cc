#!/usr/bin/env bash
# Builds a self-contained Linux bundle of the kiln command line for machines without Swift (a GPU
# machine, a cluster node): dist/kiln/bin/kiln (a launcher), libexec/kiln (the release binary, Swift
# runtime linked in), lib/ (every shared library it loads beyond glibc: OpenBLAS, CLBlast, the
# OpenCL ICD loader, HDF5, libpng, libjpeg, …), Scripts/gpu-check.sh (with benchmark.py for the
# PyTorch CUDA comparison) and, with --with-data, the Fashion-MNIST files for its benchmark. GPU drivers are not bundled: the machine's own OpenCL
# driver is found through its ICD files (gpu-check.sh registers NVIDIA's and AMD's when none does).
# Checks the bundle with a cleared environment before it finishes; --tar also packs dist/kiln.tar.xz
# (with the data about 61 MB: small enough to carry to the lent GPU machine).
set -euo pipefail
cd "$(dirname "$0")/.."
out=dist/kiln
swift build -c release --product kiln --static-swift-stdlib
binary=.build/release/kiln
rm -rf "$out.tmp" && mkdir -p "$out.tmp"/{bin,libexec,lib}
cp "$binary" "$out.tmp/libexec/kiln"
strip "$out.tmp/libexec/kiln"
# Every library ldd resolves, except the C library and loader, which must be the machine's own.
ldd "$binary" | awk '/=> \// {print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libresolv.so*) ;;
        *) cp -L "$lib" "$out.tmp/lib/" ;;
    esac
done
cat > "$out.tmp/bin/kiln" <<'LAUNCHER'
#!/bin/sh
# Runs the bundled kiln with the bundled libraries.
here=$(cd "$(dirname "$0")/.." && pwd)
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/libexec/kiln" "$@"
LAUNCHER
chmod +x "$out.tmp/bin/kiln"
mkdir -p "$out.tmp/Scripts" && cp Scripts/gpu-check.sh Scripts/benchmark.py "$out.tmp/Scripts/"
for option in "$@"; do
    case $option in
        --with-data) mkdir -p "$out.tmp/data/fashion-mnist" && cp /usr/share/datasets/fashion-mnist/*.gz "$out.tmp/data/fashion-mnist/" ;;
        --tar) ;;
        *) echo "bundle.sh: unknown option $option (--with-data, --tar)"; exit 1 ;;
    esac
done
rm -rf "$out" && mv "$out.tmp" "$out"
# The check: a cleared environment, the CPU backend's self test and a short training run.
env -i "$out/bin/kiln" devices
env -i "$out/bin/kiln" selftest --device cpu --quick | tail -1
case " $* " in *" --tar "*) tar -C dist -cf - kiln | xz -T0 -6 > dist/kiln.tar.xz && echo "Archive: dist/kiln.tar.xz ($(du -sh dist/kiln.tar.xz | cut -f1))" ;; esac
echo "Bundle: $out ($(du -sh "$out" | cut -f1)); copy it anywhere and run $out/bin/kiln, or $out/Scripts/gpu-check.sh on a GPU machine"
