// Google Benchmark for HBONE:
//  - BM_CoreBulk: the sans-IO core alone, a client and a server Connection
//    paired in memory on one thread, moving a stream's bytes one way: the
//    CPU cost of TLS 1.3 + HTTP/2 for both ends together.
//  - BM_PooledStream: a new CONNECT stream on a pooled connection, 1-byte
//    echo through it, close (client loop in this thread; server + upstream
//    echo on a second thread; loopback TCP between them).
//  - BM_PooledStreamBatch / BM_PooledStreamWindow: streams/s with many
//    tunnels in flight on the pooled connection (lockstep batches, or a
//    window kept full).
//  - BM_NewConnection: the same with a new mTLS connection every time.
// The upstream echo runs on its own thread and listens on 16 ports (see
// LoopEcho: keeps the kernel's TIME_WAIT table out of the stream rates); server_cpu_us /
// echo_cpu_us are those threads' CPU per tunnel (the client thread's is the CPU column).
// Percentiles of the per-iteration wall time are reported as counters.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <thread>
#include <vector>

#include "ambient/base/tls.h"
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
  ambient::tls::UniquePtr<SSL_CTX> server_ctx = ca.Context(server, true);
  ambient::tls::UniquePtr<SSL_CTX> client_ctx = ca.Context(client, false);
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
  co.expected_identities = {ambient::identity::SpiffeId::Parse(kServerId).value()};
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

// The sans-IO cost of one new HBONE connection, both ends on one thread and
// no sockets: TLS 1.3 mutual handshake (X25519, ECDSA P-256 both ways),
// HTTP/2 prefaces and SETTINGS, one CONNECT, its 200 and one byte of data.
// This is the CPU floor of BM_NewConnection without kernel or wake-ups.
void BM_CoreHandshake(benchmark::State& state) {
  Pki& pki = GetPki();
  uint8_t byte = 'x';
  for (auto _ : state) {
    ConnectionOptions co;
    co.role = Role::kClient;
    co.ssl_ctx = pki.client_ctx.get();
    co.expected_identities = {ambient::identity::SpiffeId::Parse(kServerId).value()};
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
    (void)client->StreamWrite(cid, absl::MakeConstSpan(&byte, 1));
    Shuttle(client.get(), server.get());
    if (server->StreamBuffered(sid) != 1) state.SkipWithError("no byte arrived");
  }
}
BENCHMARK(BM_CoreHandshake);

// Peer of BM_CoreHandshake: the TLS library alone. The same two SSL_CTXs
// (TLS 1.3 only, mutual, the library's own X.509 verification, AES-GCM),
// a client and a server SSL joined by a BIO pair in memory, the handshake
// and one byte each way; no HTTP/2, no ambient code. What is left of
// BM_CoreHandshake above this is ambient's share.
void BM_Peer_BareTlsHandshake(benchmark::State& state) {
  Pki& pki = GetPki();
  char byte = 'x';
  for (auto _ : state) {
    ambient::tls::UniquePtr<SSL> client(SSL_new(pki.client_ctx.get()));
    ambient::tls::UniquePtr<SSL> server(SSL_new(pki.server_ctx.get()));
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    BIO_new_bio_pair(&cb, 0, &sb, 0);
    SSL_set_bio(client.get(), cb, cb);
    SSL_set_bio(server.get(), sb, sb);
    SSL_set_connect_state(client.get());
    SSL_set_accept_state(server.get());
    bool c_done = false;
    bool s_done = false;
    for (int i = 0; i < 20 && !(c_done && s_done); ++i) {
      if (!c_done) c_done = SSL_do_handshake(client.get()) == 1;
      if (!s_done) s_done = SSL_do_handshake(server.get()) == 1;
    }
    char got = 0;
    if (!c_done || !s_done || SSL_write(client.get(), &byte, 1) != 1 ||
        SSL_read(server.get(), &got, 1) != 1 || SSL_write(server.get(), &byte, 1) != 1 ||
        SSL_read(client.get(), &got, 1) != 1) {
      state.SkipWithError("bare handshake failed");
      break;
    }
  }
}
BENCHMARK(BM_Peer_BareTlsHandshake);

// The public-key operations one new connection needs, per side: an X25519
// key share (key pair + shared secret), one ECDSA P-256 signature
// (CertificateVerify) and two verifications (the peer's certificate
// signature by its CA and its CertificateVerify). They bound BM_NewConnection
// from below: these run one after another across the two sides.
// Written with the EVP API both TLS libraries share, so the same benchmark
// measures BoringSSL and OpenSSL 3 (make bench runs it on both builds).
ambient::tls::UniquePtr<EVP_PKEY> NewKey(int type) {
  ambient::tls::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(type, nullptr));
  EVP_PKEY* key = nullptr;
  if (ctx == nullptr || EVP_PKEY_keygen_init(ctx.get()) != 1 ||
      (type == EVP_PKEY_EC &&
       EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), NID_X9_62_prime256v1) != 1) ||
      EVP_PKEY_keygen(ctx.get(), &key) != 1) {
    std::abort();
  }
  return ambient::tls::UniquePtr<EVP_PKEY>(key);
}

void BM_EcdsaP256Sign(benchmark::State& state) {
  ambient::tls::UniquePtr<EVP_PKEY> key = NewKey(EVP_PKEY_EC);
  ambient::tls::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  EVP_PKEY_sign_init(ctx.get());
  uint8_t digest[32] = {1, 2, 3};
  uint8_t sig[80];  // a DER P-256 signature is at most 72 bytes
  for (auto _ : state) {
    size_t sig_len = sizeof(sig);
    if (EVP_PKEY_sign(ctx.get(), sig, &sig_len, digest, sizeof(digest)) != 1) {
      state.SkipWithError("sign failed");
    }
    benchmark::DoNotOptimize(sig_len);
  }
}
BENCHMARK(BM_EcdsaP256Sign);

void BM_EcdsaP256Verify(benchmark::State& state) {
  ambient::tls::UniquePtr<EVP_PKEY> key = NewKey(EVP_PKEY_EC);
  ambient::tls::UniquePtr<EVP_PKEY_CTX> sctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  ambient::tls::UniquePtr<EVP_PKEY_CTX> vctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  EVP_PKEY_sign_init(sctx.get());
  EVP_PKEY_verify_init(vctx.get());
  uint8_t digest[32] = {1, 2, 3};
  uint8_t sig[80];  // a DER P-256 signature is at most 72 bytes
  size_t sig_len = sizeof(sig);
  EVP_PKEY_sign(sctx.get(), sig, &sig_len, digest, sizeof(digest));
  for (auto _ : state) {
    if (EVP_PKEY_verify(vctx.get(), sig, sig_len, digest, sizeof(digest)) != 1) {
      state.SkipWithError("verify failed");
    }
  }
}
BENCHMARK(BM_EcdsaP256Verify);

void BM_X25519Share(benchmark::State& state) {
  ambient::tls::UniquePtr<EVP_PKEY> peer = NewKey(EVP_PKEY_X25519);
  for (auto _ : state) {
    ambient::tls::UniquePtr<EVP_PKEY> ours = NewKey(EVP_PKEY_X25519);
    ambient::tls::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(ours.get(), nullptr));
    uint8_t shared[32];
    size_t len = sizeof(shared);
    if (EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer.get()) != 1 ||
        EVP_PKEY_derive(ctx.get(), shared, &len) != 1) {
      state.SkipWithError("x25519 failed");
    }
  }
}
BENCHMARK(BM_X25519Share);

// AES-GCM as TLS 1.3 uses it: seal or open one full 16 KiB record per
// iteration with a fresh nonce (bytes/s = per-core crypto bound of the data
// path), through EVP_CIPHER, which both libraries back with their AES-NI +
// PCLMUL code.
void BM_AesGcmRecord(benchmark::State& state) {
  const bool open = state.range(0) == 1;
  const EVP_CIPHER* cipher = state.range(1) == 128 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  std::vector<uint8_t> key(static_cast<size_t>(EVP_CIPHER_key_length(cipher)), 7);
  ambient::tls::UniquePtr<EVP_CIPHER_CTX> ctx(EVP_CIPHER_CTX_new());
  std::vector<uint8_t> plain(16384, 'p'), sealed(16384), out(16384);
  uint8_t nonce[12] = {0};
  uint8_t tag[16];
  int len = 0;
  // One record sealed up front, for the open case.
  EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.data(), nonce);
  EVP_EncryptUpdate(ctx.get(), sealed.data(), &len, plain.data(), static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx.get(), sealed.data() + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag);
  if (open) EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, key.data(), nonce);
  for (auto _ : state) {
    int ok;
    if (open) {
      ok = EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce) == 1 &&
           EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data(),
                             static_cast<int>(sealed.size())) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, sizeof(tag), tag) == 1 &&
           EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) == 1;
    } else {
      ok = EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, nullptr, nonce) == 1 &&
           EVP_EncryptUpdate(ctx.get(), out.data(), &len, plain.data(),
                             static_cast<int>(plain.size())) == 1 &&
           EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, sizeof(tag), tag) == 1;
    }
    if (!ok) state.SkipWithError("aes-gcm failed");
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 16384);
}
BENCHMARK(BM_AesGcmRecord)
    ->ArgNames({"open", "bits"})
    ->Args({0, 128})
    ->Args({1, 128})
    ->Args({0, 256})
    ->Args({1, 256});

// An echo server living on an EventLoop (no thread per connection),
// listening on kEchoPorts ports. The server side's upstream connections are
// spread over them (round robin through Targets): the server side closes
// those connections first, so each leaves a TIME_WAIT entry, and with a
// single upstream port tens of thousands of them fill the kernel's table and
// make connect() search for a free source port; several ports keep that
// search short, so the pooled-stream rate measures the proxy, not the table.
constexpr int kEchoPorts = 16;

class LoopEcho {
 public:
  explicit LoopEcho(rt::EventLoop* loop) : loop_(loop) {
    for (int i = 0; i < kEchoPorts; ++i) {
      auto addr = *ambient::SocketAddress::Parse("127.0.0.1:0");
      int fd = *rt::Listen(addr);
      addresses_.push_back(rt::LocalAddress(fd)->ToString());
      auto watch = std::make_unique<rt::IoWatch>(loop, [this, fd](uint32_t) { Accept(fd); });
      (void)watch->Start(fd, EPOLLIN);
      listeners_.push_back({fd, std::move(watch)});
    }
  }
  ~LoopEcho() {
    for (auto& l : listeners_) {
      l.watch->Stop();
      close(l.fd);
    }
  }
  const std::vector<std::string>& addresses() const { return addresses_; }

 private:
  struct Conn {
    int fd;
    std::unique_ptr<rt::IoWatch> watch;
  };
  void Accept(int listen_fd) {
    for (;;) {
      // Like a plain application: TCP_NODELAY, none of the proxy's
      // keepalive tuning.
      int cfd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) return;
      int one = 1;
      setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
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
  struct Listener {
    int fd;
    std::unique_ptr<rt::IoWatch> watch;
  };
  rt::EventLoop* loop_;
  std::vector<Listener> listeners_;
  std::vector<std::string> addresses_;
};

// Server side: an HboneServer on its own loop thread, and the upstream echo
// (the application behind the server) on a third thread, as a real
// application would be its own process: the echo's accept/read/write/close
// are not charged to the server's loop.
struct ServerSide {
  std::unique_ptr<rt::EventLoop> loop = *rt::EventLoop::New();
  std::unique_ptr<rt::EventLoop> echo_loop = *rt::EventLoop::New();
  std::unique_ptr<LoopEcho> echo;
  std::unique_ptr<rt::HboneServer> server;
  std::thread thread;
  std::thread echo_thread;
  std::string via;
  std::vector<std::string> echo_addrs;
  ServerSide() {
    echo = std::make_unique<LoopEcho>(echo_loop.get());
    rt::ServerOptions so;
    so.listen = "127.0.0.1:0";
    so.ssl_ctx = GetPki().server_ctx.get();
    server = *rt::HboneServer::New(loop.get(), so);
    via = server->address().ToString();
    echo_addrs = echo->addresses();
    thread = std::thread([this] { loop->Run(); });
    echo_thread = std::thread([this] { echo_loop->Run(); });
  }
  ~ServerSide() {
    loop->Stop();
    echo_loop->Stop();
    thread.join();
    echo_thread.join();
    server.reset();
    echo.reset();
    loop->RunFor(absl::Milliseconds(5));
    echo_loop->RunFor(absl::Milliseconds(5));
  }
  // CPU seconds used so far by the server's and the echo's threads.
  double ServerCpu() { return ThreadCpu(thread); }
  double EchoCpu() { return ThreadCpu(echo_thread); }
  static double ThreadCpu(std::thread& t) {
    clockid_t id;
    timespec ts{};
    if (pthread_getcpuclockid(t.native_handle(), &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }
};

// Targets hands out one tunnel target per upstream echo port, round robin.
class Targets {
 public:
  explicit Targets(const ServerSide& server) {
    for (const std::string& addr : server.echo_addrs) {
      rt::TunnelTarget t;
      t.via = *ambient::SocketAddress::Parse(server.via);
      t.authority = addr;
      t.expected_identities = {ambient::identity::SpiffeId::Parse(kServerId).value()};
      all_.push_back(std::move(t));
    }
  }
  const rt::TunnelTarget& Next() { return all_[next_++ % all_.size()]; }

 private:
  std::vector<rt::TunnelTarget> all_;
  size_t next_ = 0;
};

// CpuCounters reports the server and echo threads' CPU per iteration item
// (the client's is the benchmark's own CPU time).
struct CpuCounters {
  ServerSide& side;
  double server0 = side.ServerCpu();
  double echo0 = side.EchoCpu();
  void Report(benchmark::State& state, double items) {
    if (items <= 0) return;
    state.counters["server_cpu_us"] = (side.ServerCpu() - server0) * 1e6 / items;
    state.counters["echo_cpu_us"] = (side.EchoCpu() - echo0) * 1e6 / items;
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
  Targets targets(server);
  OneTunnel(loop.get(), client.get(), targets.Next());  // dial the pooled connection
  std::vector<double> us;
  CpuCounters cpu{server};
  for (auto _ : state) us.push_back(OneTunnel(loop.get(), client.get(), targets.Next()));
  cpu.Report(state, static_cast<double>(state.iterations()));
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
  Targets targets(server);
  OneTunnel(loop.get(), client.get(), targets.Next());
  const int k = static_cast<int>(state.range(0));
  int64_t streams = 0;
  CpuCounters cpu{server};
  for (auto _ : state) {
    std::vector<int> ours(static_cast<size_t>(k));
    int done = 0;
    for (int i = 0; i < k; ++i) {
      int sv[2];
      socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
      ours[static_cast<size_t>(i)] = sv[0];
      client->Tunnel(targets.Next(), sv[1], sv[1], /*owns_fds=*/true,
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
  cpu.Report(state, static_cast<double>(streams));
  state.counters["streams_per_s"] =
      benchmark::Counter(static_cast<double>(streams), benchmark::Counter::kIsRate);
  state.counters["dials"] = static_cast<double>(client->stats().dials);
  client.reset();
  loop->RunFor(absl::Milliseconds(5));
}
BENCHMARK(BM_PooledStreamBatch)->Arg(32)->UseRealTime()->MinTime(2.0);

// Streams/s with `range(0)` tunnels kept in flight on the pooled connection:
// as soon as one tunnel is done (1 byte echoed, then closed both ways) the
// next one starts, so client, server and echo threads never wait for a
// whole batch to drain. One iteration = `range(0)` completed tunnels.
class TunnelWindow {
 public:
  TunnelWindow(rt::EventLoop* loop, rt::HboneClient* client, Targets targets)
      : loop_(loop), client_(client), targets_(std::move(targets)) {}
  ~TunnelWindow() { running_ = false; }
  void Fill(int k) {
    while (in_flight_ < k) StartOne();
  }
  void Stop() { running_ = false; }
  int64_t completed() const { return completed_; }
  int in_flight() const { return in_flight_; }
  int64_t failed() const { return failed_; }

 private:
  struct Probe {
    int fd = -1;
    std::unique_ptr<rt::IoWatch> watch;
  };
  void StartOne() {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return;
    auto* probe = new Probe;
    probe->fd = sv[0];
    probe->watch = std::make_unique<rt::IoWatch>(loop_, [probe](uint32_t) {
      char r;
      if (read(probe->fd, &r, 1) == 1) {
        shutdown(probe->fd, SHUT_WR);  // echoed: end our side
        (void)probe->watch->SetEvents(0);
      }
    });
    (void)probe->watch->Start(probe->fd, EPOLLIN);
    ++in_flight_;
    char b = 'x';
    (void)!write(probe->fd, &b, 1);
    client_->Tunnel(targets_.Next(), sv[1], sv[1], /*owns_fds=*/true,
                    [this, probe](const rt::TunnelResult& r) {
                      if (!r.status.ok()) ++failed_;
                      ++completed_;
                      --in_flight_;
                      loop_->Defer([probe] {
                        probe->watch->Stop();
                        close(probe->fd);
                        delete probe;
                      });
                      if (running_) StartOne();
                    });
  }
  rt::EventLoop* loop_;
  rt::HboneClient* client_;
  Targets targets_;
  bool running_ = true;
  int in_flight_ = 0;
  int64_t completed_ = 0;
  int64_t failed_ = 0;
};

void BM_PooledStreamWindow(benchmark::State& state) {
  ServerSide server;
  auto loop = *rt::EventLoop::New();
  rt::ClientOptions co;
  co.ssl_ctx = GetPki().client_ctx.get();
  auto client = *rt::HboneClient::New(loop.get(), co);
  Targets targets(server);
  OneTunnel(loop.get(), client.get(), targets.Next());
  const int k = static_cast<int>(state.range(0));
  TunnelWindow window(loop.get(), client.get(), targets);
  window.Fill(k);
  loop->RunUntil([&] { return window.completed() >= k; }, absl::Seconds(10));  // warm up
  int64_t start = window.completed();
  CpuCounters cpu{server};
  for (auto _ : state) {
    int64_t goal = window.completed() + k;
    loop->RunUntil([&] { return window.completed() >= goal; }, absl::Seconds(10));
  }
  int64_t streams = window.completed() - start;
  cpu.Report(state, static_cast<double>(streams));
  window.Stop();
  loop->RunUntil([&] { return window.in_flight() == 0; }, absl::Seconds(10));
  state.counters["streams_per_s"] =
      benchmark::Counter(static_cast<double>(streams), benchmark::Counter::kIsRate);
  state.counters["failed"] = static_cast<double>(window.failed());
  state.counters["dials"] = static_cast<double>(client->stats().dials);
  client.reset();
  loop->RunFor(absl::Milliseconds(5));
}
BENCHMARK(BM_PooledStreamWindow)->Arg(32)->UseRealTime()->MinTime(2.0);

void BM_NewConnection(benchmark::State& state) {
  ServerSide server;
  auto loop = *rt::EventLoop::New();
  Targets targets(server);
  std::vector<double> us;
  CpuCounters cpu{server};
  for (auto _ : state) {
    rt::ClientOptions co;
    co.ssl_ctx = GetPki().client_ctx.get();
    auto client = *rt::HboneClient::New(loop.get(), co);
    us.push_back(OneTunnel(loop.get(), client.get(), targets.Next()));
    state.PauseTiming();
    client.reset();
    loop->RunFor(absl::Milliseconds(0));
    state.ResumeTiming();
  }
  cpu.Report(state, static_cast<double>(state.iterations()));
  Percentiles(state, us);
  state.counters["conns_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_NewConnection)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
