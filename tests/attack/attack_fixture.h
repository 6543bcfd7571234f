// The attack suite's shared pieces (issue 17): an HBONE server on its own
// loop with a test PKI (HboneServerAttackTest), an attacker's raw nghttp2
// client (H2), an upstream that only holds connections (Sink), and the
// measurements the cases assert on (open descriptors, CPU time).
#ifndef AMBIENT_TESTS_ATTACK_ATTACK_FIXTURE_H_
#define AMBIENT_TESTS_ATTACK_ATTACK_FIXTURE_H_

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/tls.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "hbone/test_pki.h"

namespace ambient::runtime::attack {

using hbone::testing::KeyAndCert;
using hbone::testing::TestCa;

inline constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
inline constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

inline int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;
}

inline double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

inline sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// TcpConnect opens a plain TCP connection (blocking connect; it completes
// through the kernel's backlog whether or not the server accepts). No
// Nagle, as a real HBONE client: the handshake's last flight and the first
// HTTP/2 frames are separate small writes that would otherwise wait for the
// server's delayed ACK (40 ms) and be counted against the server.
// `window` > 0 clamps the receive window the client advertises
// (TCP_WINDOW_CLAMP, set before connecting) far below its receive buffer: a
// flooder that never reads then holds only that many bytes of the server's
// answers, and the rest waits in the server. (Shrinking SO_RCVBUF instead
// left a window larger than the buffer really holds; Linux 6.18 drops
// segments beyond the buffer whole, ACKs included, and both ends stalled
// until the server's keepalive gave up, ~54 s.)
inline int TcpConnect(const SocketAddress& addr, int window = 0) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (window > 0) setsockopt(fd, IPPROTO_TCP, TCP_WINDOW_CLAMP, &window, sizeof(window));
  if (connect(fd, addr.sockaddr_ptr(), addr.size()) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// ListenLoopback opens a TCP listener on 127.0.0.1 (an ephemeral port) and
// sets `*address` to its "ip:port".
inline int ListenLoopback(int backlog, std::string* address) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a = Loopback(0);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(fd, backlog), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  return fd;
}

// An upstream that accepts and holds connections (a legitimate tunnel's
// target: the server answers 200 once connected).
struct Sink {
  int listen_fd = -1;
  std::string address;
  Sink() { listen_fd = ListenLoopback(128, &address); }
  ~Sink() { close(listen_fd); }
};

// H2 is a blocking HBONE client driven by plain nghttp2 (as an attacker
// would write one): CONNECTs, resets, and the statuses that come back.
class H2 {
 public:
  ~H2() { CloseNow(); }

  // Open connects (TcpConnect's `window`), handshakes and sends the
  // client's preface.
  bool Open(SSL_CTX* ctx, const SocketAddress& server, int window = 0) {
    fd_ = TcpConnect(server, window);
    if (fd_ < 0) return false;
    ssl_.reset(SSL_new(ctx));
    SSL_set_fd(ssl_.get(), fd_);
    if (SSL_connect(ssl_.get()) != 1) return false;
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                const uint8_t* v, size_t vl, uint8_t, void* ud) {
          if (std::string(reinterpret_cast<const char*>(n), nl) == ":status") {
            static_cast<H2*>(ud)->status_[f->hd.stream_id] =
                std::string(reinterpret_cast<const char*>(v), vl);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* ud) {
          static_cast<H2*>(ud)->closed_[id] = code;
          return 0;
        });
    nghttp2_session_client_new(&h2_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(h2_, NGHTTP2_FLAG_NONE, nullptr, 0);
    return Flush();
  }

  int32_t Connect(std::string authority) {
    std::string method = "CONNECT", m = ":method", a = ":authority";
    nghttp2_nv nva[] = {
        {reinterpret_cast<uint8_t*>(m.data()), reinterpret_cast<uint8_t*>(method.data()), m.size(),
         method.size(), NGHTTP2_NV_FLAG_NONE},
        {reinterpret_cast<uint8_t*>(a.data()), reinterpret_cast<uint8_t*>(authority.data()),
         a.size(), authority.size(), NGHTTP2_NV_FLAG_NONE}};
    int32_t id = nghttp2_submit_headers(h2_, 0, -1, nullptr, nva, 2, nullptr);
    Flush();
    return id;
  }

  // PingFlood sends up to `n` PINGs without reading the ACKs; returns how
  // many went out before the server closed the connection.
  int PingFlood(int n) {
    uint8_t opaque[8] = {};
    for (int i = 0; i < n; ++i) {
      nghttp2_submit_ping(h2_, NGHTTP2_FLAG_NONE, opaque);
      if (!Flush()) return i;
    }
    return n;
  }

  // RawFlood writes `frames` (raw HTTP/2 frames, bypassing this client's
  // own HTTP/2 state) up to `times` times without reading what the server
  // answers; returns how many went out before the server closed the
  // connection.
  int RawFlood(const std::string& frames, int times) {
    for (int i = 0; i < times; ++i) {
      if (SSL_write(ssl_.get(), frames.data(), static_cast<int>(frames.size())) <= 0) return i;
    }
    return times;
  }

  // ServerClosed waits up to `ms` for the server to end the connection.
  bool ServerClosed(int ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 10) <= 0) continue;
      uint8_t buf[16384];
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) return true;
    }
    return false;
  }

  void Reset(int32_t id) {
    nghttp2_submit_rst_stream(h2_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    Flush();
  }

  // Pump reads what the server sends for up to `ms`, or until `until` holds.
  void Pump(int ms, const std::function<bool()>& until = nullptr) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      if (until && until()) return;
      pollfd p{fd_, POLLIN, 0};
      if (SSL_pending(ssl_.get()) == 0 && poll(&p, 1, 10) <= 0) continue;
      uint8_t buf[16384];
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) return;
      nghttp2_session_mem_recv(h2_, buf, static_cast<size_t>(n));
      Flush();
    }
  }

  std::string Status(int32_t id) {
    auto it = status_.find(id);
    return it == status_.end() ? "" : it->second;
  }
  size_t Count(const std::string& status) const {
    size_t n = 0;
    for (auto& [id, s] : status_) n += s == status;
    return n;
  }

  void CloseNow() {
    if (h2_ != nullptr) nghttp2_session_del(h2_);
    h2_ = nullptr;
    ssl_.reset();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  int fd() const { return fd_; }

 private:
  bool Flush() {
    const uint8_t* data;
    ssize_t len;
    while ((len = nghttp2_session_mem_send(h2_, &data)) > 0) {
      if (SSL_write(ssl_.get(), data, static_cast<int>(len)) <= 0) return false;
    }
    return true;
  }

  int fd_ = -1;
  tls::UniquePtr<SSL> ssl_;
  nghttp2_session* h2_ = nullptr;
  std::map<int32_t, std::string> status_;
  std::map<int32_t, uint32_t> closed_;
};

class HboneServerAttackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
  }
  void TearDown() override {
    StopLoop();
    server_.reset();
    loop_->RunFor(absl::Milliseconds(20));
  }

  ServerOptions Options() {
    ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.ssl_ctx = server_ctx_.get();
    so.log = [this](LogLevel level, absl::string_view component, absl::string_view msg) {
      std::lock_guard<std::mutex> lock(mu_);
      logs_.push_back(absl::StrCat(level == LogLevel::kWarn ? "WARN " : "", component, ": ", msg));
    };
    return so;
  }
  void Serve(ServerOptions so) {
    auto server = HboneServer::New(loop_.get(), std::move(so));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void RunLoop() {
    thread_ = std::thread([this] { loop_->Run(); });
  }
  void StopLoop() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
  }
  // OnLoop runs `f` on the loop's thread and waits for it.
  template <typename F>
  auto OnLoop(F f) -> decltype(f()) {
    std::promise<decltype(f())> p;
    loop_->Post([&] { p.set_value(f()); });
    return p.get_future().get();
  }
  ServerStats Stats() {
    return OnLoop([this] { return server_->stats(); });
  }
  size_t Connections() {
    return OnLoop([this] { return server_->connections(); });
  }
  std::vector<std::string> LogsWith(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const std::string& l : logs_) {
      if (absl::StrContains(l, needle)) out.push_back(l);
    }
    return out;
  }
  // WaitFor polls `cond` for up to `ms`.
  static bool WaitFor(int ms, const std::function<bool()>& cond) {
    for (int i = 0; i < ms / 10; ++i) {
      if (cond()) return true;
      usleep(10000);
    }
    return cond();
  }
  // Figure records a measured value in the test's result (gtest's
  // RecordProperty: --gtest_output=json carries it), where `make bench`'s
  // attack part reads it (bench/parts/attack.py).
  static void Figure(const std::string& name, double value) {
    ::testing::Test::RecordProperty(name, absl::StrCat(value));
  }
  // A legitimate client's tunnel: CONNECT answered 200 within 1 s.
  void ExpectLegitimateTunnelWithin1s(const std::string& upstream) {
    auto start = std::chrono::steady_clock::now();
    H2 good;
    ASSERT_TRUE(good.Open(client_ctx_.get(), server_->address()));
    int32_t id = good.Connect(upstream);
    good.Pump(1000, [&] { return !good.Status(id).empty(); });
    EXPECT_EQ(good.Status(id), "200");
    auto took = std::chrono::steady_clock::now() - start;
    Figure("legit_tunnel_ms", std::chrono::duration<double, std::milli>(took).count());
    EXPECT_LT(took, std::chrono::seconds(1));
  }

  // ExpectFloodEndsOnlyThatConnection runs `flood` on a thread of its own
  // (it returns how many of its `n` sends went out) while a legitimate
  // client opens a tunnel within 1 s. The server must have cut the flood
  // short and closed the flooder's connection, and no other. The flood
  // thread blocks SIGPIPE, so a write after the server's close fails
  // instead of ending the test (a blocked SIGPIPE dies with the thread).
  void ExpectFloodEndsOnlyThatConnection(H2* flooder, int n, const std::function<int()>& flood,
                                         const std::string& what) {
    Sink upstream;
    int sent = 0;
    std::thread t([&] {  // only this thread uses the flooder
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
      sent = flood();
    });
    usleep(100000);
    ExpectLegitimateTunnelWithin1s(upstream.address);
    t.join();
    EXPECT_LT(sent, n) << "the server took every " << what << " without closing";
    EXPECT_TRUE(flooder->ServerClosed(5000)) << "the flooding connection was not closed";
    flooder->CloseNow();
    EXPECT_TRUE(WaitFor(2000, [&] { return Connections() == 0; }));
  }

  TestCa ca_;
  KeyAndCert client_leaf_ = ca_.Leaf(kClientId);
  KeyAndCert server_leaf_ = ca_.Leaf(kServerId);
  tls::UniquePtr<SSL_CTX> client_ctx_ = ca_.Context(client_leaf_, false);
  tls::UniquePtr<SSL_CTX> server_ctx_ = ca_.Context(server_leaf_, true);
  std::unique_ptr<EventLoop> loop_;
  std::unique_ptr<HboneServer> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> logs_;
};

}  // namespace ambient::runtime::attack

#endif  // AMBIENT_TESTS_ATTACK_ATTACK_FIXTURE_H_
