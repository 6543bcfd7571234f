// The verifier and credentials installed on real BoringSSL SSL_CTXs: TLS 1.3
// mTLS handshakes over an in-memory BIO pair, no sockets.
#include "ambient/identity/tls.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "support/test_pki.h"

namespace ambient::identity::testing {
namespace {

using ::ambient::test_support::CaSpec;
using ::ambient::test_support::CertSpec;
using ::ambient::test_support::Issue;
using ::ambient::test_support::Issued;
using ::ambient::test_support::kNow;
using ::ambient::test_support::LeafSpec;
using ::ambient::test_support::PeerLeafDer;
using ::ambient::test_support::ToDer;

constexpr char kClusterTd[] = "cluster.local";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";
constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";

std::shared_ptr<const Credentials> CredsFor(const Issued& leaf) {
  auto c = Credentials::FromPem(leaf.CertPem(), leaf.KeyPem());
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

tls::UniquePtr<SSL_CTX> NewCtx() {
  tls::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION);
  return ctx;
}

struct Result {
  bool client_ok = false;
  bool server_ok = false;
};

// HandshakeStep advances one side's handshake unless it already finished or
// failed; waiting for the peer's bytes is neither.
void HandshakeStep(SSL* ssl, bool* ok, bool* failed) {
  if (*ok || *failed) return;
  int ret = SSL_do_handshake(ssl);
  if (ret == 1) {
    *ok = true;
  } else if (SSL_get_error(ssl, ret) != SSL_ERROR_WANT_READ) {
    *failed = true;
  }
}

// Runs a handshake between `client` and `server` over a BIO pair.
Result Handshake(SSL* client, SSL* server) {
  BIO* c = nullptr;
  BIO* s = nullptr;
  EXPECT_EQ(BIO_new_bio_pair(&c, 0, &s, 0), 1);
  SSL_set_bio(client, c, c);
  SSL_set_bio(server, s, s);
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  Result r;
  bool client_failed = false;
  bool server_failed = false;
  for (int i = 0; i < 50 && !(r.client_ok && r.server_ok) && !(client_failed || server_failed);
       ++i) {
    HandshakeStep(client, &r.client_ok, &client_failed);
    HandshakeStep(server, &r.server_ok, &server_failed);
  }
  // A failure on one side shows up as an alert on the other: pump once more.
  if (r.client_ok && !r.server_ok) SSL_do_handshake(server);
  ERR_clear_error();
  return r;
}

// In TLS 1.3 the client finishes before the server has checked the client
// certificate; the server's verdict reaches the client on its first read.
bool ClientSeesServerAccept(SSL* client, SSL* server) {
  const char msg[] = "ping";
  if (SSL_write(server, msg, sizeof msg) != static_cast<int>(sizeof msg)) return false;
  char buf[16];
  return SSL_read(client, buf, sizeof buf) == static_cast<int>(sizeof msg);
}

class TlsTest : public ::testing::Test {
 protected:
  TlsTest()
      : ca_(Issue(CaSpec(kClusterTd))),
        server_leaf_(Issue(LeafSpec(kServerId), &ca_)),
        client_leaf_(Issue(LeafSpec(kClientId), &ca_)) {
    bundles_ = std::make_shared<TrustBundleSource>(*TrustBundleSet::Create(
        {*TrustBundle::FromPem(*TrustDomain::Parse(kClusterTd), ca_.CertPem())}));
    server_creds_ = std::make_shared<CredentialHolder>(CredsFor(server_leaf_));
    client_creds_ = std::make_shared<CredentialHolder>(CredsFor(client_leaf_));
    server_ctx_ = NewCtx();
    client_ctx_ = NewCtx();
    EXPECT_TRUE(InstallCredentials(server_ctx_.get(), server_creds_).ok());
    EXPECT_TRUE(InstallCredentials(client_ctx_.get(), client_creds_).ok());
    EXPECT_TRUE(InstallServerVerifier(server_ctx_.get(), bundles_, *TrustDomain::Parse(kClusterTd),
                                      [] { return kNow; })
                    .ok());
  }

  void ExpectClient(std::vector<std::string> ids) {
    std::vector<SpiffeId> expected;
    for (const auto& id : ids) expected.push_back(*SpiffeId::Parse(id));
    ASSERT_TRUE(InstallClientVerifier(client_ctx_.get(), bundles_, expected, [] { return kNow; })
                    .ok());
  }

  Issued ca_;
  Issued server_leaf_;
  Issued client_leaf_;
  std::shared_ptr<TrustBundleSource> bundles_;
  std::shared_ptr<CredentialHolder> server_creds_;
  std::shared_ptr<CredentialHolder> client_creds_;
  tls::UniquePtr<SSL_CTX> server_ctx_;
  tls::UniquePtr<SSL_CTX> client_ctx_;
};

TEST_F(TlsTest, MutualTlsGivesBothSidesThePeerIdentity) {
  ExpectClient({kServerId});
  tls::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  ASSERT_TRUE(r.client_ok && r.server_ok);
  ASSERT_NE(PeerIdentity(client.get()), nullptr);
  ASSERT_NE(PeerIdentity(server.get()), nullptr);
  EXPECT_EQ(PeerIdentity(client.get())->str(), kServerId);
  EXPECT_EQ(PeerIdentity(server.get())->str(), kClientId);
  EXPECT_TRUE(VerifyFailure(client.get()).ok());
  EXPECT_EQ(SSL_version(client.get()), TLS1_3_VERSION);
}

TEST_F(TlsTest, ClientRejectsServerWithUnexpectedIdentity) {
  ExpectClient({"spiffe://cluster.local/ns/default/sa/somebody-else"});
  tls::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  EXPECT_FALSE(r.client_ok);
  EXPECT_FALSE(r.server_ok);
  EXPECT_EQ(PeerIdentity(client.get()), nullptr);
  EXPECT_EQ(DetailOf(VerifyFailure(client.get())),
            static_cast<int>(SvidError::kUnexpectedIdentity));
}

TEST_F(TlsTest, PerConnectionVerifierOverridesTheContext) {
  ExpectClient({"spiffe://cluster.local/ns/default/sa/somebody-else"});
  tls::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  ASSERT_TRUE(InstallClientVerifier(client.get(), bundles_, {*SpiffeId::Parse(kServerId)},
                                    [] { return kNow; })
                  .ok());
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  EXPECT_TRUE(r.client_ok && r.server_ok);
}

TEST_F(TlsTest, ServerRejectsClientFromAnotherTrustDomain) {
  ExpectClient({kServerId});
  // A client with a valid SVID of other.org, whose bundle the server has.
  Issued other_ca = Issue(CaSpec("other.org", 5));
  bundles_->Update(*TrustBundle::FromPem(*TrustDomain::Parse("other.org"), other_ca.CertPem()));
  Issued other_leaf = Issue(LeafSpec("spiffe://other.org/ns/default/sa/client"), &other_ca);
  client_creds_->Set(CredsFor(other_leaf));
  tls::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  EXPECT_FALSE(r.server_ok);
  EXPECT_FALSE(r.client_ok && ClientSeesServerAccept(client.get(), server.get()));
  EXPECT_EQ(PeerIdentity(server.get()), nullptr);
  EXPECT_EQ(DetailOf(VerifyFailure(server.get())),
            static_cast<int>(SvidError::kTrustDomainNotAllowed));
}

TEST_F(TlsTest, ServerRequiresAClientCertificate) {
  ExpectClient({kServerId});
  tls::UniquePtr<SSL_CTX> bare = NewCtx();
  ASSERT_TRUE(InstallClientVerifier(bare.get(), bundles_, {*SpiffeId::Parse(kServerId)},
                                    [] { return kNow; })
                  .ok());
  tls::UniquePtr<SSL> client(SSL_new(bare.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  EXPECT_FALSE(r.server_ok);
  EXPECT_EQ(PeerIdentity(server.get()), nullptr);
}

TEST_F(TlsTest, RotationChangesNewHandshakesOnly) {
  ExpectClient({kServerId});
  tls::UniquePtr<SSL> client1(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server1(SSL_new(server_ctx_.get()));
  ASSERT_TRUE(Handshake(client1.get(), server1.get()).server_ok);
  ASSERT_TRUE(ClientSeesServerAccept(client1.get(), server1.get()));

  // Rotate the server to a new certificate (a new key, same identity).
  CertSpec spec = LeafSpec(kServerId, 777);
  Issued rotated = Issue(spec, &ca_);
  server_creds_->Set(CredsFor(rotated));

  tls::UniquePtr<SSL> client2(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server2(SSL_new(server_ctx_.get()));
  ASSERT_TRUE(Handshake(client2.get(), server2.get()).client_ok);
  ASSERT_FALSE(PeerLeafDer(client2.get()).empty());
  EXPECT_EQ(PeerLeafDer(client2.get()), ToDer(rotated.cert.get()));
  // The first connection still works on its old keys.
  ASSERT_TRUE(ClientSeesServerAccept(client1.get(), server1.get()));
  EXPECT_EQ(PeerLeafDer(client1.get()), ToDer(server_leaf_.cert.get()));
}

TEST_F(TlsTest, EmptyCredentialHolderFailsTheHandshake) {
  ExpectClient({kServerId});
  server_creds_->Set(nullptr);
  tls::UniquePtr<SSL> client(SSL_new(client_ctx_.get()));
  tls::UniquePtr<SSL> server(SSL_new(server_ctx_.get()));
  Result r = Handshake(client.get(), server.get());
  EXPECT_FALSE(r.server_ok);
  EXPECT_FALSE(r.client_ok);
}

TEST_F(TlsTest, BadArguments) {
  EXPECT_FALSE(InstallVerifier(static_cast<SSL_CTX*>(nullptr), nullptr).ok());
  EXPECT_FALSE(InstallCredentials(nullptr, server_creds_).ok());
  EXPECT_FALSE(InstallClientVerifier(client_ctx_.get(), bundles_, {}).ok());
  EXPECT_EQ(PeerIdentity(nullptr), nullptr);
}

}  // namespace
}  // namespace ambient::identity::testing
