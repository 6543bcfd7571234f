// The epoll runtime end to end on loopback: a plain TCP client talks to an
// echo server through forwarder -> HBONE client pool -> HBONE server.
#include "ambient/runtime/hbone_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "ambient/base/tls.h"
#include "ambient/runtime/event_loop.h"
#include "hbone/test_pki.h"
#include "support/full_listener.h"
#include "support/spiffe_ids.h"

namespace ambient::runtime {
namespace {

using hbone::testing::KeyAndCert;
using hbone::testing::TestCa;
using ::testing::HasSubstr;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

using test_support::Id;
using test_support::Ids;

// A blocking echo server on 127.0.0.1:0, one thread per connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_, 128), 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~EchoServer() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : workers_) t.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  size_t accepted() const { return accepted_; }

 private:
  void Serve() {
    while (!stop_) {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++accepted_;
      workers_.emplace_back([c] {
        std::vector<char> buf(65536);
        for (;;) {
          ssize_t n = read(c, buf.data(), buf.size());
          if (n <= 0) break;
          ssize_t off = 0;
          while (off < n) {
            ssize_t w = write(c, buf.data() + off, static_cast<size_t>(n - off));
            if (w <= 0) break;
            off += w;
          }
        }
        shutdown(c, SHUT_WR);
        close(c);
      });
    }
  }
  int fd_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

int ConnectTo(const SocketAddress& addr) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(fd, addr.sockaddr_ptr(), addr.size()) != 0) {
    close(fd);
    return -1;
  }
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until EOF (or error); `*clean` says whether it was a clean EOF.
std::string ReadToEof(int fd, bool* clean = nullptr) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (clean != nullptr) *clean = n == 0;
    return out;
  }
}

// RawConnect sends one CONNECT (with `baggage` when not empty) over a
// blocking mTLS connection driven by plain nghttp2, as another HBONE client
// (ztunnel) would, and returns the response headers it got ("" values for
// those absent), e.g. {":status", "200"}, {"baggage", ...}.
std::map<std::string, std::string> RawConnect(SSL_CTX* ctx, const SocketAddress& server,
                                              std::string authority, std::string baggage) {
  std::map<std::string, std::string> got;
  int fd = ConnectTo(server);
  if (fd < 0) return got;
  tls::UniquePtr<SSL> ssl(SSL_new(ctx));
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) != 1) {
    close(fd);
    return got;
  }
  struct State {
    std::map<std::string, std::string>* got;
    bool done = false;
  } st{&got};
  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
              const uint8_t* v, size_t vl, uint8_t, void* ud) {
        if (f->hd.stream_id == 1) {
          (*static_cast<State*>(ud)->got)[std::string(reinterpret_cast<const char*>(n), nl)] =
              std::string(reinterpret_cast<const char*>(v), vl);
        }
        return 0;
      });
  nghttp2_session_callbacks_set_on_frame_recv_callback(
      cbs, [](nghttp2_session*, const nghttp2_frame* f, void* ud) {
        if (f->hd.type == NGHTTP2_HEADERS && f->hd.stream_id == 1) {
          static_cast<State*>(ud)->done = true;
        }
        return 0;
      });
  nghttp2_session* h2 = nullptr;
  nghttp2_session_client_new(&h2, cbs, &st);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, nullptr, 0);
  std::string method = "CONNECT", m_name = ":method", a_name = ":authority", b_name = "baggage";
  std::vector<nghttp2_nv> nva = {
      {reinterpret_cast<uint8_t*>(m_name.data()), reinterpret_cast<uint8_t*>(method.data()),
       m_name.size(), method.size(), NGHTTP2_NV_FLAG_NONE},
      {reinterpret_cast<uint8_t*>(a_name.data()), reinterpret_cast<uint8_t*>(authority.data()),
       a_name.size(), authority.size(), NGHTTP2_NV_FLAG_NONE}};
  if (!baggage.empty()) {
    nva.push_back({reinterpret_cast<uint8_t*>(b_name.data()),
                   reinterpret_cast<uint8_t*>(baggage.data()), b_name.size(), baggage.size(),
                   NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_submit_headers(h2, 0, -1, nullptr, nva.data(), nva.size(), nullptr);
  for (int i = 0; i < 100 && !st.done; ++i) {
    const uint8_t* data;
    ssize_t len;
    while ((len = nghttp2_session_mem_send(h2, &data)) > 0) {
      SSL_write(ssl.get(), data, static_cast<int>(len));
    }
    uint8_t buf[16384];
    int n = SSL_read(ssl.get(), buf, sizeof(buf));  // SO_RCVTIMEO bounds the wait
    if (n <= 0) break;
    nghttp2_session_mem_recv(h2, buf, static_cast<size_t>(n));
  }
  nghttp2_session_del(h2);
  close(fd);
  return got;
}

class HboneProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    metrics_ = std::make_shared<hbone::Metrics>();
  }

  void TearDown() override {
    Stop();
    forwarder_.reset();
    client_.reset();
    server_.reset();
    // Let deferred deletions run.
    loop_->RunFor(absl::Milliseconds(20));
  }

  LogSink Sink() {
    return [this](LogLevel level, absl::string_view component, absl::string_view msg) {
      if (component != "access") return;
      std::lock_guard<std::mutex> lock(mu_);
      logs_.push_back(absl::StrCat(level == LogLevel::kError ? "ERROR " : "INFO ", msg));
    };
  }

  void StartPair(std::vector<std::string> allow = {}, std::vector<std::string> expect = {kServerId},
             std::string authority = "", absl::Duration idle = absl::Minutes(5)) {
    ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.ssl_ctx = server_ctx_.get();
    for (const std::string& a : allow) so.allow.push_back(Id(a));
    so.log = Sink();
    so.metrics = metrics_;
    so.workload = server_workload_;
    if (!server_identity_.empty()) so.identity = Id(server_identity_);
    so.annotate = server_annotate_;
    so.route = server_route_;
    so.authorize = server_authorize_;
    auto server = HboneServer::New(loop_.get(), so);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);

    ClientOptions co;
    co.ssl_ctx = client_ctx_.get();
    co.identity = Id(kClientId);
    co.log = Sink();
    co.metrics = metrics_;
    co.idle_timeout = idle;
    auto client = HboneClient::New(loop_.get(), co);
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);

    ForwarderOptions fo;
    fo.listen = "127.0.0.1:0";
    fo.target.via = server_->address();
    fo.target.authority = authority.empty() ? echo_.address() : authority;
    fo.target.expected_identities = Ids(expect);
    fo.target.source_workload = source_workload_;
    fo.target.destination_workload = destination_workload_;
    fo.target.destination_service = destination_service_;
    fo.target.extra_headers = extra_headers_;
    auto fwd = HboneForwarder::New(loop_.get(), client_.get(), fo);
    ASSERT_TRUE(fwd.ok()) << fwd.status();
    forwarder_ = std::move(*fwd);
    Resume();
  }

  void Resume() {
    thread_ = std::thread([this] { loop_->Run(); });
  }

  // StatsOf reads a server's counters on the loop thread (its owner) while
  // the loop runs on thread_; read from here directly, that raced
  // (ThreadSanitizer).
  ServerStats StatsOf(HboneServer* server) {
    std::promise<ServerStats> got;
    loop_->Post([&] { got.set_value(server->stats()); });
    return got.get_future().get();
  }

  // One echo round trip through the forwarder.
  bool Echo(const std::string& msg) {
    int fd = ConnectTo(forwarder_->address());
    if (fd < 0) return false;
    bool ok = WriteAll(fd, msg);
    shutdown(fd, SHUT_WR);
    ok = ok && ReadToEof(fd) == msg;
    close(fd);
    return ok;
  }

  void Stop() {
    if (thread_.joinable()) {
      loop_->Stop();
      thread_.join();
    }
  }

  std::vector<std::string> Logs() {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }

  // Waits (bounded) until `n` access log lines exist.
  std::vector<std::string> WaitLogs(size_t n) {
    for (int i = 0; i < 500; ++i) {
      auto l = Logs();
      if (l.size() >= n) return l;
      usleep(10000);
    }
    return Logs();
  }

  TestCa ca_;
  KeyAndCert client_leaf_ = ca_.Leaf(kClientId);
  KeyAndCert server_leaf_ = ca_.Leaf(kServerId);
  tls::UniquePtr<SSL_CTX> client_ctx_ = ca_.Context(client_leaf_, false);
  tls::UniquePtr<SSL_CTX> server_ctx_ = ca_.Context(server_leaf_, true);
  EchoServer echo_;
  std::unique_ptr<EventLoop> loop_;
  std::shared_ptr<hbone::Metrics> metrics_;
  std::unique_ptr<HboneServer> server_;
  std::unique_ptr<HboneClient> client_;
  std::unique_ptr<HboneForwarder> forwarder_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> logs_;
  // Workload metadata for Setup (empty: none, as before).
  hbone::WorkloadInfo server_workload_;
  std::string server_identity_;
  std::function<void(hbone::ConnectionRecord*)> server_annotate_;
  std::function<absl::StatusOr<Upstream>(const InboundStream&)> server_route_;
  std::function<absl::Status(const InboundStream&)> server_authorize_;
  hbone::WorkloadInfo source_workload_;
  hbone::WorkloadInfo destination_workload_;
  std::string destination_service_;
  std::vector<hbone::Header> extra_headers_;
};

hbone::WorkloadInfo Info(const std::string& name, const std::string& ns) {
  hbone::WorkloadInfo w;
  w.name = name;
  w.ns = ns;
  w.canonical_service = name + "-svc";
  w.canonical_revision = "v1";
  w.cluster = "Kubernetes";
  return w;
}

std::pair<std::string, std::string> InOut(const std::vector<std::string>& logs) {
  std::string in, out;
  for (const std::string& l : logs) {
    if (l.find("direction=\"inbound\"") != std::string::npos) in = l;
    if (l.find("direction=\"outbound\"") != std::string::npos) out = l;
  }
  return {in, out};
}

TEST_F(HboneProxyTest, WorkloadMetadataTravelsAsBaggageIntoBothRecords) {
  source_workload_ = Info("shell", "front");
  destination_workload_ = Info("echo", "back");
  destination_service_ = "echo.back.svc.cluster.local";
  server_workload_ = Info("echo", "back");
  server_identity_ = kServerId;
  // A raw baggage next to the typed one is not sent twice.
  extra_headers_ = {{"baggage", "k8s.namespace.name=forged"}};
  StartPair();
  ASSERT_TRUE(Echo("meta"));
  auto [in, out] = InOut(WaitLogs(2));
  // The server learned the client's workload from the CONNECT's baggage.
  EXPECT_THAT(
      in, HasSubstr(absl::StrCat("src.workload=\"shell\" src.namespace=\"front\" src.identity=\"",
                                 kClientId, "\" src.cluster=\"Kubernetes\" dst.addr=")));
  EXPECT_THAT(in, HasSubstr(absl::StrCat("dst.workload=\"echo\" dst.namespace=\"back\" "
                                         "dst.identity=\"",
                                         kServerId,
                                         "\" dst.cluster=\"Kubernetes\" direction=\"inbound\"")));
  EXPECT_THAT(out, HasSubstr("src.workload=\"shell\" src.namespace=\"front\""));
  EXPECT_THAT(out, HasSubstr("dst.service=\"echo.back.svc.cluster.local\" dst.workload=\"echo\" "
                             "dst.namespace=\"back\""));
  std::string prom = metrics_->Prometheus();
  EXPECT_THAT(prom, HasSubstr("reporter=\"destination\",source_workload=\"shell\","
                              "source_canonical_service=\"shell-svc\",source_canonical_revision="
                              "\"v1\",source_workload_namespace=\"front\""));
  EXPECT_THAT(prom, HasSubstr("reporter=\"source\",source_workload=\"shell\""));
  EXPECT_THAT(prom, HasSubstr("destination_workload=\"echo\""));
  EXPECT_THAT(prom, ::testing::Not(HasSubstr("forged")));
  EXPECT_THAT(prom, ::testing::Not(HasSubstr("workload=\"unknown\"")));
}

// The lines of Prometheus text whose labels include `label`.
std::vector<std::string> PromLinesWith(const std::string& prom, const std::string& label) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(prom, '\n')) {
    if (absl::StrContains(l, label) && !absl::StartsWith(l, "#")) out.emplace_back(l);
  }
  return out;
}

TEST_F(HboneProxyTest, ClientRecordsTheServersWorkloadFromThe200sBaggage) {
  server_workload_ = Info("echo", "back");
  destination_service_ = "echo.back.svc.cluster.local";
  // The client knows nothing about the destination workload.
  StartPair();
  ASSERT_TRUE(Echo("who"));
  auto [in, out] = InOut(WaitLogs(2));
  ASSERT_FALSE(out.empty());
  EXPECT_THAT(out, HasSubstr("dst.service=\"echo.back.svc.cluster.local\" dst.workload=\"echo\" "
                             "dst.namespace=\"back\""));
  EXPECT_THAT(out, HasSubstr(" dst.cluster=\"Kubernetes\" "));
  EXPECT_THAT(out, HasSubstr("INFO connection complete"));
  // The source reporter's closed-connection and byte series are labelled
  // with it.
  std::vector<std::string> src = PromLinesWith(metrics_->Prometheus(), "reporter=\"source\"");
  bool closed = false, bytes = false;
  for (const std::string& l : src) {
    if (absl::StartsWith(l, "istio_tcp_connections_closed_total")) {
      closed = true;
      EXPECT_THAT(l, HasSubstr("destination_workload=\"echo\""));
      EXPECT_THAT(l, HasSubstr("destination_workload_namespace=\"back\""));
      EXPECT_THAT(l, HasSubstr("destination_canonical_service=\"echo-svc\""));
    }
    if (absl::StartsWith(l, "istio_tcp_sent_bytes_total")) {
      bytes = true;
      EXPECT_THAT(l, HasSubstr("destination_workload=\"echo\""));
    }
  }
  EXPECT_TRUE(closed) << metrics_->Prometheus();
  EXPECT_TRUE(bytes) << metrics_->Prometheus();
}

TEST_F(HboneProxyTest, TheClientsOwnDestinationWorkloadWinsOverThe200sBaggage) {
  server_workload_ = Info("echo", "back");
  hbone::WorkloadInfo known;
  known.name = "from-directory";
  destination_workload_ = known;
  StartPair();
  ASSERT_TRUE(Echo("who"));
  auto [in, out] = InOut(WaitLogs(2));
  ASSERT_FALSE(out.empty());
  EXPECT_THAT(out, HasSubstr(" dst.workload=\"from-directory\" "));
  // No field-by-field mix with what the server said.
  EXPECT_THAT(out, ::testing::Not(HasSubstr("dst.namespace")));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("\"echo\"")));
}

TEST_F(HboneProxyTest, ServerAnswersItsWorkloadAsBaggageOnThe200) {
  server_workload_ = Info("echo", "back");
  StartPair();
  std::map<std::string, std::string> got =
      RawConnect(client_ctx_.get(), server_->address(), echo_.address(),
                 "k8s.namespace.name=raw,k8s.pod.name=ztunnel-peer");
  EXPECT_EQ(got[":status"], "200");
  EXPECT_EQ(got["baggage"],
            "k8s.cluster.name=Kubernetes,k8s.namespace.name=back,k8s.deployment.name=echo,"
            "service.name=echo-svc,service.version=v1");
  // The request's baggage became the record's source workload.
  auto [in, out] = InOut(WaitLogs(1));
  EXPECT_THAT(in, HasSubstr(" src.workload=\"ztunnel-peer\" src.namespace=\"raw\" "));
}

TEST_F(HboneProxyTest, ServerWithoutWorkloadSendsNoBaggage) {
  StartPair();
  std::map<std::string, std::string> got =
      RawConnect(client_ctx_.get(), server_->address(), echo_.address(), "");
  EXPECT_EQ(got[":status"], "200");
  EXPECT_EQ(got.count("baggage"), 0u);
}

TEST_F(HboneProxyTest, BadBaggageIsIgnoredAndTheHostCanAnnotate) {
  extra_headers_ = {{"baggage", "k8s.pod.name=%zz, k8s.namespace.name = ok ,junk"}};
  server_annotate_ = [](hbone::ConnectionRecord* r) {
    if (r->src.cluster.empty()) r->src.cluster = "from-directory";
  };
  StartPair();
  ASSERT_TRUE(Echo("first"));
  auto [in, out] = InOut(WaitLogs(2));
  EXPECT_THAT(in, HasSubstr(" src.namespace=\"ok\" "));
  EXPECT_THAT(in, ::testing::Not(HasSubstr("src.workload")));
  EXPECT_THAT(in, HasSubstr(" src.cluster=\"from-directory\" "));
  // The client records nothing it was not told.
  EXPECT_THAT(out, ::testing::Not(HasSubstr("workload")));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("namespace")));
}

TEST_F(HboneProxyTest, OversizeBaggageStillTunnelsWithoutMetadata) {
  extra_headers_ = {{"baggage", "k8s.pod.name=x," + std::string(hbone::kMaxBaggageSize, 'a')}};
  StartPair();
  ASSERT_TRUE(Echo("big"));
  auto [in, out] = InOut(WaitLogs(2));
  ASSERT_FALSE(in.empty());
  EXPECT_THAT(in, ::testing::Not(HasSubstr("src.workload")));
  EXPECT_THAT(in, HasSubstr("INFO connection complete"));
}

TEST_F(HboneProxyTest, EchoThroughTunnelWithHalfCloseAndAccessLogs) {
  StartPair();
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "hello through hbone"));
  shutdown(fd, SHUT_WR);  // TCP EOF -> END_STREAM -> server shuts the upstream
  bool clean = false;
  EXPECT_EQ(ReadToEof(fd, &clean), "hello through hbone");
  EXPECT_TRUE(clean) << "the echo server's EOF comes back as a clean EOF";
  close(fd);
  auto logs = WaitLogs(2);
  ASSERT_EQ(logs.size(), 2u);
  std::string inbound = logs[0].find("inbound") != std::string::npos ? logs[0] : logs[1];
  std::string outbound = logs[0].find("outbound") != std::string::npos ? logs[0] : logs[1];
  EXPECT_THAT(outbound, HasSubstr("INFO connection complete src.addr=127.0.0.1:"));
  EXPECT_THAT(outbound, HasSubstr(absl::StrCat("src.identity=\"", kClientId, "\"")));
  EXPECT_THAT(outbound, HasSubstr(absl::StrCat("dst.addr=", server_->address().ToString(),
                                               " dst.hbone_addr=", echo_.address())));
  EXPECT_THAT(outbound, HasSubstr(absl::StrCat("dst.identity=\"", kServerId, "\"")));
  EXPECT_THAT(outbound,
              HasSubstr("direction=\"outbound\" bytes_sent=19 bytes_recv=19 duration=\""));
  EXPECT_THAT(inbound, HasSubstr(absl::StrCat("src.identity=\"", kClientId, "\"")));
  EXPECT_THAT(inbound, HasSubstr("direction=\"inbound\" bytes_sent=19 bytes_recv=19"));
  EXPECT_EQ(metrics_->Total("istio_tcp_connections_opened_total"), 2u);
  EXPECT_EQ(metrics_->Total("istio_tcp_connections_closed_total"), 2u);
  EXPECT_EQ(metrics_->Total("istio_tcp_received_bytes_total"), 38u);
  EXPECT_EQ(metrics_->Total("istio_tcp_connections_failed_total"), 0u);
  EXPECT_THAT(metrics_->Prometheus(), HasSubstr("reporter=\"destination\""));
}

TEST_F(HboneProxyTest, BulkTransferBothWaysIsExact) {
  StartPair();
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  std::string data(8 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>((i * 131) ^ (i >> 9));
  std::string got;
  std::thread reader([&] { got = ReadToEof(fd); });
  ASSERT_TRUE(WriteAll(fd, data));
  shutdown(fd, SHUT_WR);
  reader.join();
  close(fd);
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(HboneProxyTest, SequentialAndParallelConnectionsShareOnePooledConnection) {
  StartPair();
  for (int i = 0; i < 5; ++i) {
    int fd = ConnectTo(forwarder_->address());
    ASSERT_GE(fd, 0);
    std::string msg = "msg" + std::to_string(i);
    ASSERT_TRUE(WriteAll(fd, msg));
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(ReadToEof(fd), msg);
    close(fd);
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 20; ++i) {
    threads.emplace_back([&, i] {
      int fd = ConnectTo(forwarder_->address());
      if (fd < 0) return;
      std::string msg(1000 + i, static_cast<char>('a' + i));
      WriteAll(fd, msg);
      shutdown(fd, SHUT_WR);
      if (ReadToEof(fd) == msg) ++ok;
      close(fd);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 20);
  WaitLogs(50);
  Stop();
  PoolStats st = client_->stats();
  EXPECT_EQ(st.dials, 1u) << "one dial per key; everything else reuses it";
  EXPECT_EQ(st.streams, 25u);
  EXPECT_EQ(st.connections, 1u);
}

TEST_F(HboneProxyTest, UnauthorizedClientGets401AndNoBytes) {
  StartPair(/*allow=*/{"spiffe://cluster.local/ns/default/sa/someone-else"});
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  // The reset may already be there when we write; then the write reports it
  // (and a later read sees EOF).
  bool wrote = WriteAll(fd, "secret");
  bool clean = true;
  EXPECT_EQ(ReadToEof(fd, &clean), "");
  close(fd);
  auto logs = WaitLogs(2);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_FALSE(wrote && clean) << "a refused tunnel is reset, not closed cleanly";
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("is not allowed"));
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("401"));
  EXPECT_EQ(metrics_->Total("istio_tcp_connections_failed_total"), 2u);
}

// Recheck (ztunnel's policy watcher): a stream allowed when it started and
// denied by a later policy is ended at once, and its access line says why;
// streams still allowed are left alone.
TEST_F(HboneProxyTest, RecheckEndsStreamsNoLongerAllowed) {
  std::atomic<bool> deny{false};
  std::atomic<int> checks{0};
  server_authorize_ = [&](const InboundStream& s) -> absl::Status {
    ++checks;
    if (deny && s.peer_identity.str() == kClientId) {
      return absl::PermissionDeniedError("explicitly denied by ns1/deny-client");
    }
    return absl::OkStatus();
  };
  StartPair();
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "before"));
  std::string got;
  char buf[16];
  while (got.size() < 6) {
    ssize_t n = read(fd, buf, sizeof(buf));
    ASSERT_GT(n, 0);
    got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "before");
  auto recheck = [&] {
    std::promise<size_t> closed;
    loop_->Post([&] { closed.set_value(server_->Recheck()); });
    return closed.get_future().get();
  };
  EXPECT_EQ(recheck(), 0u);  // still allowed: untouched
  EXPECT_EQ(checks.load(), 2);
  ASSERT_TRUE(WriteAll(fd, "still open"));
  deny = true;
  EXPECT_EQ(recheck(), 1u);
  bool clean = true;
  ReadToEof(fd, &clean);
  EXPECT_FALSE(clean) << "the client's TCP connection is reset, not closed cleanly";
  close(fd);
  auto logs = WaitLogs(2);
  ASSERT_EQ(logs.size(), 2u);
  std::string inbound = absl::StrContains(logs[0], "inbound") ? logs[0] : logs[1];
  EXPECT_THAT(inbound, HasSubstr("ERROR connection complete"));
  EXPECT_THAT(inbound, HasSubstr("error=\"connection closed due to policy change: explicitly "
                                 "denied by ns1/deny-client\""));
  EXPECT_EQ(recheck(), 0u);  // nothing carried any more
  EXPECT_EQ(StatsOf(server_.get()).policy_closed, 1u);
}

TEST_F(HboneProxyTest, RouteConnectsToTheAddressTheHostPicks) {
  // The :authority is a service VIP nothing listens on; the host's route
  // picks the echo server as its endpoint, as a waypoint would.
  std::string seen_authority, seen_peer;
  server_route_ = [&](const InboundStream& s) -> absl::StatusOr<SocketAddress> {
    seen_authority = s.authority;
    seen_peer = s.peer_identity.str();
    return SocketAddress::Parse(echo_.address());
  };
  StartPair({}, {kServerId}, "198.18.250.1:80");
  EXPECT_TRUE(Echo("through the route"));
  Stop();
  EXPECT_EQ(seen_authority, "198.18.250.1:80");
  EXPECT_EQ(seen_peer, kClientId);
}

TEST_F(HboneProxyTest, RouteErrorRefusesWith503AndConnectsNothing) {
  server_route_ = [](const InboundStream&) -> absl::StatusOr<SocketAddress> {
    return absl::UnavailableError("no healthy endpoint for the service");
  };
  StartPair();
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  bool clean = true;
  EXPECT_EQ(ReadToEof(fd, &clean), "");
  EXPECT_FALSE(clean);
  close(fd);
  auto logs = WaitLogs(2);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("503"));
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("no healthy endpoint for the service"));
  EXPECT_EQ(echo_.accepted(), 0u);
}

TEST_F(HboneProxyTest, UnreachableUpstreamGets503) {
  // A port nothing listens on: bind, note it, close.
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  std::string dead = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  close(probe);
  StartPair({}, {kServerId}, dead);
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  bool clean = true;
  EXPECT_EQ(ReadToEof(fd, &clean), "");
  EXPECT_FALSE(clean);
  close(fd);
  auto logs = WaitLogs(2);
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("503"));
  EXPECT_THAT(logs[0] + logs[1], HasSubstr("Connection refused"));
}

TEST_F(HboneProxyTest, WrongServerIdentityNeverCarriesBytes) {
  StartPair({}, {"spiffe://cluster.local/ns/prod/sa/db"});
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  bool wrote = WriteAll(fd, "secret");
  bool clean = true;
  EXPECT_EQ(ReadToEof(fd, &clean), "");
  EXPECT_FALSE(wrote && clean);
  close(fd);
  auto logs = WaitLogs(1);
  ASSERT_GE(logs.size(), 1u);
  EXPECT_THAT(logs[0], HasSubstr("ERROR connection complete"));
  EXPECT_THAT(logs[0], HasSubstr("not one of the expected identities"));
}

TEST_F(HboneProxyTest, IdlePooledConnectionIsReleasedAndRedialed) {
  StartPair({}, {kServerId}, "", absl::Milliseconds(200));
  ASSERT_TRUE(Echo("first"));
  WaitLogs(2);
  usleep(600000);  // > idle timeout: the pool drains the connection
  Stop();
  EXPECT_EQ(client_->stats().connections, 0u);
  EXPECT_EQ(server_->connections(), 0u) << "the server saw the GOAWAY and closed too";
  Resume();
  ASSERT_TRUE(Echo("second"));
  WaitLogs(4);
  Stop();
  EXPECT_EQ(client_->stats().dials, 2u);
}

TEST_F(HboneProxyTest, ServerDrainEndsTheConnectionAndTheClientRedials) {
  StartPair();
  ASSERT_TRUE(Echo("before"));
  WaitLogs(2);
  Stop();
  // A second server; the old one drains (GOAWAY) and stops accepting.
  ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.ssl_ctx = server_ctx_.get();
  auto second = HboneServer::New(loop_.get(), so);
  ASSERT_TRUE(second.ok());
  server_->Drain();
  loop_->RunFor(absl::Milliseconds(100));
  EXPECT_EQ(client_->stats().connections, 0u) << "GOAWAY takes the connection out of the pool";
  forwarder_.reset();
  ForwarderOptions fo;
  fo.listen = "127.0.0.1:0";
  fo.target.via = (*second)->address();
  fo.target.authority = echo_.address();
  fo.target.expected_identities = {Id(kServerId)};
  forwarder_ = *HboneForwarder::New(loop_.get(), client_.get(), fo);
  Resume();
  EXPECT_TRUE(Echo("after"));
  Stop();
  EXPECT_EQ(client_->stats().dials, 2u);
  second->reset();
}

// ---------------------------------------------------------------------------
// HBONE hops: the server (acting as a waypoint, identity kServerId) carries
// each CONNECT on through a second HboneClient to pod B's HBONE server.

constexpr char kPodBId[] = "spiffe://cluster.local/ns/default/sa/pod-b";

class HboneHopTest : public HboneProxyTest {
 protected:
  void TearDown() override {
    Stop();
    forwarder_.reset();
    client_.reset();
    server_.reset();
    hop_client_.reset();
    pod_b_.reset();
    loop_->RunFor(absl::Milliseconds(20));
  }

  LogSink TaggedSink(std::string tag) {
    return [this, tag](LogLevel level, absl::string_view component, absl::string_view msg) {
      if (component != "access") return;
      std::lock_guard<std::mutex> lock(mu_);
      tagged_.push_back(
          absl::StrCat(tag, " ", level == LogLevel::kError ? "ERROR " : "INFO ", msg));
    };
  }
  std::vector<std::string> Tagged(const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const std::string& l : tagged_) {
      if (absl::StartsWith(l, tag + " ")) out.push_back(l);
    }
    return out;
  }
  // Waits (bounded) until `tag` has `n` lines.
  std::vector<std::string> WaitTagged(const std::string& tag, size_t n) {
    for (int i = 0; i < 500; ++i) {
      auto l = Tagged(tag);
      if (l.size() >= n) return l;
      usleep(10000);
    }
    return Tagged(tag);
  }

  // Pod B: an HBONE server that only lets the waypoint (kServerId) in and
  // sends its plain TCP on to `pod_b_upstream` (the echo server by default).
  void StartPodB(const std::string& upstream = "") {
    ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.ssl_ctx = pod_b_ctx_.get();
    so.allow = {Id(kServerId)};
    so.log = TaggedSink("podb");
    so.identity = Id(kPodBId);
    std::string to = upstream.empty() ? echo_.address() : upstream;
    so.route = [to](const InboundStream&) -> absl::StatusOr<Upstream> {
      return SocketAddress::Parse(to);
    };
    auto b = HboneServer::New(loop_.get(), so);
    ASSERT_TRUE(b.ok()) << b.status();
    pod_b_ = std::move(*b);
    pod_b_address_ = pod_b_->address().ToString();
  }

  // The waypoint's client (its own SVID) and a route that hops every CONNECT
  // to `via` with :authority = the echo server and `expect` as identity.
  void SetupHop(const std::string& via, std::vector<std::string> expect = {kPodBId}) {
    ClientOptions co;
    co.ssl_ctx = waypoint_client_ctx_.get();
    co.identity = Id(kServerId);
    co.log = TaggedSink("hop");
    auto c = HboneClient::New(loop_.get(), co);
    ASSERT_TRUE(c.ok());
    hop_client_ = std::move(*c);
    TunnelTarget t;
    t.via = *ambient::SocketAddress::Parse(via);
    t.authority = echo_.address();
    t.expected_identities = Ids(expect);
    t.destination_service = "details.default.svc.cluster.local";
    server_route_ = [this, t](const InboundStream& s) -> absl::StatusOr<Upstream> {
      seen_authority_ = s.authority;
      return Upstream::Hbone(hop_client_.get(), t);
    };
    StartPair({}, {kServerId}, "198.19.0.10:9080");
  }

  KeyAndCert pod_b_leaf_ = ca_.Leaf(kPodBId);
  tls::UniquePtr<SSL_CTX> pod_b_ctx_ = ca_.Context(pod_b_leaf_, true);
  tls::UniquePtr<SSL_CTX> waypoint_client_ctx_ = ca_.Context(server_leaf_, false);
  std::unique_ptr<HboneServer> pod_b_;
  std::unique_ptr<HboneClient> hop_client_;
  std::vector<std::string> tagged_;
  std::string seen_authority_;
  std::string pod_b_address_;
};

TEST_F(HboneHopTest, CarriesBytesToTheNextHopWithTheWaypointsIdentity) {
  StartPodB();
  SetupHop(pod_b_->address().ToString());
  ASSERT_TRUE(Echo(std::string(200000, 'w')));
  auto hop = WaitTagged("hop", 1);
  auto podb = WaitTagged("podb", 1);
  Stop();
  EXPECT_EQ(seen_authority_, "198.19.0.10:9080");
  ASSERT_EQ(hop.size(), 1u);
  // The waypoint's outbound leg: to pod B's 15008 with the endpoint as
  // :authority, pod B's identity verified, the whole payload both ways.
  EXPECT_THAT(hop[0], HasSubstr("INFO connection complete"));
  EXPECT_THAT(hop[0], HasSubstr("src.identity=\"" + std::string(kServerId) + "\""));
  EXPECT_THAT(hop[0], HasSubstr("dst.addr=" + pod_b_->address().ToString()));
  EXPECT_THAT(hop[0], HasSubstr("dst.hbone_addr=" + echo_.address()));
  EXPECT_THAT(hop[0], HasSubstr("dst.identity=\"" + std::string(kPodBId) + "\""));
  EXPECT_THAT(hop[0], HasSubstr("dst.service=\"details.default.svc.cluster.local\""));
  EXPECT_THAT(hop[0], HasSubstr("bytes_sent=200000 bytes_recv=200000"));
  ASSERT_EQ(podb.size(), 1u);
  // Pod B saw the waypoint, not the original client.
  EXPECT_THAT(podb[0], HasSubstr("INFO connection complete"));
  EXPECT_THAT(podb[0], HasSubstr("src.identity=\"" + std::string(kServerId) + "\""));
  // The waypoint's inbound leg: from the client, :authority the VIP.
  auto logs = WaitLogs(2);
  std::string all = absl::StrJoin(logs, "\n");
  EXPECT_THAT(all, HasSubstr("src.identity=\"" + std::string(kClientId) + "\""));
  EXPECT_THAT(all, HasSubstr("dst.hbone_addr=198.19.0.10:9080"));
  EXPECT_EQ(server_->stats().pending_dials, 0u);
}

TEST_F(HboneHopTest, UpstreamRefusalIs503DownstreamWithTheReason) {
  // Pod B lets only the waypoint in; the waypoint's client here presents
  // the *client's* certificate, so pod B answers 401.
  StartPodB();
  waypoint_client_ctx_ = ca_.Context(client_leaf_, false);
  SetupHop(pod_b_->address().ToString());
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  WriteAll(fd, "never delivered");
  EXPECT_EQ(ReadToEof(fd), "");
  close(fd);
  auto logs = WaitLogs(2);
  Stop();
  std::string all = absl::StrJoin(logs, "\n");
  // The downstream client got 503 (not a 200 followed by a reset) ...
  EXPECT_THAT(all, HasSubstr("server answered 503 to CONNECT"));
  // ... and the waypoint's inbound record says why.
  EXPECT_THAT(all, HasSubstr("upstream HBONE " + pod_b_->address().ToString() +
                             " refused the CONNECT (HTTP 401)"));
  EXPECT_EQ(echo_.accepted(), 0u);
  EXPECT_EQ(server_->stats().pending_dials, 0u);
}

TEST_F(HboneHopTest, UpstreamDialFailureIs503Downstream) {
  int probe = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  std::string dead = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  close(probe);
  SetupHop(dead);
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  bool clean = true;
  EXPECT_EQ(ReadToEof(fd, &clean), "");
  EXPECT_FALSE(clean);
  close(fd);
  auto logs = WaitLogs(2);
  Stop();
  std::string all = absl::StrJoin(logs, "\n");
  EXPECT_THAT(all, HasSubstr("server answered 503 to CONNECT"));
  EXPECT_THAT(all, HasSubstr("upstream HBONE " + dead + " failed"));
  EXPECT_THAT(all, HasSubstr("Connection refused"));
}

TEST_F(HboneHopTest, DownstreamResetCancelsTheUpstreamStream) {
  // Pod B's own upstream never connects, so pod B never answers the
  // waypoint's CONNECT: the hop waits for its 200.
  test_support::FullListener blackhole;
  StartPodB(blackhole.address);
  SetupHop(pod_b_->address().ToString());
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "x"));
  for (int i = 0; i < 300 && StatsOf(pod_b_.get()).pending_dials == 0; ++i) usleep(10000);
  ASSERT_EQ(StatsOf(pod_b_.get()).pending_dials, 1u) << "pod B got the waypoint's CONNECT";
  EXPECT_EQ(StatsOf(server_.get()).pending_dials, 1u) << "the hop waits for pod B's 200";
  // The client resets: the forwarder resets its stream to the waypoint.
  AbortClose(fd);
  auto podb = WaitTagged("podb", 1);
  ASSERT_EQ(podb.size(), 1u);
  EXPECT_THAT(podb[0], HasSubstr("upstream connect cancelled: the client reset the stream"));
  auto hop = WaitTagged("hop", 1);
  ASSERT_EQ(hop.size(), 1u);
  EXPECT_THAT(hop[0], HasSubstr("ERROR"));
  Stop();
  EXPECT_EQ(server_->stats().pending_dials, 0u);
  EXPECT_EQ(server_->stats().cancelled_dials, 1u);
  EXPECT_EQ(pod_b_->stats().pending_dials, 0u);
  EXPECT_EQ(pod_b_->stats().cancelled_dials, 1u);
}

TEST_F(HboneHopTest, DownstreamResetBeforeTheUpstreamConnectionIsUpCancelsTheWait) {
  // The waypoint's dial to "pod B" never completes (full backlog).
  test_support::FullListener blackhole;
  SetupHop(blackhole.address);
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "x"));
  for (int i = 0; i < 300 && StatsOf(server_.get()).pending_dials == 0; ++i) usleep(10000);
  ASSERT_EQ(StatsOf(server_.get()).pending_dials, 1u);
  AbortClose(fd);
  auto hop = WaitTagged("hop", 1);
  ASSERT_EQ(hop.size(), 1u);
  EXPECT_THAT(hop[0], HasSubstr("tunnel cancelled before its stream opened"));
  Stop();
  EXPECT_EQ(server_->stats().pending_dials, 0u);
  EXPECT_EQ(server_->stats().cancelled_dials, 1u);
}

TEST_F(HboneHopTest, UpstreamResetEndsTheDownstreamStream) {
  StartPodB();
  SetupHop(pod_b_->address().ToString());
  int fd = ConnectTo(forwarder_->address());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(WriteAll(fd, "ping"));
  char buf[4];
  ASSERT_EQ(read(fd, buf, sizeof(buf)), 4) << "the tunnel is up";
  // Pod B goes away mid-stream: its connections are aborted.
  Stop();
  pod_b_.reset();
  Resume();
  // The downstream stream ends at once (our HBONE layer, like ztunnel,
  // reads a CANCEL reset as the end of the stream), not after a timeout.
  absl::Time t0 = absl::Now();
  ReadToEof(fd);
  EXPECT_LT(absl::Now() - t0, absl::Seconds(5));
  close(fd);
  auto hop = WaitTagged("hop", 1);
  ASSERT_EQ(hop.size(), 1u);
  EXPECT_THAT(hop[0], HasSubstr("ERROR"));
  auto logs = WaitLogs(2);
  Stop();
  ASSERT_EQ(logs.size(), 2u);
  std::string all = absl::StrJoin(logs, "\n");
  // The waypoint's inbound record says what happened upstream.
  EXPECT_THAT(all, HasSubstr("ERROR connection complete"));
  EXPECT_THAT(all, HasSubstr("direction=\"inbound\""));
  EXPECT_THAT(all, HasSubstr("error=\"upstream HBONE " + pod_b_address_ + " ended: "));
}

}  // namespace
}  // namespace ambient::runtime
