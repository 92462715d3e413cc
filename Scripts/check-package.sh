#!/usr/bin/env bash
# Builds four of Examples/ as a new user's package would: a fresh SwiftPM package (Swift 6 mode) that
# depends on this checkout by path and sees only Kiln's public API, then runs each briefly on the CPU.
# The programs: an autoencoder with a custom layer saved and reloaded, a GAN with two optimizers,
# a VAE with noise drawn on the device, a hand-written recurrent cell.
# Usage: Scripts/check-package.sh [FOLDER]   (default: a temporary folder, removed afterwards)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
programs=(Autoencoder GAN1D VAE RecurrentCell)
if [[ $# -gt 0 ]]; then package="$1"; mkdir -p "$package"; else package="$(mktemp -d)"; trap 'rm -rf "$package"' EXIT; fi

cat > "$package/Package.swift" <<EOF
// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Research",
    dependencies: [.package(path: "$root")],
    targets: ["${programs[0]}", "${programs[1]}", "${programs[2]}", "${programs[3]}"].map {
        .executableTarget(name: \$0, dependencies: [.product(name: "Kiln", package: "$(basename "$root" | tr "[:upper:]" "[:lower:]")")], path: "Sources/\(\$0)")
    }
)
EOF
for program in "${programs[@]}"; do
    mkdir -p "$package/Sources/$program"
    cp "$root/Examples/$program/main.swift" "$package/Sources/$program/"
done

cd "$package"
echo "check-package: building ${programs[*]} in $package against Kiln at $root"
swift build > build.log 2>&1 || { grep -E "error:" build.log >&2 || tail -n 30 build.log >&2; echo "check-package: the package did not build" >&2; exit 1; }
bin="$(swift build --show-bin-path)"

# A few steps each: they must run to the end (the suite checks what they learn, at more steps).
export KILN_DEVICE=cpu
ran=()
run() { echo "check-package: $*"; "$bin/$@" > "$package/$1.log" 2>&1 || { cat "$package/$1.log" >&2; echo "check-package: $1 failed" >&2; exit 1; }; tail -n 1 "$package/$1.log"; ran+=("$1"); }
run GAN1D 200 "$package/gan"
run RecurrentCell 50
if [[ -d /usr/share/datasets/fashion-mnist ]]; then
    run Autoencoder 1 600 "$package/autoencoder"
    run VAE 1 600 "$package/vae"
else
    echo "check-package: Fashion-MNIST is not installed (dataset-fashion-mnist): Autoencoder and VAE are built, not run"
fi
echo "check-package: ${programs[*]} build from a package that depends on Kiln by path; ran ${ran[*]}"
