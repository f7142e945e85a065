#!/usr/bin/env bash
# build.sh — install what the build needs (Debian/Ubuntu, as root) if it is
# missing, then configure and build helix into ./build.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v cc >/dev/null || need+=(gcc)
command -v make >/dev/null || need+=(make)
/usr/bin/python3 -c "import numpy" 2>/dev/null || need+=(python3-numpy)
command -v mpicc >/dev/null || need+=(openmpi-bin libopenmpi-dev)   # the MPI engine
command -v mpicc.mpich >/dev/null || need+=(mpich libmpich-dev)     # second MPI, tested too
[ -f /usr/include/jansson.h ] || need+=(libjansson-dev)               # safetensors headers
[ -f /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.a ] || need+=(libopenblas-pthread-dev) # GEMMs
command -v clang >/dev/null || need+=(clang libclang-rt-14-dev)       # fuzzing (libFuzzer)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)                    # helix bench layouts --plot
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "build.sh: installing ${need[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        echo "build.sh: please install: ${need[*]}" >&2
        exit 1
    fi
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
