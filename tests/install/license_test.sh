#!/usr/bin/env bash
# license_test.sh SOURCE_DIR: the repository says what its license is, in the
# form tools read (LICENSE, NOTICE, SPDX identifiers in every package's metadata).
set -uo pipefail
src=$1
fail=0
check() {  # check DESCRIPTION COMMAND...
  if "${@:2}" >/dev/null 2>&1; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}
check "LICENSE is the Apache License 2.0" \
  grep -q 'Apache License' "$src/LICENSE"
check "LICENSE is the full text (has its END OF TERMS)" \
  grep -q 'END OF TERMS AND CONDITIONS' "$src/LICENSE"
check "NOTICE says where the istio golden test data comes from" \
  grep -q 'tests/redirect/testdata/istio-golden' "$src/NOTICE"
check "CMake declares the SPDX identifier" \
  grep -q 'set(AMBIENT_LICENSE Apache-2.0)' "$src/CMakeLists.txt"
check "ambient.pc carries the SPDX identifier" \
  grep -q 'SPDX-License-Identifier: @AMBIENT_LICENSE@' "$src/cmake/ambient.pc.in"
check "ambientConfig.cmake carries the SPDX identifier" \
  grep -q 'SPDX-License-Identifier: @AMBIENT_LICENSE@' "$src/cmake/ambientConfig.cmake.in"
check "go.mod carries the SPDX identifier" \
  grep -q '^// SPDX-License-Identifier: Apache-2.0' "$src/bindings/go/go.mod"
for c in "$src"/bindings/rust/*/Cargo.toml; do
  check "$(basename "$(dirname "$c")")/Cargo.toml has license = \"Apache-2.0\"" \
    grep -q '^license = "Apache-2.0"' "$c"
done
exit $fail
