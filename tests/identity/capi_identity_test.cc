// The identity C ABI (ambient/c/identity.h) through libambient.so: error
// objects with details, ownership, bundles, verification and a TLS 1.3
// handshake on plain BoringSSL SSL_CTXs configured only through the C ABI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>
#include <string>

#include "ambient/ambient.h"
#include "ambient/base/tls.h"
#include "support/test_pki.h"

namespace ambient::identity::testing {
namespace {

using ::ambient::test_support::CaSpec;
using ::ambient::test_support::Issue;
using ::ambient::test_support::Issued;
using ::ambient::test_support::LeafSpec;
using ::ambient::test_support::ToDer;
using ::ambient::test_support::kDay;
using ::ambient::test_support::kNow;

using ::testing::HasSubstr;

struct ErrorDeleter {
  void operator()(ambient_error* e) const { ambient_error_free(e); }
};
using Error = std::unique_ptr<ambient_error, ErrorDeleter>;

#define ASSERT_OK(expr)                                                  \
  do {                                                                   \
    Error _e(expr);                                                      \
    ASSERT_EQ(_e, nullptr) << ambient_error_message(_e.get());           \
  } while (0)

TEST(CapiSpiffeId, ParseAndGetters) {
  const char* text = "spiffe://example.org/ns/a/sa/b";
  ambient_spiffe_id* id = nullptr;
  ASSERT_OK(ambient_spiffe_id_parse(text, std::strlen(text), &id));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(id), text);
  EXPECT_STREQ(ambient_spiffe_id_get0_trust_domain(id), "example.org");
  EXPECT_STREQ(ambient_spiffe_id_get0_path(id), "/ns/a/sa/b");
  ambient_spiffe_id_free(id);
  ambient_spiffe_id_free(nullptr);
}

TEST(CapiSpiffeId, ErrorsCarryCodeDetailAndMessage) {
  ambient_spiffe_id* id = reinterpret_cast<ambient_spiffe_id*>(0x1);
  Error err(ambient_spiffe_id_parse("spiffe://td/a/../b", 18, &id));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(id, nullptr);
  EXPECT_EQ(ambient_error_code(err.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_error_detail(err.get()), AMBIENT_SPIFFE_ID_DOT_SEGMENT);
  EXPECT_THAT(ambient_error_message(err.get()), HasSubstr("dot segments"));
  Error null_out(ambient_spiffe_id_parse("spiffe://td", 11, nullptr));
  EXPECT_EQ(ambient_error_code(null_out.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  Error null_in(ambient_spiffe_id_parse(nullptr, 5, &id));
  EXPECT_EQ(ambient_error_code(null_in.get()), AMBIENT_ERR_INVALID_ARGUMENT);
}

TEST(CapiSpiffeId, ValidateIsAHotPathCall) {
  ambient_spiffe_id_error reason = AMBIENT_SPIFFE_ID_OK;
  EXPECT_EQ(ambient_spiffe_id_validate("spiffe://td/p", 13, &reason), 0);
  EXPECT_EQ(reason, AMBIENT_SPIFFE_ID_OK);
  EXPECT_EQ(ambient_spiffe_id_validate("spiffe://td/p/", 14, &reason), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(reason, AMBIENT_SPIFFE_ID_TRAILING_SLASH);
  EXPECT_EQ(ambient_spiffe_id_validate(nullptr, 0, nullptr), AMBIENT_ERR_INVALID_ARGUMENT);
}

TEST(CapiIstioIdentity, Parse) {
  const char* text = "spiffe://cluster.local/ns/default/sa/app";
  ambient_istio_identity* id = nullptr;
  ASSERT_OK(ambient_istio_identity_parse(text, std::strlen(text), &id));
  EXPECT_STREQ(ambient_istio_identity_get0_trust_domain(id), "cluster.local");
  EXPECT_STREQ(ambient_istio_identity_get0_namespace(id), "default");
  EXPECT_STREQ(ambient_istio_identity_get0_service_account(id), "app");
  ambient_istio_identity_free(id);
  Error err(ambient_istio_identity_parse("spiffe://td/x", 13, &id));
  EXPECT_NE(err, nullptr);
  EXPECT_EQ(id, nullptr);
}

class CapiVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = Issue(CaSpec("cluster.local"));
    server_ = Issue(LeafSpec(kServer), &ca_);
    client_ = Issue(LeafSpec(kClient), &ca_);
    ASSERT_OK(ambient_trust_bundles_new(&bundles_));
    std::string pem = ca_.CertPem();
    ASSERT_OK(ambient_trust_bundles_set_pem(bundles_, "cluster.local", pem.data(), pem.size()));
  }
  void TearDown() override { ambient_trust_bundles_free(bundles_); }

  ambient_svid_verifier* NewVerifier(const char* expect, const char* td) {
    ambient_verify_options* o = ambient_verify_options_new();
    EXPECT_NE(o, nullptr);
    if (expect != nullptr) {
      EXPECT_EQ(Error(ambient_verify_options_add_expected_id(o, expect, std::strlen(expect))), nullptr);
    }
    if (td != nullptr) {
      EXPECT_EQ(Error(ambient_verify_options_add_trust_domain(o, td)), nullptr);
    }
    ambient_verify_options_set_time(o, kNow);
    ambient_svid_verifier* v = nullptr;
    EXPECT_EQ(Error(ambient_svid_verifier_new(bundles_, o, &v)), nullptr);
    ambient_verify_options_free(o);
    return v;
  }

  static constexpr char kServer[] = "spiffe://cluster.local/ns/default/sa/server";
  static constexpr char kClient[] = "spiffe://cluster.local/ns/default/sa/client";
  Issued ca_, server_, client_;
  ambient_trust_bundles* bundles_ = nullptr;
};

TEST_F(CapiVerifyTest, VerifyPemAndDerWithDetails) {
  ambient_svid_verifier* v = NewVerifier(kServer, nullptr);
  std::string pem = server_.CertPem();
  ambient_spiffe_id* peer = nullptr;
  ASSERT_OK(ambient_svid_verifier_verify_pem(v, pem.data(), pem.size(), &peer));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(peer), kServer);
  ambient_spiffe_id_free(peer);

  std::string der = ambient::identity::testing::ToDer(client_.cert.get());
  const uint8_t* certs[] = {reinterpret_cast<const uint8_t*>(der.data())};
  size_t lens[] = {der.size()};
  Error err(ambient_svid_verifier_verify_der(v, certs, lens, 1, &peer));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(peer, nullptr);
  EXPECT_EQ(ambient_error_code(err.get()), AMBIENT_ERR_PERMISSION_DENIED);
  EXPECT_EQ(ambient_error_detail(err.get()), AMBIENT_SVID_UNEXPECTED_IDENTITY);

  // The verifier keeps the bundles alive and sees updates to them.
  ASSERT_OK(ambient_trust_bundles_remove(bundles_, "cluster.local"));
  EXPECT_EQ(ambient_trust_bundles_count(bundles_), 0u);
  Error gone(ambient_svid_verifier_verify_pem(v, pem.data(), pem.size(), nullptr));
  EXPECT_EQ(ambient_error_detail(gone.get()), AMBIENT_SVID_NO_BUNDLE);
  Error again(ambient_trust_bundles_remove(bundles_, "cluster.local"));
  EXPECT_EQ(ambient_error_code(again.get()), AMBIENT_ERR_NOT_FOUND);
  ambient_svid_verifier_free(v);
}

TEST_F(CapiVerifyTest, BundleUpdatesLeaveStateUnchangedOnError) {
  Error bad(ambient_trust_bundles_set_spiffe_json(bundles_, "cluster.local", "{", 1));
  EXPECT_EQ(ambient_error_code(bad.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  const char* dup_map = R"({"trust_domains":{"a.org":{"keys":[]},"a.org":{"keys":[]}}})";
  Error dup(ambient_trust_bundles_set_bundle_map_json(bundles_, dup_map, std::strlen(dup_map)));
  EXPECT_EQ(ambient_error_code(dup.get()), AMBIENT_ERR_ALREADY_EXISTS);
  Error bad_td(ambient_trust_bundles_set_pem(bundles_, "Bad TD", "x", 1));
  EXPECT_EQ(ambient_error_detail(bad_td.get()), AMBIENT_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR);
  EXPECT_EQ(ambient_trust_bundles_count(bundles_), 1u);
  ambient_svid_verifier* v = NewVerifier(nullptr, nullptr);
  std::string pem = server_.CertPem();
  ASSERT_OK(ambient_svid_verifier_verify_pem(v, pem.data(), pem.size(), nullptr));
  ambient_svid_verifier_free(v);
}

TEST_F(CapiVerifyTest, CredentialsExposeIdAndTimes) {
  std::string chain = client_.CertPem();
  std::string key = client_.KeyPem();
  ambient_credentials* c = nullptr;
  ASSERT_OK(ambient_credentials_new_pem(chain.data(), chain.size(), key.data(), key.size(), &c));
  ambient_spiffe_id* id = nullptr;
  ASSERT_OK(ambient_credentials_get1_id(c, &id));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(id), kClient);
  ambient_spiffe_id_free(id);
  int64_t nb = ambient_credentials_not_before(c);
  int64_t na = ambient_credentials_not_after(c);
  EXPECT_EQ(nb, kNow - ambient::identity::testing::kDay);
  EXPECT_EQ(na, kNow + ambient::identity::testing::kDay);
  EXPECT_EQ(ambient_credentials_refresh_at(c), kNow);
  // A mismatched rotation is refused and leaves the old pair in place.
  std::string other_key = server_.KeyPem();
  Error err(ambient_credentials_rotate_pem(c, chain.data(), chain.size(), other_key.data(),
                                           other_key.size()));
  EXPECT_EQ(ambient_error_code(err.get()), AMBIENT_ERR_INVALID_ARGUMENT);
  ASSERT_OK(ambient_credentials_get1_id(c, &id));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(id), kClient);
  ambient_spiffe_id_free(id);
  ambient_credentials_free(c);
}

bool Handshake(SSL* client, SSL* server) {
  BIO* c = nullptr;
  BIO* s = nullptr;
  BIO_new_bio_pair(&c, 0, &s, 0);
  SSL_set_bio(client, c, c);
  SSL_set_bio(server, s, s);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  bool cdone = false, sdone = false;
  for (int i = 0; i < 20 && !(cdone && sdone); ++i) {
    if (!cdone) {
      int r = SSL_do_handshake(client);
      if (r == 1) cdone = true;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) break;
    }
    if (!sdone) {
      int r = SSL_do_handshake(server);
      if (r == 1) sdone = true;
      else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) break;
    }
  }
  ERR_clear_error();
  return cdone && sdone;
}

TEST_F(CapiVerifyTest, TlsThroughTheCAbi) {
  tls::UniquePtr<SSL_CTX> server_ctx(SSL_CTX_new(TLS_method()));
  tls::UniquePtr<SSL_CTX> client_ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_min_proto_version(server_ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_min_proto_version(client_ctx.get(), TLS1_3_VERSION);
  ambient_credentials* sc = nullptr;
  ambient_credentials* cc = nullptr;
  std::string s_chain = server_.CertPem(), s_key = server_.KeyPem();
  std::string c_chain = client_.CertPem(), c_key = client_.KeyPem();
  ASSERT_OK(ambient_credentials_new_pem(s_chain.data(), s_chain.size(), s_key.data(), s_key.size(), &sc));
  ASSERT_OK(ambient_credentials_new_pem(c_chain.data(), c_chain.size(), c_key.data(), c_key.size(), &cc));
  ASSERT_OK(ambient_ssl_ctx_use_credentials(server_ctx.get(), sc));
  ASSERT_OK(ambient_ssl_ctx_use_credentials(client_ctx.get(), cc));
  ambient_svid_verifier* server_v = NewVerifier(nullptr, "cluster.local");
  ambient_svid_verifier* client_v = NewVerifier(kServer, nullptr);
  ASSERT_OK(ambient_ssl_ctx_set_verifier(server_ctx.get(), server_v));
  ASSERT_OK(ambient_ssl_ctx_set_verifier(client_ctx.get(), client_v));
  // The contexts keep what they use: free our handles now.
  ambient_svid_verifier_free(server_v);
  ambient_svid_verifier_free(client_v);
  ambient_credentials_free(sc);
  ambient_credentials_free(cc);

  tls::UniquePtr<SSL> client(SSL_new(client_ctx.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx.get()));
  ASSERT_TRUE(Handshake(client.get(), server.get()));
  ambient_spiffe_id* peer = nullptr;
  ASSERT_OK(ambient_ssl_get1_peer_id(server.get(), &peer));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(peer), kClient);
  ambient_spiffe_id_free(peer);
  ASSERT_OK(ambient_ssl_get1_peer_id(client.get(), &peer));
  EXPECT_STREQ(ambient_spiffe_id_get0_string(peer), kServer);
  ambient_spiffe_id_free(peer);
  EXPECT_EQ(ambient_ssl_get1_verify_error(client.get()), nullptr);

  // A per-connection verifier expecting someone else makes it fail.
  ambient_svid_verifier* wrong = NewVerifier("spiffe://cluster.local/ns/x/sa/y", nullptr);
  tls::UniquePtr<SSL> client2(SSL_new(client_ctx.get()));
  ASSERT_OK(ambient_ssl_set_verifier(client2.get(), wrong));
  ambient_svid_verifier_free(wrong);
  tls::UniquePtr<SSL> server2(SSL_new(server_ctx.get()));
  EXPECT_FALSE(Handshake(client2.get(), server2.get()));
  Error why(ambient_ssl_get1_verify_error(client2.get()));
  EXPECT_EQ(ambient_error_detail(why.get()), AMBIENT_SVID_UNEXPECTED_IDENTITY);
  Error none(ambient_ssl_get1_peer_id(client2.get(), &peer));
  EXPECT_EQ(ambient_error_code(none.get()), AMBIENT_ERR_NOT_FOUND);
}

}  // namespace
}  // namespace ambient::identity::testing
