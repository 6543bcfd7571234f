// The C ABI of the sans-IO core and the runtime, used as a C host would.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ambient/ambient.h"
#include "hbone/test_pki.h"

namespace {

using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

ambient_hbone_tls* Tls(const TestCa& ca, ambient_hbone_role role, const char* id) {
  KeyAndCert leaf = ca.Leaf(id);
  std::string cert = TestCa::CertPem(leaf);
  std::string key = TestCa::KeyPem(leaf);
  std::string bundle = ca.CaPem();
  ambient_hbone_tls_options* o = ambient_hbone_tls_options_new();
  EXPECT_NE(o, nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_cert_chain_pem(o, cert.data(), cert.size()), nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_private_key_pem(o, key.data(), key.size()), nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_trust_bundle(o, bundle.data(), bundle.size()), nullptr);
  ambient_hbone_tls* tls = nullptr;
  ambient_error* err = ambient_hbone_tls_new(role, o, &tls);
  ambient_hbone_tls_options_free(o);  // the TLS side keeps what it needs
  EXPECT_EQ(err, nullptr) << ambient_error_message(err);
  ambient_error_free(err);
  return tls;
}

void Move(ambient_hbone_conn* from, ambient_hbone_conn* to) {
  for (int i = 0; i < 100; ++i) {
    bool moved = false;
    for (auto [a, b] : {std::pair{from, to}, std::pair{to, from}}) {
      const uint8_t* data = nullptr;
      size_t len = 0;
      ASSERT_EQ(ambient_hbone_conn_pending_output(a, &data, &len), 0);
      if (len == 0) continue;
      ambient_hbone_conn_receive(b, data, len, 1000);
      ambient_hbone_conn_consume_output(a, len);
      moved = true;
    }
    if (!moved) return;
  }
}

TEST(CapiHboneTest, TunnelInMemoryThroughTheCAbi) {
  TestCa ca;
  ambient_hbone_tls* ctls = Tls(ca, AMBIENT_HBONE_CLIENT, kClientId);
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, kServerId);
  ASSERT_NE(ctls, nullptr);
  ASSERT_NE(stls, nullptr);
  EXPECT_STREQ(ambient_hbone_tls_get0_identity(ctls), kClientId);
  const char* expected[] = {kServerId};
  ambient_hbone_conn* c = nullptr;
  ambient_hbone_conn* s = nullptr;
  ASSERT_EQ(ambient_hbone_conn_new(ctls, expected, 1, &c), nullptr);
  ASSERT_EQ(ambient_hbone_conn_new(stls, nullptr, 0, &s), nullptr);
  ambient_hbone_tls_free(ctls);  // connections keep what they need
  ambient_hbone_tls_free(stls);
  ambient_hbone_conn_start(c, 1000);
  ambient_hbone_conn_start(s, 1000);
  Move(c, s);
  EXPECT_STREQ(ambient_hbone_conn_get0_peer_identity(c), kServerId);
  EXPECT_STREQ(ambient_hbone_conn_get0_peer_identity(s), kClientId);
  EXPECT_EQ(ambient_hbone_conn_next_deadline(c), 1000u + 10000000000u);
  ASSERT_EQ(ambient_hbone_conn_can_open_stream(c), 1);
  ambient_hbone_header h = {"baggage", 7, "k8s.namespace.name=default", 26};
  int32_t id = ambient_hbone_conn_open_stream(c, "198.18.0.9:80", &h, 1);
  ASSERT_GT(id, 0);
  EXPECT_EQ(ambient_hbone_conn_open_stream(c, "no-port", nullptr, 0), AMBIENT_ERR_INVALID_ARGUMENT);
  Move(c, s);
  ambient_hbone_event ev;
  int32_t sid = -1;
  while (ambient_hbone_conn_poll_event(s, &ev) == 1) {
    if (ev.type == AMBIENT_HBONE_EVENT_STREAM_REQUEST) {
      sid = ev.stream;
      EXPECT_EQ(std::string(ev.authority, ev.authority_len), "198.18.0.9:80");
      ASSERT_EQ(ev.n_headers, 1u);
      ambient_hbone_header got;
      ASSERT_EQ(ambient_hbone_conn_request_header(s, 0, &got), 0);
      EXPECT_EQ(std::string(got.name, got.name_len), "baggage");
      EXPECT_EQ(ambient_hbone_conn_request_header(s, 1, &got), AMBIENT_ERR_OUT_OF_RANGE);
    }
  }
  ASSERT_GT(sid, 0);
  ASSERT_EQ(ambient_hbone_conn_accept_stream(s, sid), 0);
  Move(c, s);
  int status = 0;
  while (ambient_hbone_conn_poll_event(c, &ev) == 1) {
    if (ev.type == AMBIENT_HBONE_EVENT_STREAM_RESPONSE) status = ev.http_status;
  }
  EXPECT_EQ(status, 200);
  ASSERT_EQ(ambient_hbone_stream_write(c, id, reinterpret_cast<const uint8_t*>("ping"), 4), 4);
  ASSERT_EQ(ambient_hbone_stream_shutdown_write(c, id), 0);
  Move(c, s);
  uint8_t buf[16];
  ASSERT_EQ(ambient_hbone_stream_read(s, sid, buf, sizeof(buf)), 4);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 4), "ping");
  EXPECT_EQ(ambient_hbone_stream_at_eof(s, sid), 1);
  EXPECT_EQ(ambient_hbone_stream_write(s, 9999, buf, 1), AMBIENT_ERR_NOT_FOUND);
  ambient_hbone_conn_free(c);
  ambient_hbone_conn_free(s);
}

TEST(CapiHboneTest, BadPemIsAClearError) {
  ambient_hbone_tls_options* o = ambient_hbone_tls_options_new();
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(ambient_hbone_tls_options_set_cert_chain_pem(o, "junk", 4), nullptr);
  ASSERT_EQ(ambient_hbone_tls_options_set_private_key_pem(o, "junk", 4), nullptr);
  ASSERT_EQ(ambient_hbone_tls_options_set_trust_bundle(o, "junk", 4), nullptr);
  ambient_hbone_tls* tls = nullptr;
  ambient_error* err = ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, o, &tls);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ambient_error_message(err)).find("credentials"), std::string::npos);
  EXPECT_EQ(tls, nullptr);
  ambient_error_free(err);
  ambient_hbone_tls_options_free(o);
  ambient_hbone_tls_options_free(nullptr);
  ambient_hbone_conn_free(nullptr);
  ambient_hbone_tls_free(nullptr);
  ambient_runtime_loop_free(nullptr);
}

// Code returns the code of `err` (AMBIENT_OK for NULL) and frees it.
int CodeOf(ambient_error* err) {
  int code = err == nullptr ? AMBIENT_OK : ambient_error_code(err);
  ambient_error_free(err);
  return code;
}

TEST(CapiHboneTest, TlsOptionsNameAMissingPartAndRefuseNull) {
  TestCa ca;
  KeyAndCert leaf = ca.Leaf(kServerId);
  std::string cert = TestCa::CertPem(leaf);
  std::string key = TestCa::KeyPem(leaf);
  std::string bundle = ca.CaPem();
  ambient_hbone_tls_options* o = ambient_hbone_tls_options_new();
  ASSERT_NE(o, nullptr);
  ambient_hbone_tls* tls = nullptr;
  EXPECT_EQ(CodeOf(ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, nullptr, &tls)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(ambient_hbone_tls_options_set_cert_chain_pem(nullptr, "x", 1)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(ambient_hbone_tls_options_set_private_key_pem(o, nullptr, 0)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(CodeOf(ambient_hbone_tls_options_set_trust_bundle(o, nullptr, 0)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  // Each part still missing is named, in order.
  auto missing = [&](const char* what) {
    ambient_error* err = ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, o, &tls);
    ASSERT_NE(err, nullptr) << what;
    EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(ambient_error_message(err)).find(what), std::string::npos)
        << ambient_error_message(err);
    ambient_error_free(err);
    EXPECT_EQ(tls, nullptr);
  };
  missing("certificate chain");
  ASSERT_EQ(ambient_hbone_tls_options_set_cert_chain_pem(o, cert.data(), cert.size()), nullptr);
  missing("private key");
  ASSERT_EQ(ambient_hbone_tls_options_set_private_key_pem(o, key.data(), key.size()), nullptr);
  missing("trust bundle");
  ASSERT_EQ(ambient_hbone_tls_options_set_trust_bundle(o, bundle.data(), bundle.size()), nullptr);
  EXPECT_EQ(CodeOf(ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, o, nullptr)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  ASSERT_EQ(CodeOf(ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, o, &tls)), AMBIENT_OK);
  EXPECT_STREQ(ambient_hbone_tls_get0_identity(tls), kServerId);
  ambient_hbone_tls_free(tls);
  // A later set replaces the part: a key of another leaf no longer matches the chain.
  std::string other_key = TestCa::KeyPem(ca.Leaf(kClientId));
  ASSERT_EQ(ambient_hbone_tls_options_set_private_key_pem(o, other_key.data(), other_key.size()),
            nullptr);
  tls = nullptr;
  EXPECT_EQ(CodeOf(ambient_hbone_tls_new(AMBIENT_HBONE_SERVER, o, &tls)),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(tls, nullptr);
  ambient_hbone_tls_options_free(o);
}

TEST(CapiHboneTest, ServerNeedsServerRole) {
  TestCa ca;
  ambient_hbone_tls* ctls = Tls(ca, AMBIENT_HBONE_CLIENT, kClientId);
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_server* server = nullptr;
  ambient_hbone_server_options* o = ambient_hbone_server_options_new();
  ASSERT_NE(o, nullptr);
  ASSERT_EQ(ambient_hbone_server_options_set_listen(o, "127.0.0.1:0"), nullptr);
  ambient_error* err = ambient_hbone_server_new(loop, ctls, o, &server);
  ambient_hbone_server_options_free(o);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  ambient_hbone_tls_free(ctls);
  ambient_runtime_loop_free(loop);
}

}  // namespace
