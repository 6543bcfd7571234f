// The sans-IO HBONE core, client and server paired in memory (no sockets, an
// injected clock).
#include "ambient/hbone/connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include <string>
#include <vector>

#include "ambient/base/tls.h"
#include "hbone/test_pki.h"
#include "support/spiffe_ids.h"

namespace ambient::hbone {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::KeyAndCert;
using testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

std::vector<uint8_t> Bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// A client and a server Connection wired back to back. Flush() moves bytes
// both ways until neither has anything left to say, collecting events.
class Pair {
 public:
  Pair(SSL_CTX* client_ctx, SSL_CTX* server_ctx, std::vector<std::string> expected = {kServerId},
       Settings client_settings = {}, Settings server_settings = {}) {
    ConnectionOptions c;
    c.role = Role::kClient;
    c.ssl_ctx = client_ctx;
    c.expected_identities = test_support::Ids(expected);
    c.settings = client_settings;
    ConnectionOptions s;
    s.role = Role::kServer;
    s.ssl_ctx = server_ctx;
    s.settings = server_settings;
    auto cc = Connection::New(std::move(c));
    auto sc = Connection::New(std::move(s));
    EXPECT_TRUE(cc.ok()) << cc.status();
    EXPECT_TRUE(sc.ok()) << sc.status();
    client = std::move(*cc);
    server = std::move(*sc);
    client->Start(now);
    server->Start(now);
  }

  // Moves bytes until quiet; `to_server` / `to_client` false drops that
  // direction (a stalled or vanished peer).
  void Flush(bool to_server = true, bool to_client = true) {
    for (int i = 0; i < 100000; ++i) {
      bool moved = false;
      moved |= Move(client.get(), server.get(), to_server, &server_status);
      moved |= Move(server.get(), client.get(), to_client, &client_status);
      Collect();
      if (!moved) break;
    }
  }

  void Collect() {
    Event ev;
    while (client->PollEvent(&ev)) client_events.push_back(std::move(ev));
    while (server->PollEvent(&ev)) server_events.push_back(std::move(ev));
  }

  static std::vector<Event::Type> Types(const std::vector<Event>& evs) {
    std::vector<Event::Type> out;
    for (const Event& e : evs) out.push_back(e.type);
    return out;
  }

  const Event* Find(const std::vector<Event>& evs, Event::Type t, StreamId id = -1) const {
    for (const Event& e : evs) {
      if (e.type == t && (id < 0 || e.stream == id)) return &e;
    }
    return nullptr;
  }

  // Handshake and return true when both sides report it done.
  bool Establish() {
    Flush();
    return Find(client_events, Event::Type::kHandshakeDone) != nullptr &&
           Find(server_events, Event::Type::kHandshakeDone) != nullptr;
  }

  // Client opens a stream and the server accepts it; returns {client, server} ids.
  std::pair<StreamId, StreamId> OpenAccepted(const std::string& authority = "10.0.0.1:8080") {
    ConnectRequest req;
    req.authority = authority;
    auto id = client->OpenStream(req);
    EXPECT_TRUE(id.ok()) << id.status();
    Flush();
    const Event* r = nullptr;
    for (auto it = server_events.rbegin(); it != server_events.rend(); ++it) {
      if (it->type == Event::Type::kStreamRequest) {
        r = &*it;
        break;
      }
    }
    EXPECT_NE(r, nullptr);
    StreamId sid = r != nullptr ? r->stream : 0;
    EXPECT_TRUE(server->AcceptStream(sid).ok());
    Flush();
    return {*id, sid};
  }

  std::string ReadAll(Connection* c, StreamId id) {
    std::string out;
    uint8_t buf[4096];
    for (;;) {
      size_t n = c->StreamRead(id, absl::MakeSpan(buf));
      if (n == 0) break;
      out.append(reinterpret_cast<char*>(buf), n);
    }
    return out;
  }

  absl::Time now = absl::FromUnixSeconds(1700000000);
  std::unique_ptr<Connection> client;
  std::unique_ptr<Connection> server;
  std::vector<Event> client_events;
  std::vector<Event> server_events;
  absl::Status client_status;
  absl::Status server_status;

 private:
  bool Move(Connection* from, Connection* to, bool deliver, absl::Status* to_status) {
    absl::Span<const uint8_t> out = from->PendingOutput();
    if (out.empty()) return false;
    size_t n = out.size();
    if (deliver) {
      absl::Status s = to->Receive(out, now);
      if (!s.ok() && to_status->ok()) *to_status = s;
    }
    from->ConsumeOutput(n);
    return true;
  }
};

class ConnectionTest : public ::testing::Test {
 protected:
  TestCa ca_;
  KeyAndCert client_leaf_ = ca_.Leaf(kClientId);
  KeyAndCert server_leaf_ = ca_.Leaf(kServerId);
  tls::UniquePtr<SSL_CTX> client_ctx_ = ca_.Context(client_leaf_, false);
  tls::UniquePtr<SSL_CTX> server_ctx_ = ca_.Context(server_leaf_, true);
};

TEST_F(ConnectionTest, HandshakeExposesPeerIdentities) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  EXPECT_TRUE(p.client->IsEstablished());
  EXPECT_TRUE(p.server->IsEstablished());
  EXPECT_EQ(p.client->PeerIdentity().value().str(), kServerId);
  EXPECT_EQ(p.server->PeerIdentity().value().str(), kClientId);
  EXPECT_TRUE(p.client->CanOpenStream());
  EXPECT_FALSE(p.server->CanOpenStream());
  EXPECT_EQ(p.client->MaxStreams(), 100u);  // ours, below the server's 200
  EXPECT_EQ(p.server->MaxStreams(), 200u);
}

TEST_F(ConnectionTest, ConnectCarriesAuthorityAndHeadersThenBytesBothWays) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "[2001:db8::5]:9080";
  req.headers = {{"baggage", "k8s.namespace.name=default"},
                 {"forwarded", "for=\"198.18.0.1:40000\""},
                 {"traceparent", "00-0123456789abcdef0123456789abcdef-0123456789abcdef-00"}};
  auto cid = p.client->OpenStream(req);
  ASSERT_TRUE(cid.ok()) << cid.status();
  // Bytes written before the 200 wait for it.
  ASSERT_EQ(*p.client->StreamWrite(*cid, Bytes("hello")), 5u);
  p.Flush();
  const Event* r = p.Find(p.server_events, Event::Type::kStreamRequest);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->request.authority, "[2001:db8::5]:9080");
  ASSERT_EQ(r->request.headers.size(), 3u);
  EXPECT_EQ(r->request.headers[0].name, "baggage");
  EXPECT_EQ(r->request.headers[1].value, "for=\"198.18.0.1:40000\"");
  EXPECT_EQ(r->request.headers[2].name, "traceparent");
  StreamId sid = r->stream;
  EXPECT_EQ(p.server->StreamBuffered(sid), 0u) << "no data may flow before the 200";
  EXPECT_EQ(p.Find(p.client_events, Event::Type::kStreamResponse), nullptr);

  ASSERT_TRUE(p.server->AcceptStream(sid).ok());
  p.Flush();
  const Event* resp = p.Find(p.client_events, Event::Type::kStreamResponse, *cid);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->http_status, 200);
  EXPECT_EQ(p.ReadAll(p.server.get(), sid), "hello");

  ASSERT_EQ(*p.server->StreamWrite(sid, Bytes("world!")), 6u);
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.client.get(), *cid), "world!");

  // Client TCP EOF -> END_STREAM -> server sees end of stream, stream still
  // open the other way.
  ASSERT_TRUE(p.client->StreamShutdownWrite(*cid).ok());
  p.Flush();
  EXPECT_TRUE(p.server->StreamAtEof(sid));
  EXPECT_FALSE(p.client->StreamAtEof(*cid));
  ASSERT_EQ(*p.server->StreamWrite(sid, Bytes("late")), 4u);
  ASSERT_TRUE(p.server->StreamShutdownWrite(sid).ok());
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.client.get(), *cid), "late");
  p.Flush();
  EXPECT_TRUE(p.client->StreamAtEof(*cid));
  StreamStats cs = p.client->GetStreamStats(*cid);
  const Event* cclosed = p.Find(p.client_events, Event::Type::kStreamClosed, *cid);
  const Event* sclosed = p.Find(p.server_events, Event::Type::kStreamClosed, sid);
  ASSERT_NE(cclosed, nullptr);
  ASSERT_NE(sclosed, nullptr);
  EXPECT_TRUE(cclosed->status.ok()) << cclosed->status;
  EXPECT_TRUE(sclosed->status.ok()) << sclosed->status;
  EXPECT_EQ(p.client->ActiveStreams(), 0u);
  EXPECT_EQ(p.server->ActiveStreams(), 0u);
  (void)cs;
}

TEST_F(ConnectionTest, ResponseHeadersOfThe200ReachTheClientEvent) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "198.18.0.7:8080";
  auto cid = p.client->OpenStream(req);
  ASSERT_TRUE(cid.ok()) << cid.status();
  p.Flush();
  const Event* r = p.Find(p.server_events, Event::Type::kStreamRequest);
  ASSERT_NE(r, nullptr);
  const std::string baggage = "k8s.namespace.name=back,k8s.deployment.name=echo";
  const StreamId sid1 = r->stream;  // `r` is not kept across Flush
  ASSERT_TRUE(p.server->AcceptStream(sid1, {{"baggage", baggage}, {"x-extra", "1"}}).ok());
  p.Flush();
  const Event* resp = p.Find(p.client_events, Event::Type::kStreamResponse, *cid);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->http_status, 200);
  ASSERT_EQ(resp->headers.size(), 2u);  // no :status among them
  EXPECT_EQ(resp->headers[0].name, "baggage");
  EXPECT_EQ(resp->headers[0].value, baggage);
  EXPECT_EQ(resp->headers[1].name, "x-extra");
  EXPECT_EQ(resp->headers[1].value, "1");

  // A 200 without extra headers reports none.
  auto cid2 = p.client->OpenStream(req);
  ASSERT_TRUE(cid2.ok());
  p.Flush();
  const Event* r2 = nullptr;
  for (const Event& e : p.server_events) {
    if (e.type == Event::Type::kStreamRequest && e.stream != sid1) r2 = &e;
  }
  ASSERT_NE(r2, nullptr);
  ASSERT_TRUE(p.server->AcceptStream(r2->stream).ok());
  p.Flush();
  const Event* resp2 = p.Find(p.client_events, Event::Type::kStreamResponse, *cid2);
  ASSERT_NE(resp2, nullptr);
  EXPECT_EQ(resp2->http_status, 200);
  EXPECT_TRUE(resp2->headers.empty());
}

TEST_F(ConnectionTest, StatsCountPayloadBytes) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  std::vector<uint8_t> data(100000, 'x');
  size_t off = 0;
  while (off < data.size()) {
    auto n = p.client->StreamWrite(cid, absl::MakeSpan(data).subspan(off));
    ASSERT_TRUE(n.ok());
    off += *n;
    p.Flush();
    p.ReadAll(p.server.get(), sid);
  }
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.server.get(), sid).size() + 0, 0u);
  EXPECT_EQ(p.client->GetStreamStats(cid).bytes_sent, 100000u);
  EXPECT_EQ(p.server->GetStreamStats(sid).bytes_received, 100000u);
}

// Writes of every awkward size around TLS records, HTTP/2 frames and queue
// chunks, a third of them filled in place with StreamWriteFrom and a third
// scattered over several runs with StreamWriteFromSpans, arrive exactly.
TEST_F(ConnectionTest, OddSizedWritesArriveExactlyBothApis) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  std::string sent;
  std::string got;
  uint32_t seed = 1;
  size_t sizes[] = {1,     9,     16374, 16375, 16383, 16384,  16385, 32768,
                    49151, 65535, 65536, 65545, 70000, 131072, 3,     250000};
  int k = 0;
  for (size_t size : sizes) {
    std::string chunk(size, '\0');
    for (char& ch : chunk) {
      seed = seed * 1103515245u + 12345u;
      ch = static_cast<char>(seed >> 24);
    }
    size_t off = 0;
    while (off < chunk.size()) {
      size_t n = 0;
      int mode = k++ % 3;
      if (mode == 2) {
        // Scatter fill: copy into the lent runs in order, all of them.
        auto w = p.client->StreamWriteFromSpans(
            cid, chunk.size() - off, [&](absl::Span<const absl::Span<uint8_t>> runs) {
              size_t done = 0;
              for (const absl::Span<uint8_t>& r : runs) {
                EXPECT_FALSE(r.empty());
                std::memcpy(r.data(), chunk.data() + off + done, r.size());
                done += r.size();
              }
              EXPECT_LE(done, chunk.size() - off);
              return static_cast<ssize_t>(done);
            });
        ASSERT_TRUE(w.ok()) << w.status();
        ASSERT_GE(*w, 0);
        n = static_cast<size_t>(*w);
      } else if (mode == 0) {
        auto w = p.client->StreamWrite(
            cid, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(chunk.data()) + off,
                                           chunk.size() - off));
        ASSERT_TRUE(w.ok()) << w.status();
        n = *w;
      } else {
        auto w = p.client->StreamWriteFrom(cid, chunk.size() - off, [&](absl::Span<uint8_t> space) {
          std::memcpy(space.data(), chunk.data() + off, space.size());
          return static_cast<ssize_t>(space.size());
        });
        ASSERT_TRUE(w.ok()) << w.status();
        ASSERT_GE(*w, 0);
        n = static_cast<size_t>(*w);
      }
      off += n;
      p.Flush();
      got += p.ReadAll(p.server.get(), sid);
    }
    sent += chunk;
  }
  // A fill that reports an error queues nothing.
  auto none = p.client->StreamWriteFrom(cid, 100, [](absl::Span<uint8_t>) { return ssize_t{-1}; });
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, -1);
  auto none2 = p.client->StreamWriteFromSpans(
      cid, 100000, [](absl::Span<const absl::Span<uint8_t>>) { return ssize_t{-1}; });
  ASSERT_TRUE(none2.ok());
  EXPECT_EQ(*none2, -1);
  for (int i = 0; i < 10; ++i) {
    p.Flush();
    got += p.ReadAll(p.server.get(), sid);
  }
  ASSERT_EQ(got.size(), sent.size());
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(p.client->StreamUnsent(cid), 0u);
}

// StreamPeekSpans lends everything received, in order and across queue
// chunks; consuming part of it leaves the rest to the next peek, and the
// window is released as the host consumes (the sender is not stalled).
TEST_F(ConnectionTest, PeekSpansLendsAllReceivedBytesInOrder) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  std::string sent(300000, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 251);
  size_t off = 0;
  std::string got;
  size_t max_spans_seen = 0;
  while (got.size() < sent.size()) {
    if (off < sent.size()) {
      auto w = p.client->StreamWrite(
          cid, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(sent.data()) + off,
                                         sent.size() - off));
      ASSERT_TRUE(w.ok()) << w.status();
      off += *w;
    }
    p.Flush();
    absl::Span<const uint8_t> spans[4];
    size_t n = p.server->StreamPeekSpans(sid, spans, 4);
    if (n == 0) {
      ASSERT_LT(off, sent.size()) << "bytes missing at " << got.size();
      continue;
    }
    max_spans_seen = std::max(max_spans_seen, n);
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) total += spans[i].size();
    ASSERT_LE(total, p.server->StreamBuffered(sid));
    // Take all but the last 100 bytes of what was lent (like a short write).
    size_t take = total > 100 ? total - 100 : total;
    size_t left = take;
    for (size_t i = 0; i < n && left > 0; ++i) {
      size_t k = std::min(left, spans[i].size());
      got.append(reinterpret_cast<const char*>(spans[i].data()), k);
      left -= k;
    }
    p.server->StreamConsume(sid, take);
  }
  EXPECT_TRUE(got == sent);
  EXPECT_GT(max_spans_seen, 1u) << "bulk data should span several queue chunks";
  absl::Span<const uint8_t> none[2];
  EXPECT_EQ(p.server->StreamPeekSpans(sid, none, 2), 0u);
  EXPECT_EQ(p.server->StreamPeekSpans(sid, none, 0), 0u);
  EXPECT_EQ(p.server->StreamPeekSpans(12345, none, 2), 0u) << "unknown stream";
}

// Bytes that arrive with a CONNECT are not lent before the server accepts.
TEST_F(ConnectionTest, PeekSpansLendsNothingBeforeAccept) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "10.0.0.1:8080";
  auto cid = p.client->OpenStream(req);
  ASSERT_TRUE(cid.ok());
  ASSERT_EQ(*p.client->StreamWrite(*cid, Bytes("early")), 5u);
  p.Flush();
  const Event* r = p.Find(p.server_events, Event::Type::kStreamRequest);
  ASSERT_NE(r, nullptr);
  StreamId sid = r->stream;
  absl::Span<const uint8_t> spans[2];
  EXPECT_EQ(p.server->StreamPeekSpans(sid, spans, 2), 0u);
  ASSERT_TRUE(p.server->AcceptStream(sid).ok());
  p.Flush();
  size_t n = p.server->StreamPeekSpans(sid, spans, 2);
  ASSERT_EQ(n, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(spans[0].data()), spans[0].size()), "early");
}

TEST_F(ConnectionTest, RejectedStreamFailsOnClientWithStatus) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "10.1.2.3:80";
  auto cid = p.client->OpenStream(req);
  ASSERT_TRUE(cid.ok());
  p.Flush();
  const Event* r = p.Find(p.server_events, Event::Type::kStreamRequest);
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(p.server->RejectStream(r->stream, 401).ok());
  p.Flush();
  const Event* resp = p.Find(p.client_events, Event::Type::kStreamResponse, *cid);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->http_status, 401);
  const Event* closed = p.Find(p.client_events, Event::Type::kStreamClosed, *cid);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kPermissionDenied);
  // The connection is unaffected: another stream works.
  auto [c2, s2] = p.OpenAccepted();
  ASSERT_EQ(*p.client->StreamWrite(c2, Bytes("ok")), 2u);
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.server.get(), s2), "ok");
}

TEST_F(ConnectionTest, ServerRejectsBadAuthorityWith400) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  // The client refuses to send a bad authority itself ...
  ConnectRequest bad;
  bad.authority = "no-port";
  EXPECT_EQ(p.client->OpenStream(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad.authority = "2001:db8::1:80";
  EXPECT_EQ(p.client->OpenStream(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConnectionTest, OversizedRequestHeadersGet431AndConnectionSurvives) {
  Settings server_settings;
  server_settings.max_header_list_size = 1024;
  Pair p(client_ctx_.get(), server_ctx_.get(), {kServerId}, {}, server_settings);
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "10.0.0.1:80";
  req.headers = {{"baggage", std::string(4000, 'b')}};
  auto cid = p.client->OpenStream(req);
  ASSERT_TRUE(cid.ok());
  p.Flush();
  EXPECT_EQ(p.Find(p.server_events, Event::Type::kStreamRequest), nullptr);
  const Event* resp = p.Find(p.client_events, Event::Type::kStreamResponse, *cid);
  ASSERT_NE(resp, nullptr);
  EXPECT_EQ(resp->http_status, 431);
  auto [c2, s2] = p.OpenAccepted();
  (void)c2;
  EXPECT_GT(s2, 0);
}

TEST_F(ConnectionTest, WrongServerIdentityFailsClient) {
  Pair p(client_ctx_.get(), server_ctx_.get(),
         {"spiffe://cluster.local/ns/default/sa/someone-else"});
  p.Flush();
  EXPECT_TRUE(p.client->IsClosed());
  const Event* closed = p.Find(p.client_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(closed->status.message()), HasSubstr(kServerId));
  EXPECT_EQ(p.Find(p.client_events, Event::Type::kHandshakeDone), nullptr);
  ConnectRequest req;
  req.authority = "10.0.0.1:80";
  EXPECT_FALSE(p.client->OpenStream(req).ok());
}

TEST_F(ConnectionTest, UntrustedServerCertificateFailsHandshake) {
  TestCa other;
  KeyAndCert rogue = other.Leaf(kServerId);
  auto rogue_ctx = other.Context(rogue, true);
  Pair p(client_ctx_.get(), rogue_ctx.get());
  p.Flush();
  EXPECT_TRUE(p.client->IsClosed());
  EXPECT_TRUE(p.server->IsClosed());
  const Event* closed = p.Find(p.client_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(closed->status.message()), HasSubstr("TLS handshake failed"));
}

TEST_F(ConnectionTest, ServerRejectsClientFromAnotherTrustDomain) {
  KeyAndCert foreign = ca_.Leaf("spiffe://other.domain/ns/default/sa/client");
  auto foreign_ctx = ca_.Context(foreign, false);
  Pair p(foreign_ctx.get(), server_ctx_.get());
  p.Flush();
  EXPECT_TRUE(p.server->IsClosed());
  const Event* closed = p.Find(p.server_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(closed->status.message()), HasSubstr("trust domain"));
  EXPECT_EQ(p.Find(p.server_events, Event::Type::kStreamRequest), nullptr);
}

TEST_F(ConnectionTest, ClientWithoutCertificateIsRefused) {
  tls::UniquePtr<SSL_CTX> anon(SSL_CTX_new(TLS_method()));
  X509_STORE_add_cert(SSL_CTX_get_cert_store(anon.get()), ca_.cert());
  SSL_CTX_set_verify(anon.get(), SSL_VERIFY_PEER, nullptr);
  ASSERT_TRUE(PrepareClientContext(anon.get()).ok());
  Pair p(anon.get(), server_ctx_.get());
  p.Flush();
  EXPECT_TRUE(p.server->IsClosed());
  const Event* closed = p.Find(p.server_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(ConnectionTest, ContextThatDoesNotVerifyPeersIsRefused) {
  tls::UniquePtr<SSL_CTX> lax(SSL_CTX_new(TLS_method()));
  ConnectionOptions o;
  o.ssl_ctx = lax.get();
  auto c = Connection::New(std::move(o));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  o = ConnectionOptions();
  EXPECT_EQ(Connection::New(std::move(o)).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConnectionTest, GarbageInsteadOfClientHelloClosesServer) {
  ConnectionOptions s;
  s.role = Role::kServer;
  s.ssl_ctx = server_ctx_.get();
  auto server = Connection::New(std::move(s));
  ASSERT_TRUE(server.ok());
  (*server)->Start(absl::UnixEpoch());
  std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  absl::Status st = (*server)->Receive(Bytes(junk), absl::UnixEpoch());
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE((*server)->IsClosed());
  // Further input is ignored, not a crash.
  EXPECT_FALSE((*server)->Receive(Bytes(junk), absl::UnixEpoch()).ok());
}

TEST_F(ConnectionTest, SlowHandshakeTimesOut) {
  ConnectionOptions s;
  s.role = Role::kServer;
  s.ssl_ctx = server_ctx_.get();
  auto server = Connection::New(std::move(s));
  ASSERT_TRUE(server.ok());
  absl::Time t0 = absl::UnixEpoch();
  (*server)->Start(t0);
  EXPECT_EQ((*server)->NextDeadline(), t0 + absl::Seconds(10));
  // A slowloris peer trickles a byte now and then; the deadline holds.
  uint8_t one = 0x16;
  ASSERT_TRUE((*server)->Receive(absl::MakeConstSpan(&one, 1), t0 + absl::Seconds(5)).ok());
  (*server)->OnTimeout(t0 + absl::Seconds(9));
  EXPECT_FALSE((*server)->IsClosed());
  (*server)->OnTimeout(t0 + absl::Seconds(10));
  EXPECT_TRUE((*server)->IsClosed());
  Event ev;
  ASSERT_TRUE((*server)->PollEvent(&ev));
  EXPECT_EQ(ev.type, Event::Type::kConnectionClosed);
  EXPECT_EQ(ev.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ConnectionTest, PingEveryTenSecondsAndDropAfterTwentyWithoutReply) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  absl::Time t0 = p.now;
  EXPECT_EQ(p.client->NextDeadline(), t0 + absl::Seconds(10));
  // Answered pings keep the connection alive.
  for (int i = 1; i <= 3; ++i) {
    p.now = t0 + absl::Seconds(10 * i);
    p.client->OnTimeout(p.now);
    p.server->OnTimeout(p.now);
    p.Flush();
    EXPECT_FALSE(p.client->IsClosed());
  }
  // Now the server stops answering (stalled peer).
  absl::Time t1 = t0 + absl::Seconds(40);
  p.now = t1;
  p.client->OnTimeout(p.now);
  p.Flush(/*to_server=*/false, /*to_client=*/true);
  EXPECT_EQ(p.client->NextDeadline(), t1 + absl::Seconds(10));
  p.now = t1 + absl::Seconds(10);
  p.client->OnTimeout(p.now);
  EXPECT_FALSE(p.client->IsClosed());
  EXPECT_EQ(p.client->NextDeadline(), t1 + absl::Seconds(20));
  p.now = t1 + absl::Seconds(20);
  p.client->OnTimeout(p.now);
  EXPECT_TRUE(p.client->IsClosed());
  p.Collect();
  const Event* closed = p.Find(p.client_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ConnectionTest, FlowControlBoundsBufferingAndBackpressuresWriter) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  std::vector<uint8_t> chunk(64 * 1024, 'z');
  size_t written = 0;
  bool saw_full = false;
  // The server never reads: writes must stall once the stream window (4 MiB)
  // and the client's send buffer (256 KiB) are full.
  for (int i = 0; i < 200; ++i) {
    auto n = p.client->StreamWrite(cid, chunk);
    ASSERT_TRUE(n.ok());
    written += *n;
    if (*n < chunk.size()) saw_full = true;
    p.Flush();
  }
  EXPECT_TRUE(saw_full);
  EXPECT_LE(p.server->StreamBuffered(sid), 4u << 20);
  EXPECT_GE(p.server->StreamBuffered(sid), 4u << 20) << "window should be used fully";
  EXPECT_LE(p.client->StreamUnsent(cid), 256u * 1024);
  EXPECT_EQ(written, p.server->StreamBuffered(sid) + p.client->StreamUnsent(cid));
  // Reading releases the window; the writer is told it may write again.
  p.client_events.clear();
  std::string got = p.ReadAll(p.server.get(), sid);
  p.Flush();
  EXPECT_NE(p.Find(p.client_events, Event::Type::kStreamWritable, cid), nullptr);
  got += p.ReadAll(p.server.get(), sid);
  EXPECT_EQ(got.size(), written);
}

TEST_F(ConnectionTest, ManyStreamsAtOnceAndOneResetLeavesOthersAlone) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  std::vector<std::pair<StreamId, StreamId>> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(p.OpenAccepted());
  EXPECT_EQ(p.client->ActiveStreams(), 10u);
  ASSERT_TRUE(p.client->StreamReset(ids[3].first).ok());
  p.Flush();
  const Event* sclosed = p.Find(p.server_events, Event::Type::kStreamClosed, ids[3].second);
  ASSERT_NE(sclosed, nullptr);
  EXPECT_TRUE(sclosed->status.ok()) << "RST_STREAM(CANCEL) is a clean end: " << sclosed->status;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 3) continue;
    std::string msg = "stream " + std::to_string(i);
    ASSERT_EQ(*p.client->StreamWrite(ids[i].first, Bytes(msg)), msg.size());
  }
  p.Flush();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i == 3) continue;
    EXPECT_EQ(p.ReadAll(p.server.get(), ids[i].second), "stream " + std::to_string(i));
  }
  EXPECT_EQ(p.client->ActiveStreams(), 9u);
}

// RFC 9113 section 8.5: a TCP reset behind a CONNECT is RST_STREAM(CONNECT_ERROR)
// on the wire, and the receiving side sees an error (not the clean end a CANCEL is).
TEST_F(ConnectionTest, ResetWithConnectErrorCarriesThatCodeToThePeer) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  auto [cid2, sid2] = p.OpenAccepted();
  // Server side (its upstream was reset) -> the client.
  ASSERT_TRUE(p.server->StreamReset(sid, ResetCode::kConnectError).ok());
  // Client side (its downstream was reset) -> the server.
  ASSERT_TRUE(p.client->StreamReset(cid2, ResetCode::kConnectError).ok());
  p.Flush();
  const Event* at_client = p.Find(p.client_events, Event::Type::kStreamClosed, cid);
  ASSERT_NE(at_client, nullptr);
  EXPECT_EQ(at_client->status.code(), absl::StatusCode::kUnavailable) << at_client->status;
  EXPECT_THAT(at_client->status.message(), HasSubstr("CONNECT_ERROR"));
  const Event* at_server = p.Find(p.server_events, Event::Type::kStreamClosed, sid2);
  ASSERT_NE(at_server, nullptr);
  EXPECT_EQ(at_server->status.code(), absl::StatusCode::kUnavailable) << at_server->status;
  EXPECT_THAT(at_server->status.message(), HasSubstr("CONNECT_ERROR"));
  // The resetting side's own stream ends as cancelled, naming the code.
  const Event* own = p.Find(p.server_events, Event::Type::kStreamClosed, sid);
  ASSERT_NE(own, nullptr);
  EXPECT_EQ(own->status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(own->status.message(), HasSubstr("CONNECT_ERROR"));
  EXPECT_TRUE(p.client->IsEstablished()) << "a stream error leaves the connection up";
  EXPECT_EQ(p.client->ActiveStreams(), 0u);
}

TEST_F(ConnectionTest, StreamLimitIsEnforcedOnClient) {
  Settings cs;
  cs.max_concurrent_streams = 3;
  Pair p(client_ctx_.get(), server_ctx_.get(), {kServerId}, cs);
  ASSERT_TRUE(p.Establish());
  ConnectRequest req;
  req.authority = "10.0.0.1:80";
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.client->OpenStream(req).ok());
  EXPECT_FALSE(p.client->CanOpenStream());
  EXPECT_EQ(p.client->OpenStream(req).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ConnectionTest, ServerLimitAppliesToClientAfterSettings) {
  Settings ss;
  ss.max_concurrent_streams = 2;
  Pair p(client_ctx_.get(), server_ctx_.get(), {kServerId}, {}, ss);
  ASSERT_TRUE(p.Establish());
  EXPECT_EQ(p.client->MaxStreams(), 2u);
}

TEST_F(ConnectionTest, GoawayDrainsExistingStreamsAndRefusesNewOnes) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  p.server->Drain();
  p.Flush();
  EXPECT_NE(p.Find(p.client_events, Event::Type::kGoaway), nullptr);
  EXPECT_FALSE(p.client->CanOpenStream());
  EXPECT_FALSE(p.client->IsClosed());
  // The existing stream still works both ways and ends cleanly.
  ASSERT_EQ(*p.client->StreamWrite(cid, Bytes("ping")), 4u);
  ASSERT_TRUE(p.client->StreamShutdownWrite(cid).ok());
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.server.get(), sid), "ping");
  ASSERT_EQ(*p.server->StreamWrite(sid, Bytes("pong")), 4u);
  ASSERT_TRUE(p.server->StreamShutdownWrite(sid).ok());
  p.Flush();
  EXPECT_EQ(p.ReadAll(p.client.get(), cid), "pong");
  p.Flush();
  EXPECT_TRUE(p.server->IsClosed());
  const Event* closed = p.Find(p.server_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_TRUE(closed->status.ok()) << closed->status;
}

TEST_F(ConnectionTest, PeerVanishingMidStreamFailsItsStreams) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  auto [cid, sid] = p.OpenAccepted();
  (void)cid;
  p.server->ReceiveEof(p.now);
  p.Collect();
  const Event* sclosed = p.Find(p.server_events, Event::Type::kStreamClosed, sid);
  ASSERT_NE(sclosed, nullptr);
  EXPECT_EQ(sclosed->status.code(), absl::StatusCode::kUnavailable);
  const Event* closed = p.Find(p.server_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_FALSE(closed->status.ok());
  EXPECT_EQ(p.server->ActiveStreams(), 0u);
}

TEST_F(ConnectionTest, IdleConnectionClosedByPeerIsClean) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  p.server->ReceiveEof(p.now);
  p.Collect();
  const Event* closed = p.Find(p.server_events, Event::Type::kConnectionClosed);
  ASSERT_NE(closed, nullptr);
  EXPECT_TRUE(closed->status.ok());
}

TEST_F(ConnectionTest, EventsArriveInOrderForOneStream) {
  Pair p(client_ctx_.get(), server_ctx_.get());
  ASSERT_TRUE(p.Establish());
  p.client_events.clear();
  auto [cid, sid] = p.OpenAccepted();
  ASSERT_TRUE(p.server->StreamShutdownWrite(sid).ok());
  p.Flush();
  std::vector<Event::Type> types;
  for (const Event& e : p.client_events) {
    if (e.stream == cid) types.push_back(e.type);
  }
  ASSERT_GE(types.size(), 2u);
  EXPECT_EQ(types[0], Event::Type::kStreamResponse);
  EXPECT_EQ(types[1], Event::Type::kStreamReadable);
  EXPECT_TRUE(p.client->StreamAtEof(cid));
}

}  // namespace
}  // namespace ambient::hbone
