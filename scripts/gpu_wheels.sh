#!/usr/bin/env bash
# Wheels that scripts/gpu_check.sh installs on a GPU machine whose Python (3.12) has torch,
# numpy, scipy, numba, PyYAML, tqdm and scikit-learn but not gymnasium, ale-py or SB3 (and
# cannot download). Run here, where pip reaches PyPI; the wheels go to .whl/ (git-ignored,
# about 4 MB), which travels with the check.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  gymnasium==1.4.0 farama-notifications==0.0.6 ale-py==0.12.1 stable-baselines3==2.9.2 cma==4.5.0
ls .whl
