#!/usr/bin/env bash
# Installs everything cgan_mnist needs on a Debian or Ubuntu machine: three system packages
# (as root, or through sudo), then the pinned Python packages of requirements.txt.
#   bash install.sh --gpu   the same, with requirements-gpu.txt (TensorFlow with CUDA, for an NVIDIA GPU)
#   graphviz               `dot`, for the architecture diagrams (--plot-architecture)
#   chromium               the browser the page's tests drive (Playwright, no browser download)
#   dataset-fashion-mnist  Fashion-MNIST's four IDX files (--dataset fashion)
# Without apt-get (another system), it says what it skipped and installs the Python packages.
set -euo pipefail
cd "$(dirname "$0")"

requirements=requirements.txt
case "${1:-}" in
  "") ;;
  --gpu) requirements=requirements-gpu.txt ;;
  *) echo "install.sh: unknown option ${1}; use no option (CPU) or --gpu (NVIDIA GPU)" >&2; exit 2 ;;
esac

SYSTEM_PACKAGES=(graphviz chromium dataset-fashion-mnist)
missing=()
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)

if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: ${SYSTEM_PACKAGES[*]} already there"
elif ! command -v apt-get >/dev/null 2>&1; then
  echo "no apt-get here: install ${missing[*]} (or their equivalents) yourself;" \
       "the features that need them are skipped by the tests until then" >&2
else
  sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "system packages: installing ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "python packages: $requirements"
# tensorflow-cpu and tensorflow (the GPU build) both provide the module: the other one goes first.
other=tensorflow; [ "$requirements" = requirements.txt ] || other=tensorflow-cpu
if python -m pip show -q "$other" >/dev/null 2>&1; then
  python -m pip uninstall -q -y "$other"
fi
python -m pip install -q -r "$requirements"
echo "installed; run the tests with: python -m pytest -q"
