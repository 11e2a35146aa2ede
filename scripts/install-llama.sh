#!/usr/bin/env bash
# Build llama-cpp-python portably and install it into a venv.
#
# Why not `pip install llama-cpp-python`: a plain source build compiles llama.cpp with
# -march=native for the build machine. On an Intel Xeon that reports AMX, that build dies with a
# general-protection fault at the first generation (ggml's AMX kernels), and a wheel built on one
# machine crashes on another. pip's wheel cache does not key on CMAKE_ARGS, so a native wheel
# already in the cache is silently reused. So this script builds with explicit CPU features
# (docker/llama-cmake-args: AVX2/FMA/F16C, no AVX-512, no AMX), never from pip's cache, into a
# wheelhouse whose name is a hash of the version and the flags: a wheel is reused only when it
# was built with exactly these flags.
#
# Usage: scripts/install-llama.sh [--wheel-into DIR] VENV_BIN [VERSION]
#   --wheel-into DIR  copy the wheel into DIR (the image's wheelhouse) instead of installing it
#   LLAMA_CMAKE_ARGS  override the CPU flags (for example to add AVX-512 on a fleet that has it)
#   LLAMA_WHEELHOUSE  where built wheels are kept (default ~/.cache/rag-server/llama-cpp-python)
set -euo pipefail
into=
if [ "${1:-}" = --wheel-into ]; then into=${2:?--wheel-into needs a folder}; shift 2; fi
bin=${1:?usage: install-llama.sh [--wheel-into DIR] VENV_BIN [VERSION]}
here=$(cd "$(dirname "$0")/.." && pwd)
version=${2:-$(sed -n 's/^llama-cpp-python==//p' "$here/docker/constraints.txt")}
flags=${LLAMA_CMAKE_ARGS:-$(cat "$here/docker/llama-cmake-args")}
key=$(printf '%s\n%s\n' "$version" "$flags" | sha256sum | cut -c1-16)
house=${LLAMA_WHEELHOUSE:-$HOME/.cache/rag-server/llama-cpp-python}/$version-$key

wheel=$(ls "$house"/llama_cpp_python-*.whl 2>/dev/null | head -n 1 || true)
if [ -z "$wheel" ]; then
    echo "install-llama: building llama-cpp-python $version portably (a few minutes on 2 cores)"
    echo "install-llama: CMAKE_ARGS=$flags"
    mkdir -p "$house.tmp"
    CMAKE_ARGS="$flags" FORCE_CMAKE=1 "$bin/pip" wheel --quiet --no-deps --no-cache-dir \
        --no-binary llama-cpp-python -w "$house.tmp" "llama-cpp-python==$version"
    rm -rf "$house" && mv "$house.tmp" "$house"   # only a finished build is ever reused
    wheel=$(ls "$house"/llama_cpp_python-*.whl | head -n 1)
else
    echo "install-llama: reusing $wheel (built with the same version and flags)"
fi
if [ -n "$into" ]; then
    cp "$wheel" "$into/"
    exit 0
fi
"$bin/pip" install --quiet --force-reinstall --no-deps "$wheel"
# Record what was built, so `rag-server` can report it and a stale venv is noticed.
printf '%s\n%s\n' "$version" "$flags" > "$bin/../.llama-build"
