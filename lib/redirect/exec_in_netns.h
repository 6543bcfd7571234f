// Internal to lib/redirect: run a program (iptables-restore, iptables-save,
// ipset) in a child process that joins a network namespace before exec,
// feeding it stdin and collecting stdout and stderr.
#ifndef AMBIENT_LIB_REDIRECT_EXEC_IN_NETNS_H_
#define AMBIENT_LIB_REDIRECT_EXEC_IN_NETNS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ambient/netns/netns.h"

namespace ambient::redirect::internal {

struct ExecResult {
  int exit_code = -1;  // exit status, or 128 + signal
  std::string out;
  std::string err;
};

// FindProgram returns the absolute path of `name` in the usual sbin/bin
// directories, or NotFound.
absl::StatusOr<std::string> FindProgram(const std::string& name);

// ExecIn runs `argv` (argv[0] an absolute path) with a minimal environment,
// in `ns` when it is valid (else in the caller's namespace). Gives up after
// 60 seconds (the child is killed). Errors only for failing to run it; a
// non-zero exit is reported in the result.
absl::StatusOr<ExecResult> ExecIn(const netns::Netns* ns, const std::vector<std::string>& argv,
                                  const std::string& input);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_EXEC_IN_NETNS_H_
