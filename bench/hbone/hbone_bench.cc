// Google Benchmark for HBONE:
//  - BM_CoreBulk: the sans-IO core alone, a client and a server Connection
//    paired in memory on one thread, moving a stream's bytes one way: the
//    CPU cost of TLS 1.3 + HTTP/2 for both ends together.
//  - BM_PooledStream: a new CONNECT stream on a pooled connection, 1-byte
//    echo through it, close (client loop in this thread; server + upstream
//    echo on a second thread; loopback TCP between them).
//  - BM_NewConnection: the same with a new mTLS connection every time.
// Percentiles of the per-iteration wall time are reported as counters.
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "ambient/hbone/connection.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/socket.h"
#include "hbone/test_pki.h"

namespace {

using ambient::hbone::Connection;
using ambient::hbone::ConnectionOptions;
using ambient::hbone::ConnectRequest;
using ambient::hbone::Event;
using ambient::hbone::Role;
using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;
namespace rt = ambient::runtime;

constexpr char kServerId[] = "spiffe://cluster.local/ns/bench/sa/server";
constexpr char kClientId[] = "spiffe://cluster.local/ns/bench/sa/client";

struct Pki {
  TestCa ca;
  KeyAndCert server = ca.Leaf(kServerId);
  KeyAndCert client = ca.Leaf(kClientId);
  bssl::UniquePtr<SSL_CTX> server_ctx = ca.Context(server, true);
  bssl::UniquePtr<SSL_CTX> client_ctx = ca.Context(client, false);
};

Pki& GetPki() {
  static Pki* pki = new Pki;
  return *pki;
}

void Shuttle(Connection* a, Connection* b) {
  for (;;) {
    bool moved = false;
    for (auto [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
      auto out = from->PendingOutput();
      if (out.empty()) continue;
      size_t n = out.size();
      (void)to->Receive(out, absl::UnixEpoch());
      from->ConsumeOutput(n);
      moved = true;
    }
    if (!moved) return;
  }
}

void BM_CoreBulk(benchmark::State& state) {
  Pki& pki = GetPki();
  ConnectionOptions co;
  co.role = Role::kClient;
  co.ssl_ctx = pki.client_ctx.get();
  co.expected_identities = {kServerId};
  ConnectionOptions so;
  so.role = Role::kServer;
  so.ssl_ctx = pki.server_ctx.get();
  auto client = *Connection::New(std::move(co));
  auto server = *Connection::New(std::move(so));
  client->Start(absl::UnixEpoch());
  server->Start(absl::UnixEpoch());
  Shuttle(client.get(), server.get());
  ConnectRequest req;
  req.authority = "198.18.0.1:80";
  auto cid = *client->OpenStream(req);
  Shuttle(client.get(), server.get());
  Event ev;
  int32_t sid = 0;
  while (server->PollEvent(&ev)) {
    if (ev.type == Event::Type::kStreamRequest) sid = ev.stream;
  }
  (void)server->AcceptStream(sid);
  Shuttle(client.get(), server.get());
  while (client->PollEvent(&ev)) {
  }
  std::vector<uint8_t> chunk(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) {
    size_t off = 0;
    while (off < chunk.size()) {
      off += *client->StreamWrite(cid, absl::MakeConstSpan(chunk).subspan(off));
      Shuttle(client.get(), server.get());
      for (auto f = server->StreamPeek(sid); !f.empty(); f = server->StreamPeek(sid)) {
        benchmark::DoNotOptimize(f.data());
        server->StreamConsume(sid, f.size());
      }
      Shuttle(client.get(), server.get());
    }
    while (client->PollEvent(&ev)) {
    }
    while (server->PollEvent(&ev)) {
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_CoreBulk)->Arg(16 << 10)->Arg(256 << 10)->Arg(1 << 20);

// An echo server living on an EventLoop (no thread per connection).
class LoopEcho {
 public:
  explicit LoopEcho(rt::EventLoop* loop) : loop_(loop), watch_(loop, [this](uint32_t) { Accept(); }) {
    auto addr = *rt::ParseSocketAddress("127.0.0.1:0");
    fd_ = *rt::Listen(addr);
    address_ = rt::LocalAddress(fd_)->ToString();
    (void)watch_.Start(fd_, EPOLLIN);
  }
  ~LoopEcho() {
    watch_.Stop();
    close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  struct Conn {
    int fd;
    std::unique_ptr<rt::IoWatch> watch;
  };
  void Accept() {
    for (;;) {
      auto c = rt::Accept(fd_);
      if (!c.ok()) return;
      int cfd = *c;
      auto* conn = new Conn{cfd, nullptr};
      conn->watch = std::make_unique<rt::IoWatch>(loop_, [this, conn](uint32_t) {
        char buf[4096];
        ssize_t n = read(conn->fd, buf, sizeof(buf));
        if (n > 0) {
          (void)!write(conn->fd, buf, static_cast<size_t>(n));
          return;
        }
        if (n < 0 && errno == EAGAIN) return;
        conn->watch->Stop();
        close(conn->fd);
        loop_->Defer([conn] { delete conn; });
      });
      (void)conn->watch->Start(cfd, EPOLLIN);
    }
  }
  rt::EventLoop* loop_;
  rt::IoWatch watch_;
  int fd_;
  std::string address_;
};

// Server side: an HboneServer and an echo upstream on their own loop thread.
struct ServerSide {
  std::unique_ptr<rt::EventLoop> loop = *rt::EventLoop::New();
  std::unique_ptr<LoopEcho> echo;
  std::unique_ptr<rt::HboneServer> server;
  std::thread thread;
  std::string via;
  std::string echo_addr;
  ServerSide() {
    echo = std::make_unique<LoopEcho>(loop.get());
    rt::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.ssl_ctx = GetPki().server_ctx.get();
    server = *rt::HboneServer::New(loop.get(), so);
    via = server->address().ToString();
    echo_addr = echo->address();
    thread = std::thread([this] { loop->Run(); });
  }
  ~ServerSide() {
    loop->Stop();
    thread.join();
    server.reset();
    echo.reset();
    loop->RunFor(absl::Milliseconds(5));
  }
};

void Percentiles(benchmark::State& state, std::vector<double>& us) {
  if (us.empty()) return;
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<size_t>(p * (us.size() - 1))]; };
  state.counters["p50_us"] = pct(0.5);
  state.counters["p90_us"] = pct(0.9);
  state.counters["p99_us"] = pct(0.99);
}

// One tunnel: socketpair, 1 byte there and back, close. Returns wall us.
double OneTunnel(rt::EventLoop* loop, rt::HboneClient* client, const rt::TunnelTarget& target) {
  int sv[2];
  socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
  absl::Time t0 = loop->Now();
  bool done = false;
  client->Tunnel(target, sv[1], sv[1], /*owns_fds=*/true,
                 [&done](const rt::TunnelResult&) { done = true; });
  char b = 'x';
  (void)!write(sv[0], &b, 1);
  bool echoed = false;
  loop->RunUntil(
      [&] {
        char r;
        if (read(sv[0], &r, 1) == 1) echoed = true;
        return echoed;
      },
      absl::Seconds(10));
  double us = absl::ToDoubleMicroseconds(loop->Now() - t0);
  shutdown(sv[0], SHUT_WR);
  loop->RunUntil([&] { return done; }, absl::Seconds(10));
  close(sv[0]);
  return echoed ? us : 1e9;
}

void BM_PooledStream(benchmark::State& state) {
  ServerSide server;
  auto loop = *rt::EventLoop::New();
  rt::ClientOptions co;
  co.ssl_ctx = GetPki().client_ctx.get();
  auto client = *rt::HboneClient::New(loop.get(), co);
  rt::TunnelTarget target;
  target.via = server.via;
  target.authority = server.echo_addr;
  target.expected_identities = {kServerId};
  OneTunnel(loop.get(), client.get(), target);  // dial the pooled connection
  std::vector<double> us;
  for (auto _ : state) us.push_back(OneTunnel(loop.get(), client.get(), target));
  Percentiles(state, us);
  state.counters["dials"] = static_cast<double>(client->stats().dials);
  state.counters["streams_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  client.reset();
  loop->RunFor(absl::Milliseconds(5));
}
BENCHMARK(BM_PooledStream)->UseRealTime()->MinTime(2.0);

// Streams/s with `range(0)` tunnels in flight at once on the pooled
// connection(s): each batch opens them all, echoes 1 byte on each, closes.
void BM_PooledStreamBatch(benchmark::State& state) {
  ServerSide server;
  auto loop = *rt::EventLoop::New();
  rt::ClientOptions co;
  co.ssl_ctx = GetPki().client_ctx.get();
  auto client = *rt::HboneClient::New(loop.get(), co);
  rt::TunnelTarget target;
  target.via = server.via;
  target.authority = server.echo_addr;
  target.expected_identities = {kServerId};
  OneTunnel(loop.get(), client.get(), target);
  const int k = static_cast<int>(state.range(0));
  int64_t streams = 0;
  for (auto _ : state) {
    std::vector<int> ours(static_cast<size_t>(k));
    int done = 0;
    for (int i = 0; i < k; ++i) {
      int sv[2];
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
      ours[static_cast<size_t>(i)] = sv[0];
      client->Tunnel(target, sv[1], sv[1], /*owns_fds=*/true,
                     [&done](const rt::TunnelResult&) { ++done; });
      char b = 'x';
      (void)!write(sv[0], &b, 1);
    }
    std::vector<bool> echoed(static_cast<size_t>(k), false);
    int n_echoed = 0;
    loop->RunUntil(
        [&] {
          for (int i = 0; i < k; ++i) {
            char r;
            if (!echoed[static_cast<size_t>(i)] && read(ours[static_cast<size_t>(i)], &r, 1) == 1) {
              echoed[static_cast<size_t>(i)] = true;
              ++n_echoed;
              shutdown(ours[static_cast<size_t>(i)], SHUT_WR);
            }
          }
          return n_echoed == k;
        },
        absl::Seconds(10));
    loop->RunUntil([&] { return done == k; }, absl::Seconds(10));
    for (int fd : ours) close(fd);
    streams += k;
  }
  state.counters["streams_per_s"] =
      benchmark::Counter(static_cast<double>(streams), benchmark::Counter::kIsRate);
  state.counters["dials"] = static_cast<double>(client->stats().dials);
  client.reset();
  loop->RunFor(absl::Milliseconds(5));
}
BENCHMARK(BM_PooledStreamBatch)->Arg(32)->UseRealTime()->MinTime(2.0);

void BM_NewConnection(benchmark::State& state) {
  ServerSide server;
  auto loop = *rt::EventLoop::New();
  rt::TunnelTarget target;
  target.via = server.via;
  target.authority = server.echo_addr;
  target.expected_identities = {kServerId};
  std::vector<double> us;
  for (auto _ : state) {
    rt::ClientOptions co;
    co.ssl_ctx = GetPki().client_ctx.get();
    auto client = *rt::HboneClient::New(loop.get(), co);
    us.push_back(OneTunnel(loop.get(), client.get(), target));
    state.PauseTiming();
    client.reset();
    loop->RunFor(absl::Milliseconds(0));
    state.ResumeTiming();
  }
  Percentiles(state, us);
  state.counters["conns_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NewConnection)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
