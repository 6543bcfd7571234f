#!/usr/bin/env bash
# check_abi_layout_complete.sh INCLUDE_DIR LAYOUT_TEST_C: fails when a public C
# header declares an enum or a non-opaque struct that abi_layout_test.c does
# not check (so a new one cannot slip past the layout test).
set -euo pipefail
inc=$1
test_c=$2
missing=0
for name in $(grep -ho 'typedef enum [a-z0-9_]*' "$inc"/ambient/c/*.h | awk '{print $3}'); do
  grep -q "ENUM_IS_INT($name)" "$test_c" || { echo "enum $name is not checked in $test_c"; missing=1; }
done
for name in $(grep -ho 'typedef struct [a-z0-9_]* {' "$inc"/ambient/c/*.h | awk '{print $3}'); do
  grep -q "sizeof($name)\", sizeof($name)" "$test_c" ||
    { echo "struct $name is not checked in $test_c"; missing=1; }
done
enums=$(grep -ho 'typedef enum [a-z0-9_]*' "$inc"/ambient/c/*.h | wc -l)
[ "$enums" -gt 0 ] || { echo "no enums found under $inc/ambient/c: wrong directory?"; exit 1; }
[ "$missing" -eq 0 ] && echo "all $enums enums and every public struct are in the layout test"
exit "$missing"
