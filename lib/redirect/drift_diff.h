// Internal to lib/redirect: comparing an expected ordered list of rules with
// the installed one.
#ifndef AMBIENT_LIB_REDIRECT_DRIFT_DIFF_H_
#define AMBIENT_LIB_REDIRECT_DRIFT_DIFF_H_

#include <string>
#include <vector>

#include "ambient/redirect/apply.h"

namespace ambient::redirect::internal {

// DiffRules appends to `out` how `have` differs from `want` at `where`: with
// equal lengths, each differing position is "modified"; otherwise rules only
// in `want` are "missing" and rules only in `have` are "extra"; the same rules
// in another order are one "modified" entry.
void DiffRules(const std::string& where, const std::vector<std::string>& want,
               const std::vector<std::string>& have, std::vector<Drift>* out);

}  // namespace ambient::redirect::internal

#endif  // AMBIENT_LIB_REDIRECT_DRIFT_DIFF_H_
