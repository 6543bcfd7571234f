// The server Connection against a hand-driven HTTP/2 client (plain nghttp2
// over a real mTLS handshake) that sends what ambient's own client never
// would: non-CONNECT methods, CONNECT without :authority, extended CONNECT.
// Each gets a clear answer, and other streams on the connection carry on.
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "ambient/base/tls.h"
#include "ambient/hbone/connection.h"
#include "hbone/test_pki.h"

namespace ambient::hbone {
namespace {

using testing::KeyAndCert;
using testing::TestCa;

struct StreamResult {
  int status = 0;
  bool closed = false;
  uint32_t error_code = 0;
};

class RawClient {
 public:
  explicit RawClient(SSL_CTX* ctx) {
    ssl_.reset(SSL_new(ctx));
    BIO* internal = nullptr;
    BIO_new_bio_pair(&internal, 1 << 20, &net_, 1 << 20);
    SSL_set_bio(ssl_.get(), internal, internal);
    SSL_set_connect_state(ssl_.get());
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                const uint8_t* v, size_t vl, uint8_t, void* ud) {
          auto* self = static_cast<RawClient*>(ud);
          if (std::string(reinterpret_cast<const char*>(n), nl) == ":status") {
            self->results[f->hd.stream_id].status =
                std::stoi(std::string(reinterpret_cast<const char*>(v), vl));
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* ud) {
          auto* self = static_cast<RawClient*>(ud);
          self->results[id].closed = true;
          self->results[id].error_code = code;
          return 0;
        });
    nghttp2_session_client_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~RawClient() {
    nghttp2_session_del(session_);
    BIO_free(net_);
  }

  int32_t Request(std::vector<std::pair<std::string, std::string>> headers, bool end_stream) {
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return nghttp2_submit_headers(session_, end_stream ? NGHTTP2_FLAG_END_STREAM : 0, -1, nullptr,
                                  nva.data(), nva.size(), nullptr);
  }

  // Moves bytes between us and `server` until both are quiet; accepts every
  // CONNECT the server reports.
  void Run(Connection* server) {
    for (int i = 0; i < 200; ++i) {
      bool moved = false;
      auto out = server->PendingOutput();
      if (!out.empty()) {
        BIO_write(net_, out.data(), static_cast<int>(out.size()));
        server->ConsumeOutput(out.size());
        moved = true;
      }
      if (!SSL_is_init_finished(ssl_.get())) {
        SSL_do_handshake(ssl_.get());
      } else {
        uint8_t buf[16384];
        int n;
        while ((n = SSL_read(ssl_.get(), buf, sizeof(buf))) > 0) {
          if (raw) {
            raw_in.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
          } else {
            nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n));
          }
          moved = true;
        }
        const uint8_t* data;
        ssize_t len;
        while (!raw && (len = nghttp2_session_mem_send(session_, &data)) > 0) {
          SSL_write(ssl_.get(), data, static_cast<int>(len));
          moved = true;
        }
      }
      int pending = static_cast<int>(BIO_ctrl_pending(net_));
      if (pending > 0) {
        std::vector<uint8_t> cipher(static_cast<size_t>(pending));
        BIO_read(net_, cipher.data(), pending);
        (void)server->Receive(cipher, absl::UnixEpoch());
        moved = true;
      }
      Event ev;
      while (server->PollEvent(&ev)) {
        events.push_back(ev);
        if (ev.type == Event::Type::kStreamRequest) (void)server->AcceptStream(ev.stream);
        moved = true;
      }
      if (!moved) return;
    }
  }

  // WriteRaw sends bytes as they are (frames built by the test); with `raw`
  // set, what the server sends is kept in raw_in instead of going to
  // nghttp2.
  void WriteRaw(const std::string& bytes) {
    ASSERT_EQ(SSL_write(ssl_.get(), bytes.data(), static_cast<int>(bytes.size())),
              static_cast<int>(bytes.size()));
  }
  uint32_t PeerMaxStreams() {
    return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  }

  std::map<int32_t, StreamResult> results;
  std::vector<Event> events;
  bool raw = false;
  std::string raw_in;

 private:
  tls::UniquePtr<SSL> ssl_;
  BIO* net_ = nullptr;
  nghttp2_session* session_ = nullptr;
};

class ServerBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ConnectionOptions o;
    o.role = Role::kServer;
    o.ssl_ctx = server_ctx_.get();
    auto s = Connection::New(std::move(o));
    ASSERT_TRUE(s.ok());
    server_ = std::move(*s);
    server_->Start(absl::UnixEpoch());
    client_.Run(server_.get());
    ASSERT_TRUE(server_->IsEstablished());
  }
  int Requests() {
    int n = 0;
    for (const Event& e : client_.events) n += e.type == Event::Type::kStreamRequest;
    return n;
  }

  TestCa ca_;
  KeyAndCert server_leaf_ = ca_.Leaf("spiffe://cluster.local/ns/default/sa/server");
  KeyAndCert client_leaf_ = ca_.Leaf("spiffe://cluster.local/ns/default/sa/client");
  tls::UniquePtr<SSL_CTX> server_ctx_ = ca_.Context(server_leaf_, true);
  tls::UniquePtr<SSL_CTX> client_ctx_ = ca_.Context(client_leaf_, false);
  std::unique_ptr<Connection> server_;
  RawClient client_{client_ctx_.get()};
};

TEST_F(ServerBadInputTest, NonConnectMethodsGet400) {
  int32_t get = client_.Request(
      {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "10.0.0.1:80"}},
      true);
  int32_t post = client_.Request(
      {{":method", "POST"}, {":scheme", "https"}, {":path", "/x"}, {":authority", "10.0.0.1:80"}},
      false);
  client_.Run(server_.get());
  EXPECT_EQ(client_.results[get].status, 400);
  EXPECT_EQ(client_.results[post].status, 400);
  EXPECT_TRUE(client_.results[get].closed);
  EXPECT_TRUE(client_.results[post].closed) << "the rejected stream is ended, not left open";
  EXPECT_EQ(Requests(), 0) << "the host never sees them";
  EXPECT_EQ(server_->ActiveStreams(), 0u);
}

TEST_F(ServerBadInputTest, ConnectWithoutAuthorityIsRefused) {
  int32_t id = client_.Request({{":method", "CONNECT"}}, false);
  client_.Run(server_.get());
  EXPECT_TRUE(client_.results[id].closed);
  EXPECT_TRUE(client_.results[id].status == 400 ||
              client_.results[id].error_code == NGHTTP2_PROTOCOL_ERROR)
      << "status " << client_.results[id].status << " rst " << client_.results[id].error_code;
  EXPECT_EQ(Requests(), 0);
}

TEST_F(ServerBadInputTest, ExtendedConnectAndBadAuthorityAreRefused) {
  int32_t ext = client_.Request({{":method", "CONNECT"},
                                 {":protocol", "websocket"},
                                 {":scheme", "https"},
                                 {":path", "/"},
                                 {":authority", "10.0.0.1:80"}},
                                false);
  int32_t bad = client_.Request({{":method", "CONNECT"}, {":authority", "10.0.0.1"}}, false);
  client_.Run(server_.get());
  EXPECT_TRUE(client_.results[ext].closed);
  EXPECT_TRUE(client_.results[ext].status == 400 ||
              client_.results[ext].error_code == NGHTTP2_PROTOCOL_ERROR);
  EXPECT_EQ(client_.results[bad].status, 400);
  EXPECT_EQ(Requests(), 0);
}

TEST_F(ServerBadInputTest, GoodStreamsAreUnaffectedByBadOnes) {
  int32_t good1 = client_.Request({{":method", "CONNECT"}, {":authority", "198.18.0.1:80"}}, false);
  int32_t bad = client_.Request(
      {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {":authority", "x:1"}}, true);
  int32_t missing = client_.Request({{":method", "CONNECT"}}, false);
  int32_t good2 =
      client_.Request({{":method", "CONNECT"}, {":authority", "[2001:db8::1]:443"}}, false);
  client_.Run(server_.get());
  EXPECT_EQ(client_.results[good1].status, 200);
  EXPECT_EQ(client_.results[good2].status, 200);
  EXPECT_FALSE(client_.results[good1].closed);
  EXPECT_FALSE(client_.results[good2].closed);
  EXPECT_EQ(client_.results[bad].status, 400);
  EXPECT_TRUE(client_.results[missing].closed);
  EXPECT_EQ(Requests(), 2);
  EXPECT_EQ(server_->ActiveStreams(), 2u);
  EXPECT_FALSE(server_->IsClosed());
}

// RFC 9113 5.1.2: a client that opens more streams than the server's
// SETTINGS_MAX_CONCURRENT_STREAMS gets those refused with
// RST_STREAM(REFUSED_STREAM), which it may retry; the connection and the
// streams within the limit carry on. (nghttp2 alone would end the whole
// connection with GOAWAY.)
TEST_F(ServerBadInputTest, StreamsBeyondTheLimitAreRefusedAndTheConnectionKept) {
  EXPECT_EQ(client_.PeerMaxStreams(), 200u) << "the server advertises its own limit";
  // 1,000 CONNECTs at once, written as frames so no client-side limit holds
  // them back.
  nghttp2_hd_deflater* deflater = nullptr;
  ASSERT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
  std::string frames;
  std::string method = ":method", connect = "CONNECT", auth = ":authority", addr = "10.0.0.1:80";
  nghttp2_nv nva[] = {
      {reinterpret_cast<uint8_t*>(method.data()), reinterpret_cast<uint8_t*>(connect.data()),
       method.size(), connect.size(), NGHTTP2_NV_FLAG_NONE},
      {reinterpret_cast<uint8_t*>(auth.data()), reinterpret_cast<uint8_t*>(addr.data()),
       auth.size(), addr.size(), NGHTTP2_NV_FLAG_NONE}};
  for (uint32_t i = 0; i < 1000; ++i) {
    uint8_t block[256];
    ssize_t n = nghttp2_hd_deflate_hd(deflater, block, sizeof(block), nva, 2);
    ASSERT_GT(n, 0);
    uint32_t id = 2 * i + 1;
    uint8_t hd[9] = {0, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n), NGHTTP2_HEADERS,
                     NGHTTP2_FLAG_END_HEADERS, static_cast<uint8_t>(id >> 24),
                     static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 8),
                     static_cast<uint8_t>(id)};
    frames.append(reinterpret_cast<char*>(hd), sizeof(hd));
    frames.append(reinterpret_cast<char*>(block), static_cast<size_t>(n));
  }
  nghttp2_hd_deflate_del(deflater);
  client_.raw = true;
  client_.WriteRaw(frames);
  client_.Run(server_.get());

  // What came back, frame by frame.
  std::map<int, int> answered;  // 200 HEADERS per stream
  int refused = 0, other_resets = 0, goaways = 0;
  const std::string& in = client_.raw_in;
  for (size_t at = 0; at + 9 <= in.size();) {
    auto b = [&](size_t i) { return static_cast<uint8_t>(in[at + i]); };
    size_t len = (size_t{b(0)} << 16) | (size_t{b(1)} << 8) | b(2);
    uint8_t type = b(3);
    uint32_t id = ((uint32_t{b(5)} << 24) | (uint32_t{b(6)} << 16) | (uint32_t{b(7)} << 8) |
                   b(8)) & 0x7fffffffu;
    ASSERT_LE(at + 9 + len, in.size());
    if (type == NGHTTP2_HEADERS) ++answered[static_cast<int>(id)];
    if (type == NGHTTP2_RST_STREAM) {
      uint32_t code = (uint32_t{b(9)} << 24) | (uint32_t{b(10)} << 16) |
                      (uint32_t{b(11)} << 8) | b(12);
      (code == NGHTTP2_REFUSED_STREAM ? refused : other_resets)++;
    }
    if (type == NGHTTP2_GOAWAY) ++goaways;
    at += 9 + len;
  }
  EXPECT_EQ(Requests(), 200) << "the host sees the streams within the limit only";
  EXPECT_EQ(answered.size(), 200u);
  EXPECT_EQ(refused, 800);
  EXPECT_EQ(other_resets, 0);
  EXPECT_EQ(goaways, 0) << "the connection is kept";
  EXPECT_EQ(server_->StreamsRefused(), 800u);
  EXPECT_TRUE(server_->IsEstablished());
  EXPECT_EQ(server_->ActiveStreams(), 200u);
}

}  // namespace
}  // namespace ambient::hbone
