// Links one layer's static library (ambient::authz) through the installed
// CMake package: proves the exported layer targets carry their dependencies.
#include <cstdio>

#include "ambient/authz/policy_codec.h"
#include "ambient/authz/policy_store.h"

int main() {
  auto policies = ambient::authz::DecodePolicyListJson(
      R"({"name": "deny-all", "namespace": "app", "scope": "NAMESPACE", "action": "DENY",
          "rules": [{"clauses": []}]})");
  if (!policies.ok()) return 1;
  ambient::authz::PolicyStore store;
  if (!store.Replace(std::move(*policies)).ok()) return 1;
  ambient::authz::Connection conn;
  conn.dst_port = 80;
  auto d = store.Check({"app", {}}, conn);
  if (d.allowed) return 1;
  std::printf("layer %s ok\n", d.policy.c_str());
  return 0;
}
