#!/usr/bin/env bash
# make image: build rag-server:VERSION and rag-server:latest with no network inside the build.
#
# 1. A wheelhouse on the host (build/wheelhouse): a wheel for rag-server and for every pinned
#    run-time dependency (docker/constraints.txt), torch's CPU build, and llama-cpp-python built
#    portably by scripts/install-llama.sh (AVX2, no -march=native, no AVX-512/AMX). The image
#    installs only from it (`pip install --no-index`), so the build reaches no package index.
# 2. A base image: BASE_IMAGE (default python:3.11-slim-bookworm, or pin a digest). Where it can
#    be neither found nor pulled (an air-gapped host with no registry), a Debian base is made
#    here from Debian packages with mmdebstrap and imported as rag-base:bookworm.
# 3. The build itself, with --network=none.
#
# Environment:
#   CONTAINER_ENGINE  docker or podman (default: docker if its engine answers, else podman)
#   BASE_IMAGE        the base image; rag-base:bookworm skips the pull and uses the Debian base
#   VENV              the virtual environment whose pip builds the wheelhouse (default .venv)
#   TORCH_PIP_ARGS    where torch's CPU wheel comes from (as in the Makefile)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
house=build/wheelhouse
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
debian_base=rag-base:bookworm
step() { echo "[image $1/4] $2"; }

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
        engine=docker
    elif command -v podman >/dev/null; then
        engine=podman
    else
        echo "build-image: neither a Docker engine nor podman is available" >&2
        exit 1
    fi
fi
engine_args=()
if [ "$engine" = podman ]; then
    # crun and podman's default ulimits fail in some sandboxes (ours among them); runc and these
    # limits work everywhere we have tried.
    if command -v runc >/dev/null; then engine_args+=(--runtime runc); fi
    engine_args+=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
fi

step 1 "wheelhouse $house (pip's cache makes this quick after the first time)"
rm -rf "$house.tmp" && mkdir -p "$house.tmp"
# shellcheck disable=SC2086  # TORCH_PIP_ARGS is a list of pip arguments
"$venv/bin/pip" wheel --quiet --disable-pip-version-check --no-deps -w "$house.tmp" \
    ${TORCH_PIP_ARGS:-} "torch==$(sed -n 's/^torch==//p' docker/constraints.txt)"
bash scripts/install-llama.sh --wheel-into "$house.tmp" "$venv/bin"
"$venv/bin/pip" wheel --quiet --disable-pip-version-check -w "$house.tmp" \
    -c docker/constraints.txt --find-links "$house.tmp" .
cp docker/constraints.txt "$house.tmp/constraints.txt"
rm -rf "$house" && mv "$house.tmp" "$house"
echo "build-image: $(ls "$house"/*.whl | wc -l) wheels, $(du -sh "$house" | cut -f1)"

step 2 "base image"
base=${BASE_IMAGE:-python:3.11-slim-bookworm}
if [ "$base" != "$debian_base" ] && ! "$engine" image inspect "$base" >/dev/null 2>&1 \
    && ! timeout 120 "$engine" pull "$base"; then
    echo "build-image: cannot pull $base; using a Debian base made here ($debian_base)"
    base=$debian_base
fi
if [ "$base" = "$debian_base" ] && ! "$engine" image inspect "$base" >/dev/null 2>&1; then
    command -v mmdebstrap >/dev/null || { echo "build-image: needs mmdebstrap" >&2; exit 1; }
    tar=$(mktemp --suffix=.tar)
    mmdebstrap --quiet --variant=minbase \
        --include=python3.11,python3.11-venv,libgomp1,ca-certificates bookworm "$tar"
    "$engine" import --change 'CMD ["python3.11"]' "$tar" "$base" >/dev/null
    rm -f "$tar"
fi
if [ "$base" != "$debian_base" ]; then
    # llama.cpp needs OpenMP's libgomp1, which python:*-slim lacks: its .deb goes in the
    # wheelhouse, so the build installs it without a network (a Debian or Ubuntu host).
    mkdir -p "$house/debs"
    (cd "$house/debs" && apt-get download libgomp1) \
        || echo "build-image: no libgomp1 .deb; the base must already have libgomp.so.1" >&2
fi

# What the image is built from, by content: the build copies this list in before installing, so
# a changed wheel is never hidden by a cached layer (bind mounts are not part of cache keys).
(cd "$house" && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)

step 3 "build rag-server:$version on $base with $engine, no network"
began=$(date +%s)
"$engine" build "${engine_args[@]}" --network=none --build-arg "BASE_IMAGE=$base" \
    -t "rag-server:$version" -t rag-server:latest .
echo "build-image: built in $(($(date +%s) - began)) s"

step 4 "size"
"$engine" image inspect rag-server:latest --format '{{.Size}}' \
    | awk '{printf "build-image: rag-server:latest is %.0f MB\n", $1 / 1e6}'
