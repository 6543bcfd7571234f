// HBONE connections whose TLS comes from ambient's identity layer
// (credentials + trust bundles + SPIFFE verifier), paired in memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>

#include "ambient/hbone/connection.h"
#include "ambient/hbone/tls_context.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/trust_bundle.h"
#include "hbone/test_pki.h"
#include "support/spiffe_ids.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using testing::TestCa;

constexpr char kCtxClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kCtxServerId[] = "spiffe://cluster.local/ns/default/sa/server";

class IdentityContextTest : public ::testing::Test {
 protected:
  std::shared_ptr<identity::CredentialHolder> Holder(const TestCa& ca, const std::string& id) {
    testing::KeyAndCert leaf = ca.Leaf(id);
    auto creds = identity::Credentials::FromPem(TestCa::CertPem(leaf), TestCa::KeyPem(leaf));
    EXPECT_TRUE(creds.ok()) << creds.status();
    return std::make_shared<identity::CredentialHolder>(*creds);
  }

  std::shared_ptr<identity::TrustBundleSource> Bundles(const TestCa& ca) {
    auto td = identity::TrustDomain::Parse("cluster.local");
    auto bundle = identity::TrustBundle::FromPem(*td, ca.CaPem());
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    auto set = identity::TrustBundleSet::Create({*bundle});
    return std::make_shared<identity::TrustBundleSource>(*set);
  }

  // Runs a handshake between fresh connections; returns the events.
  void Run(SSL_CTX* cctx, SSL_CTX* sctx, std::vector<std::string> expected) {
    ConnectionOptions c;
    c.role = Role::kClient;
    c.ssl_ctx = cctx;
    c.expected_identities = test_support::Ids(expected);
    c.bundles = bundles_;
    ConnectionOptions s;
    s.role = Role::kServer;
    s.ssl_ctx = sctx;
    auto client = Connection::New(std::move(c));
    auto server = Connection::New(std::move(s));
    ASSERT_TRUE(client.ok()) << client.status();
    ASSERT_TRUE(server.ok()) << server.status();
    client_ = std::move(*client);
    server_ = std::move(*server);
    client_->Start(absl::UnixEpoch());
    server_->Start(absl::UnixEpoch());
    Flush();
  }

  void Flush() {
    for (int i = 0; i < 1000; ++i) {
      bool moved = false;
      for (auto [from, to] :
           {std::pair{client_.get(), server_.get()}, std::pair{server_.get(), client_.get()}}) {
        auto out = from->PendingOutput();
        if (out.empty()) continue;
        size_t n = out.size();
        (void)to->Receive(out, absl::UnixEpoch());
        from->ConsumeOutput(n);
        moved = true;
      }
      Event ev;
      while (client_->PollEvent(&ev)) client_events_.push_back(ev);
      while (server_->PollEvent(&ev)) server_events_.push_back(ev);
      if (!moved) break;
    }
  }

  const Event* Find(const std::vector<Event>& evs, Event::Type t) {
    for (const Event& e : evs) {
      if (e.type == t) return &e;
    }
    return nullptr;
  }

  TestCa ca_;
  std::shared_ptr<identity::TrustBundleSource> bundles_ = Bundles(ca_);
  std::unique_ptr<Connection> client_;
  std::unique_ptr<Connection> server_;
  std::vector<Event> client_events_;
  std::vector<Event> server_events_;
};

TEST_F(IdentityContextTest, TunnelWorksAndIdentitiesAreVerified) {
  auto sctx = NewServerContext(Holder(ca_, kCtxServerId), bundles_);
  auto cctx = NewClientContext(Holder(ca_, kCtxClientId), bundles_);
  ASSERT_TRUE(sctx.ok()) << sctx.status();
  ASSERT_TRUE(cctx.ok()) << cctx.status();
  Run(cctx->get(), sctx->get(), {kCtxServerId});
  ASSERT_TRUE(client_->IsEstablished());
  ASSERT_TRUE(server_->IsEstablished());
  EXPECT_EQ(client_->PeerIdentity().value().str(), kCtxServerId);
  EXPECT_EQ(server_->PeerIdentity().value().str(), kCtxClientId);
  ConnectRequest req;
  req.authority = "198.18.0.2:8080";
  auto id = client_->OpenStream(req);
  ASSERT_TRUE(id.ok());
  Flush();
  const Event* r = Find(server_events_, Event::Type::kStreamRequest);
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(server_->AcceptStream(r->stream).ok());
  Flush();
  const Event* resp = Find(client_events_, Event::Type::kStreamResponse);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->http_status, 200);
}

TEST_F(IdentityContextTest, UnexpectedServerIdentityIsRejectedDuringHandshake) {
  auto sctx = NewServerContext(Holder(ca_, kCtxServerId), bundles_);
  auto cctx = NewClientContext(Holder(ca_, kCtxClientId), bundles_);
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  Run(cctx->get(), sctx->get(), {"spiffe://cluster.local/ns/prod/sa/db"});
  EXPECT_TRUE(client_->IsClosed());
  EXPECT_TRUE(server_->IsClosed());
  const Event* closed = Find(client_events_, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kPermissionDenied) << closed->status;
  EXPECT_THAT(std::string(closed->status.message()), HasSubstr("TLS handshake failed"));
}

TEST_F(IdentityContextTest, ServerFromAnotherCaIsRejected) {
  TestCa rogue;
  auto sctx = NewServerContext(Holder(rogue, kCtxServerId), Bundles(rogue));
  auto cctx = NewClientContext(Holder(ca_, kCtxClientId), bundles_);
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  Run(cctx->get(), sctx->get(), {kCtxServerId});
  EXPECT_TRUE(client_->IsClosed());
  const Event* closed = Find(client_events_, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kUnauthenticated) << closed->status;
}

TEST_F(IdentityContextTest, ClientOfAnotherTrustDomainIsRejectedByServer) {
  auto sctx = NewServerContext(Holder(ca_, kCtxServerId), bundles_);
  auto cctx = NewClientContext(Holder(ca_, "spiffe://evil.example/ns/x/sa/y"), bundles_);
  ASSERT_TRUE(sctx.ok() && cctx.ok());
  Run(cctx->get(), sctx->get(), {kCtxServerId});
  EXPECT_TRUE(server_->IsClosed());
  EXPECT_EQ(Find(server_events_, Event::Type::kHandshakeDone), nullptr);
  const Event* closed = Find(server_events_, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_FALSE(closed->status.ok());
}

TEST_F(IdentityContextTest, MissingPiecesAreClearErrors) {
  EXPECT_EQ(NewServerContext(nullptr, bundles_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      NewClientContext(std::make_shared<identity::CredentialHolder>(), bundles_).status().code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(IdentityContextTest, ContextsFromPemHandshakeAndNameTheirIdentity) {
  testing::KeyAndCert sleaf = ca_.Leaf(kCtxServerId);
  testing::KeyAndCert cleaf = ca_.Leaf(kCtxClientId);
  auto server =
      NewContextFromPem(Role::kServer, TestCa::CertPem(sleaf), TestCa::KeyPem(sleaf), ca_.CaPem());
  auto client =
      NewContextFromPem(Role::kClient, TestCa::CertPem(cleaf), TestCa::KeyPem(cleaf), ca_.CaPem());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(server->credentials->id().str(), kCtxServerId);
  EXPECT_EQ(client->credentials->id().str(), kCtxClientId);
  ASSERT_NE(client->bundles, nullptr);
  bundles_ = client->bundles;
  Run(client->ctx.get(), server->ctx.get(), {kCtxServerId});
  ASSERT_TRUE(client_->IsEstablished());
  ASSERT_TRUE(server_->IsEstablished());
  EXPECT_EQ(client_->PeerIdentity().value().str(), kCtxServerId);
  EXPECT_EQ(server_->PeerIdentity().value().str(), kCtxClientId);
}

TEST_F(IdentityContextTest, ContextFromPemTrustsOnlyTheGivenBundle) {
  TestCa other;
  testing::KeyAndCert sleaf = ca_.Leaf(kCtxServerId);
  testing::KeyAndCert cleaf = ca_.Leaf(kCtxClientId);
  auto server =
      NewContextFromPem(Role::kServer, TestCa::CertPem(sleaf), TestCa::KeyPem(sleaf), ca_.CaPem());
  auto client = NewContextFromPem(Role::kClient, TestCa::CertPem(cleaf), TestCa::KeyPem(cleaf),
                                  other.CaPem());
  ASSERT_TRUE(server.ok() && client.ok());
  bundles_ = client->bundles;
  Run(client->ctx.get(), server->ctx.get(), {kCtxServerId});
  EXPECT_TRUE(client_->IsClosed());
  EXPECT_FALSE(client_->IsEstablished());
}

TEST_F(IdentityContextTest, ContextFromPemErrorsNameThePart) {
  testing::KeyAndCert leaf = ca_.Leaf(kCtxServerId);
  testing::KeyAndCert stranger = ca_.Leaf(kCtxClientId);
  auto bad_key = NewContextFromPem(Role::kServer, TestCa::CertPem(leaf), "not a key", ca_.CaPem());
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_key.status().message()), ::testing::StartsWith("credentials"));
  auto mismatched = NewContextFromPem(Role::kServer, TestCa::CertPem(leaf),
                                      TestCa::KeyPem(stranger), ca_.CaPem());
  EXPECT_FALSE(mismatched.ok());
  EXPECT_THAT(std::string(mismatched.status().message()), ::testing::StartsWith("credentials"));
  auto bad_bundle = NewContextFromPem(Role::kClient, TestCa::CertPem(leaf), TestCa::KeyPem(leaf),
                                      "-----BEGIN CERTIFICATE-----\ngarbage\n");
  EXPECT_EQ(bad_bundle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_bundle.status().message()), ::testing::StartsWith("trust bundle: "));
  auto bad_json = NewContextFromPem(Role::kClient, TestCa::CertPem(leaf), TestCa::KeyPem(leaf),
                                    "  {\"keys\": 7}");
  EXPECT_EQ(bad_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad_json.status().message()), ::testing::StartsWith("trust bundle: "));
}

TEST_F(IdentityContextTest, ContextFromFilesReadsThemAndNamesMissingOnes) {
  char dir_template[] = "/tmp/ambient-tls-context-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  std::string dir = dir_template;
  testing::KeyAndCert leaf = ca_.Leaf(kCtxServerId);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  std::string cert = write("cert.pem", TestCa::CertPem(leaf));
  std::string key = write("key.pem", TestCa::KeyPem(leaf));
  std::string bundle = write("bundle.pem", ca_.CaPem());
  auto made = NewContextFromFiles(Role::kServer, cert, key, bundle);
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->credentials->id().str(), kCtxServerId);
  auto missing = NewContextFromFiles(Role::kServer, dir + "/absent.pem", key, bundle);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("certificate file"));
  auto missing_bundle = NewContextFromFiles(Role::kServer, cert, key, dir + "/absent.pem");
  EXPECT_EQ(missing_bundle.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing_bundle.status().message()), HasSubstr("bundle file"));
  for (const std::string& f : {cert, key, bundle}) unlink(f.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace ambient::hbone
