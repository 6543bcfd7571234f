// tests/support/spiffe_ids.h: SPIFFE IDs the tests spell as text, parsed.
#ifndef AMBIENT_TESTS_SUPPORT_SPIFFE_IDS_H_
#define AMBIENT_TESTS_SUPPORT_SPIFFE_IDS_H_

#include <string>
#include <vector>

#include "ambient/identity/spiffe_id.h"

namespace ambient::test_support {

// Id parses an ID the test knows to be valid (throws otherwise, which gtest
// reports as a failure of the test).
inline identity::SpiffeId Id(const std::string& text) {
  return identity::SpiffeId::Parse(text).value();
}

// Ids parses each of `texts`, in order.
inline std::vector<identity::SpiffeId> Ids(const std::vector<std::string>& texts) {
  std::vector<identity::SpiffeId> out;
  for (const std::string& t : texts) out.push_back(Id(t));
  return out;
}

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_SPIFFE_IDS_H_
