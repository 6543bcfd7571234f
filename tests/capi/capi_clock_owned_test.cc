// ambient_verify_options_set_clock_owned: the clock's user_data is freed
// exactly once, when the last options/verifier copy using it is gone, even
// when a verifier installed on an SSL_CTX outlives the options and the
// caller's verifier handle. (Run under ASan by make asan-test: a double free
// or a leak of user_data is reported there.)
#include <openssl/ssl.h>

#include <string>

#include <gtest/gtest.h>

#include "ambient/ambient.h"
#include "hbone/test_pki.h"

namespace {

using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;

struct ClockState {
  int64_t now;
  int calls = 0;
  int* freed;  // outlives the state
};

int64_t Now(void* user) {
  auto* s = static_cast<ClockState*>(user);
  ++s->calls;
  return s->now;
}

void FreeState(void* user) {
  auto* s = static_cast<ClockState*>(user);
  ++*s->freed;
  delete s;
}

void Check(ambient_error* err) {
  EXPECT_EQ(err, nullptr) << ambient_error_message(err);
  ambient_error_free(err);
}

TEST(CapiClockOwnedTest, UserDataIsFreedOnceWhenTheLastVerifierGoes) {
  TestCa ca;
  std::string roots = ca.CaPem();
  std::string leaf = TestCa::CertPem(ca.Leaf("spiffe://cluster.local/ns/a/sa/b"));
  ambient_trust_bundles* bundles = nullptr;
  Check(ambient_trust_bundles_new(&bundles));
  Check(ambient_trust_bundles_set_pem(bundles, "cluster.local", roots.data(), roots.size()));

  int freed = 0;
  auto* state = new ClockState{0, 0, &freed};
  state->now = 4102444800;  // 2100: every test certificate has expired by then
  ambient_verify_options* o = ambient_verify_options_new();
  ASSERT_NE(o, nullptr);
  ambient_verify_options_set_clock_owned(o, Now, state, FreeState);
  ambient_svid_verifier* v = nullptr;
  Check(ambient_svid_verifier_new(bundles, o, &v));
  ambient_verify_options_free(o);
  EXPECT_EQ(freed, 0) << "the verifier still uses the clock";

  ambient_error* err = ambient_svid_verifier_verify_pem(v, leaf.data(), leaf.size(), nullptr);
  EXPECT_NE(err, nullptr) << "the owned clock says 2100: the leaf has expired";
  ambient_error_free(err);
  EXPECT_EQ(state->calls, 1);
  state->now = static_cast<int64_t>(time(nullptr));
  Check(ambient_svid_verifier_verify_pem(v, leaf.data(), leaf.size(), nullptr));
  EXPECT_EQ(state->calls, 2);

  // Installed on an SSL_CTX, the verifier outlives the caller's handle.
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  ASSERT_NE(ctx, nullptr);
  Check(ambient_ssl_ctx_set_verifier(ctx, v));
  ambient_svid_verifier_free(v);
  EXPECT_EQ(freed, 0) << "the SSL_CTX still holds the verifier";
  SSL_CTX_free(ctx);
  EXPECT_EQ(freed, 1);
  ambient_trust_bundles_free(bundles);
  EXPECT_EQ(freed, 1);
}

TEST(CapiClockOwnedTest, ReplacedOrRefusedUserDataIsFreedAtOnce) {
  int freed = 0;
  ambient_verify_options* o = ambient_verify_options_new();
  ASSERT_NE(o, nullptr);
  ambient_verify_options_set_clock_owned(o, Now, new ClockState{1, 0, &freed}, FreeState);
  EXPECT_EQ(freed, 0);
  ambient_verify_options_set_clock_owned(o, Now, new ClockState{2, 0, &freed}, FreeState);
  EXPECT_EQ(freed, 1) << "the first clock was replaced and nothing else used it";
  ambient_verify_options_set_time(o, 5);
  EXPECT_EQ(freed, 2);
  ambient_verify_options_set_clock_owned(o, nullptr, new ClockState{3, 0, &freed}, FreeState);
  EXPECT_EQ(freed, 3) << "a NULL fn: the system clock, user_data freed at once";
  ambient_verify_options_set_clock_owned(nullptr, Now, new ClockState{4, 0, &freed}, FreeState);
  EXPECT_EQ(freed, 4) << "NULL options: user_data freed at once";
  ambient_verify_options_set_clock_owned(o, Now, new ClockState{5, 0, &freed}, FreeState);
  ambient_verify_options_free(o);
  EXPECT_EQ(freed, 5);
  // No free function: nothing is called, nothing crashes.
  ClockState on_stack{6, 0, &freed};
  o = ambient_verify_options_new();
  ASSERT_NE(o, nullptr);
  ambient_verify_options_set_clock_owned(o, Now, &on_stack, nullptr);
  ambient_verify_options_free(o);
  EXPECT_EQ(freed, 5);
}

}  // namespace
