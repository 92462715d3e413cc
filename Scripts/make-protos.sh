#!/usr/bin/env bash
# Regenerates the Swift code of Scripts/protos/tensorboard.proto (the generated file is committed;
# builds need neither tool). Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift, built
# here from the swift-protobuf checkout of the package.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --package-path .build/checkouts/swift-protobuf --product protoc-gen-swift --scratch-path .build/protoc-gen-swift
protoc --plugin=protoc-gen-swift=.build/protoc-gen-swift/release/protoc-gen-swift --swift_out=Sources/Kiln/IO/TensorBoard \
       --swift_opt=Visibility=Internal -I Scripts/protos Scripts/protos/tensorboard.proto
