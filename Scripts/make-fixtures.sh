#!/usr/bin/env bash
# Regenerates Tests/KilnTests/Fixtures with the real frameworks, in a throwaway virtual environment
# (.venv-fixtures, ignored by git). Tests and CI use the committed fixtures and need no framework.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv-fixtures ] || python3 -m venv .venv-fixtures
.venv-fixtures/bin/pip install -q "torch==2.13.0+cpu" safetensors numpy tensorflow-cpu onnx tensorboard
.venv-fixtures/bin/python Scripts/make-fixtures.py
