#!/usr/bin/env bash
# `cmake --install` of this build into a temporary prefix, then a separate
# project that finds it with find_package(errand CONFIG REQUIRED), builds and
# runs. Arguments: the build directory, the source directory, the sanitizers
# the build uses ("" for none; the consumer must link with the same).
set -euo pipefail
build="$1"
src="$2"
sanitize="${3:-}"
prefix="$(mktemp -d)"
trap 'rm -rf "$prefix"' EXIT

cmake --install "$build" --prefix "$prefix/usr" >/dev/null
for f in include/errand/app/app.hpp include/errand/detail/thread_annotations.hpp \
         lib/liberrand.a lib/cmake/errand/errandConfig.cmake \
         lib/cmake/errand/errandConfigVersion.cmake lib/cmake/errand/errandTargets.cmake; do
  [ -e "$prefix/usr/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
[ -x "$prefix/usr/bin/errand" ] || { echo "FAIL: bin/errand was not installed"; exit 1; }
"$prefix/usr/bin/errand" --version

flags=""
[ -n "$sanitize" ] && flags="-fsanitize=$sanitize"
cmake -S "$src/tests/install/consumer" -B "$prefix/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$prefix/consumer" | grep -v "^\[" || true
[ -x "$prefix/consumer/consumer" ] || { echo "FAIL: the consumer did not build"; exit 1; }
"$prefix/consumer/consumer"
