// The authz C ABI, driven as a C host would: JSON in, a request (sockaddrs
// and a SPIFFE ID) per check, decisions out.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "ambient/ambient.h"

namespace {

sockaddr_in V4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr_in6 V6(const char* ip, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

// Code returns the code of `err` (AMBIENT_OK for NULL) and frees it.
int CodeOf(ambient_error* err) {
  int code = err == nullptr ? AMBIENT_OK : ambient_error_code(err);
  ambient_error_free(err);
  return code;
}

const char kPolicies[] = R"({"policies": [
  {"name": "deny-evil", "namespace": "app", "scope": "NAMESPACE", "action": "DENY",
   "rules": [{"clauses": [{"matches": [{"namespaces": [{"exact": "evil"}]}]}]}]},
  {"name": "allow-front", "namespace": "app", "scope": "WORKLOAD_SELECTOR", "action": "ALLOW",
   "rules": [{"clauses": [{"matches": [{"principals": [{"exact": "cluster.local/ns/front/sa/web"}]}]}]}]}
]})";

class AuthzCapi : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = ambient_authz_store_new();
    decision_ = ambient_authz_decision_new();
    ASSERT_NE(store_, nullptr);
    ASSERT_NE(decision_, nullptr);
    ambient_error* err = ambient_authz_store_replace_json(store_, kPolicies, sizeof(kPolicies) - 1);
    ASSERT_EQ(err, nullptr) << ambient_error_message(err);
  }
  void TearDown() override {
    ambient_authz_decision_free(decision_);
    ambient_authz_store_free(store_);
  }
  // Check builds a fresh request; the first setter that refuses gives its code.
  int Check(const sockaddr* src, const sockaddr* dst, const char* id, bool selected) {
    const char* sel[] = {"app/allow-front"};
    ambient_authz_request* req = ambient_authz_request_new();
    EXPECT_NE(req, nullptr);
    int code = AMBIENT_OK;
    for (ambient_error* err : {ambient_authz_request_set_workload_namespace(req, "app"),
                               ambient_authz_request_set_workload_policies(
                                   req, selected ? sel : nullptr, selected ? 1 : 0),
                               ambient_authz_request_set_source(req, src),
                               ambient_authz_request_set_destination(req, dst),
                               ambient_authz_request_set_source_identity(req, id)}) {
      if (err != nullptr && code == AMBIENT_OK) code = ambient_error_code(err);
      ambient_error_free(err);
    }
    if (code == AMBIENT_OK) code = ambient_authz_check(store_, req, decision_);
    ambient_authz_request_free(req);
    return code;
  }
  ambient_authz_store* store_ = nullptr;
  ambient_authz_decision* decision_ = nullptr;
};

TEST_F(AuthzCapi, AllowsDeniesAndExplains) {
  sockaddr_in src = V4("198.18.0.1", 40000), dst = V4("198.18.0.2", 9080);
  auto* s = reinterpret_cast<sockaddr*>(&src);
  auto* d = reinterpret_cast<sockaddr*>(&dst);
  EXPECT_EQ(ambient_authz_store_size(store_), 2u);

  EXPECT_EQ(Check(s, d, "spiffe://cluster.local/ns/front/sa/web", true), 1);
  EXPECT_STREQ(ambient_authz_decision_get0_policy(decision_), "app/allow-front");
  EXPECT_STREQ(ambient_authz_decision_get0_reason(decision_), "");

  EXPECT_EQ(Check(s, d, "spiffe://cluster.local/ns/other/sa/x", true), 0);
  EXPECT_STREQ(ambient_authz_decision_get0_reason(decision_),
               "allow policies exist, but none allowed");

  EXPECT_EQ(Check(s, d, "spiffe://cluster.local/ns/evil/sa/x", false), 0);
  EXPECT_STREQ(ambient_authz_decision_get0_reason(decision_), "explicitly denied by app/deny-evil");

  // Not selected, not evil: only the namespace DENY applies, so allowed.
  EXPECT_EQ(Check(s, d, nullptr, false), 1);

  sockaddr_in6 src6 = V6("2001:db8::1", 40000), dst6 = V6("2001:db8::2", 9080);
  EXPECT_EQ(Check(reinterpret_cast<sockaddr*>(&src6), reinterpret_cast<sockaddr*>(&dst6),
                  "spiffe://cluster.local/ns/front/sa/web", true),
            1);
}

TEST_F(AuthzCapi, BadArgumentsAreCodesNotCrashes) {
  sockaddr_in src = V4("198.18.0.1", 1), dst = V4("198.18.0.2", 2);
  auto* s = reinterpret_cast<sockaddr*>(&src);
  auto* d = reinterpret_cast<sockaddr*>(&dst);
  EXPECT_EQ(Check(s, d, "spiffe://cluster.local/only/three", false), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Check(nullptr, d, nullptr, false), AMBIENT_ERR_INVALID_ARGUMENT);
  sockaddr unix_addr{};
  unix_addr.sa_family = AF_UNIX;
  EXPECT_EQ(Check(&unix_addr, d, nullptr, false), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_authz_request* req = ambient_authz_request_new();
  ASSERT_NE(req, nullptr);
  ASSERT_EQ(ambient_authz_request_set_workload_namespace(req, "app"), nullptr);
  ASSERT_EQ(ambient_authz_request_set_source(req, s), nullptr);
  ASSERT_EQ(ambient_authz_request_set_destination(req, d), nullptr);
  EXPECT_EQ(ambient_authz_check(nullptr, req, nullptr), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_authz_check(store_, nullptr, nullptr), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error* err = ambient_authz_request_set_workload_policies(req, nullptr, 3);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  EXPECT_EQ(CodeOf(ambient_authz_request_set_workload_namespace(nullptr, "app")),
            AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_authz_request_free(req);
  ambient_authz_request_free(nullptr);
  EXPECT_EQ(ambient_authz_store_remove(store_, nullptr, "x"), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(ambient_authz_decision_get0_dry_run_hit(decision_, 99), "");
  ambient_authz_store_free(nullptr);
  ambient_authz_decision_free(nullptr);
}

TEST_F(AuthzCapi, OneRequestIsReusedAndABadValueChangesNothing) {
  sockaddr_in src = V4("198.18.0.1", 40000), dst = V4("198.18.0.2", 9080);
  ambient_authz_request* req = ambient_authz_request_new();
  ASSERT_NE(req, nullptr);
  // Namespace, source and destination are needed before a check.
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), AMBIENT_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(CodeOf(ambient_authz_request_set_workload_namespace(req, "app")), AMBIENT_OK);
  ASSERT_EQ(CodeOf(ambient_authz_request_set_source(req, reinterpret_cast<sockaddr*>(&src))),
            AMBIENT_OK);
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), AMBIENT_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(CodeOf(ambient_authz_request_set_destination(req, reinterpret_cast<sockaddr*>(&dst))),
            AMBIENT_OK);
  const char* sel[] = {"app/allow-front"};
  ASSERT_EQ(CodeOf(ambient_authz_request_set_workload_policies(req, sel, 1)), AMBIENT_OK);
  ASSERT_EQ(CodeOf(ambient_authz_request_set_source_identity(
                req, "spiffe://cluster.local/ns/front/sa/web")),
            AMBIENT_OK);
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), 1);
  // Refused values leave the request as it was: still web, still allowed.
  EXPECT_EQ(CodeOf(ambient_authz_request_set_source_identity(req, "spiffe://x/only/three")),
            AMBIENT_ERR_INVALID_ARGUMENT);
  sockaddr unix_addr{};
  unix_addr.sa_family = AF_UNIX;
  EXPECT_EQ(CodeOf(ambient_authz_request_set_source(req, &unix_addr)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  const char* with_null[] = {"app/allow-front", nullptr};
  EXPECT_EQ(CodeOf(ambient_authz_request_set_workload_policies(req, with_null, 2)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), 1);
  EXPECT_STREQ(ambient_authz_decision_get0_policy(decision_), "app/allow-front");
  // Only what changed is set again: another identity is denied by the ALLOW...
  ASSERT_EQ(CodeOf(ambient_authz_request_set_source_identity(
                req, "spiffe://cluster.local/ns/other/sa/x")),
            AMBIENT_OK);
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), 0);
  // ...until the workload is no longer selected by it (policies cleared).
  ASSERT_EQ(CodeOf(ambient_authz_request_set_workload_policies(req, nullptr, 0)), AMBIENT_OK);
  EXPECT_EQ(ambient_authz_check(store_, req, decision_), 1);
  // Plaintext (identity cleared): no namespace, so the namespace DENY does not match.
  ASSERT_EQ(CodeOf(ambient_authz_request_set_source_identity(req, nullptr)), AMBIENT_OK);
  EXPECT_EQ(ambient_authz_check(store_, req, nullptr), 1);
  ambient_authz_request_free(req);
}

TEST_F(AuthzCapi, BadPolicyLeavesStoreUnchanged) {
  const std::string bad = R"({"policies": [{"name": "x", "rules": [{"clauses": [{"matches": [{"destinationPorts": [99999]}]}]}]}]})";
  ambient_error* err = ambient_authz_store_replace_json(store_, bad.data(), bad.size());
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ambient_error_message(err)).find("port 99999"), std::string::npos);
  ambient_error_free(err);
  EXPECT_EQ(ambient_authz_store_size(store_), 2u);

  err = ambient_authz_store_upsert_proto(store_, reinterpret_cast<const uint8_t*>("\xff"), 1);
  ASSERT_NE(err, nullptr);
  ambient_error_free(err);
  EXPECT_EQ(ambient_authz_store_remove(store_, "app", "deny-evil"), 1);
  EXPECT_EQ(ambient_authz_store_remove(store_, "app", "deny-evil"), 0);
  EXPECT_EQ(ambient_authz_store_size(store_), 1u);
}

TEST_F(AuthzCapi, DryRunHitsAreReported) {
  const std::string dry = R"({"name": "audit", "namespace": "app", "scope": "NAMESPACE",
    "action": "DENY", "dryRun": true, "rules": [{"clauses": []}]})";
  ambient_error* err = ambient_authz_store_upsert_json(store_, dry.data(), dry.size());
  ASSERT_EQ(err, nullptr) << ambient_error_message(err);
  sockaddr_in src = V4("198.18.0.1", 1), dst = V4("198.18.0.2", 2);
  EXPECT_EQ(Check(reinterpret_cast<sockaddr*>(&src), reinterpret_cast<sockaddr*>(&dst), nullptr,
                  false),
            1);
  ASSERT_EQ(ambient_authz_decision_num_dry_run_hits(decision_), 1u);
  EXPECT_STREQ(ambient_authz_decision_get0_dry_run_hit(decision_, 0), "app/audit");
}

}  // namespace
