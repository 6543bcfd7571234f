#!/usr/bin/env bash
# reap-test-netns.sh: removes the network namespaces a killed test left behind.
# Every test that names a namespace calls it ambient-test-<pid>-<rest>, <pid>
# being the test process (or shell). A test deletes its namespaces on any
# failure it sees, but not when it is killed (a ctest timeout sends SIGKILL),
# so `make test` runs this first: a namespace whose process is gone is
# deleted; one whose process is alive (a test running now) is left alone.
# Prints one line per namespace removed. Needs root when there is any.
set -u
dir=/run/netns
rc=0
for path in "$dir"/ambient-test-*; do
  [ -e "$path" ] || continue
  name=${path##*/}
  pid=${name#ambient-test-}
  pid=${pid%%-*}
  case $pid in '' | *[!0-9]*) continue ;; esac
  [ -d "/proc/$pid" ] && continue
  if ip netns del "$name" 2>/dev/null; then
    echo "reap-test-netns: removed $name (its test, pid $pid, is gone)"
  else
    echo "reap-test-netns: could not remove $name" >&2
    rc=1
  fi
done
exit $rc
