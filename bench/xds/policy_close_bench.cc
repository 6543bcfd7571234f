// Policy push -> connections closed: N HBONE streams are carried by a
// runtime::HboneServer whose authorize hook asks an authz::PolicyStore (as
// the node proxy's does); a DENY policy for the client's identity replaces
// the store's policies and HboneServer::Recheck() runs on the loop. Timed
// from the Replace until every client saw its stream end (EOF or reset).
//
//   policy_close_bench ROUNDS N...
//
// Peers, same run, alternating with it: the same N streams ended by
// destroying the server (every connection aborted: the closing cost without
// any policy work), and the N PolicyStore::Check calls alone that the
// Recheck makes (the authorization cost without any closing). Each client is
// a plain TCP connection to an HboneForwarder (pooled HBONE client) whose
// streams go to a sink that answers one byte, so a stream counts as carried
// once its client read that byte. One JSON line per measurement on stdout:
//   {"mode": "recheck"|"abort"|"checks", "streams": N, "closed": C, "us": T}
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ambient/authz/policy_store.h"
#include "ambient/base/tls.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "hbone/test_pki.h"

namespace {

using ambient::SocketAddress;
using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;
namespace authz = ambient::authz;
namespace rt = ambient::runtime;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

double Now() {
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "policy_close_bench: %s\n", why.c_str());
  std::exit(1);
}

// Sink accepts on 127.0.0.1:0 and answers each connection one byte; it keeps
// the sockets until destroyed.
class Sink {
 public:
  Sink() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 4096) != 0) {
      Die("sink listen");
    }
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shutdown()
        if (write(c, "y", 1) != 1) {
          close(c);
          continue;
        }
        std::lock_guard<std::mutex> lock(mu_);
        conns_.push_back(c);
      }
    });
  }
  ~Sink() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
    for (int c : conns_) close(c);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> conns_;
};

authz::Connection ConnOf(const rt::InboundStream& s) {
  authz::Connection c;
  if (!s.peer.empty()) c.src_ip = s.peer.ip();
  c.src_port = static_cast<uint16_t>(s.peer.port());
  if (!s.upstream.empty()) c.dst_ip = s.upstream.ip();
  c.dst_port = static_cast<uint16_t>(s.upstream.port());
  auto id = ambient::identity::IstioIdentity::Parse(s.peer_identity.str());
  if (id.ok()) c.src_identity = *id;
  return c;
}

authz::Policy DenyClient() {
  authz::Policy p;
  p.name = "deny-client";
  p.ns = "default";
  p.scope = authz::Scope::kNamespace;
  p.action = authz::Action::kDeny;
  authz::Match m;
  m.principals.push_back(authz::StringMatch::Exact("cluster.local/ns/default/sa/client"));
  p.rules.push_back(authz::Rule{{authz::Clause{{m}}}});
  return p;
}

// One measurement: N carried streams, then `mode` ends them.
struct Setup {
  TestCa ca;
  KeyAndCert client_leaf = ca.Leaf(kClientId);
  KeyAndCert server_leaf = ca.Leaf(kServerId);
  ambient::tls::UniquePtr<SSL_CTX> client_ctx = ca.Context(client_leaf, false);
  ambient::tls::UniquePtr<SSL_CTX> server_ctx = ca.Context(server_leaf, true);
};

void Run(Setup& pki, const std::string& mode, int n) {
  Sink sink;
  authz::PolicyStore store;
  std::unique_ptr<rt::EventLoop> loop = std::move(rt::EventLoop::New().value());
  std::atomic<uint64_t> checks{0};
  authz::Workload dest{"default", {}};
  rt::ServerOptions so;
  so.listen = "127.0.0.1:0";
  so.ssl_ctx = pki.server_ctx.get();
  so.limits.max_pending_dials_per_connection = static_cast<size_t>(n);
  so.authorize = [&](const rt::InboundStream& s) -> absl::Status {
    ++checks;
    authz::Decision d = store.Check(dest, ConnOf(s));
    return d.allowed ? absl::OkStatus() : absl::PermissionDeniedError(d.reason);
  };
  auto server = rt::HboneServer::New(loop.get(), so);
  if (!server.ok()) Die(server.status().ToString());
  std::unique_ptr<rt::HboneServer> srv = std::move(*server);
  rt::ClientOptions co;
  co.ssl_ctx = pki.client_ctx.get();
  co.identity = ambient::identity::SpiffeId::Parse(kClientId).value();
  auto client = rt::HboneClient::New(loop.get(), co);
  if (!client.ok()) Die(client.status().ToString());
  rt::ForwarderOptions fo;
  fo.listen = "127.0.0.1:0";
  fo.target.via = srv->address();
  fo.target.authority = sink.address();
  fo.target.expected_identities = {ambient::identity::SpiffeId::Parse(kServerId).value()};
  auto fwd = rt::HboneForwarder::New(loop.get(), client->get(), fo);
  if (!fwd.ok()) Die(fwd.status().ToString());
  std::thread thread([&] { loop->Run(); });

  // N clients, each waits for the sink's byte: its stream is carried.
  SocketAddress target = (*fwd)->address();
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int fd = socket(target.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, target.sockaddr_ptr(), target.size()) != 0) Die("client connect");
    fds.push_back(fd);
  }
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    char b;
    if (poll(&p, 1, 20000) != 1 || read(fd, &b, 1) != 1) Die("a stream never came up");
  }

  double t0 = Now(), t1 = 0;
  size_t closed = 0;
  if (mode == "checks") {
    // The Recheck's authorization alone: N checks of the carried streams'
    // connections against the DENY policy.
    if (!store.Replace({DenyClient()}).ok()) Die("replace");
    rt::InboundStream s{ambient::identity::SpiffeId::Parse(kClientId).value(),
                        SocketAddress::Parse("127.0.0.1:40000").value(),
                        SocketAddress::Parse(sink.address()).value(), sink.address()};
    t0 = Now();
    for (int i = 0; i < n; ++i) {
      s.peer = SocketAddress::Parse("127.0.0.1:" + std::to_string(40000 + i)).value();
      closed += store.Check(dest, ConnOf(s)).allowed ? 0 : 1;
    }
    t1 = Now();
  } else {
    if (mode == "recheck") {
      if (!store.Replace({DenyClient()}).ok()) Die("replace");
      loop->Post([&] { closed = srv->Recheck(); });
    } else {
      loop->Post([&] {
        srv.reset();
        closed = static_cast<size_t>(n);
      });
    }
    // Every client sees its end: EOF or a reset.
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int fd : fds) {
      epoll_event e{};
      e.events = EPOLLIN | EPOLLRDHUP;
      e.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    }
    int left = n;
    std::vector<epoll_event> evs(256);
    while (left > 0) {
      int k = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 20000);
      if (k <= 0) Die("streams still open 20 s after the push");
      for (int i = 0; i < k; ++i) {
        char b[64];
        ssize_t r = read(evs[i].data.fd, b, sizeof(b));
        if (r > 0) continue;  // data, not the end
        epoll_ctl(ep, EPOLL_CTL_DEL, evs[i].data.fd, nullptr);
        --left;
      }
    }
    t1 = Now();
    close(ep);
  }
  loop->Stop();
  thread.join();  // `closed` was written on the loop
  for (int fd : fds) close(fd);
  fwd->reset();
  client->reset();
  srv.reset();
  loop->RunFor(absl::Milliseconds(20));  // deferred deletions
  if (closed != static_cast<size_t>(n)) {
    Die(mode + " ended " + std::to_string(closed) + " of " + std::to_string(n) + " streams");
  }
  std::printf("{\"mode\": \"%s\", \"streams\": %d, \"closed\": %zu, \"us\": %.1f}\n", mode.c_str(),
              n, closed, t1 - t0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: policy_close_bench ROUNDS N...\n");
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  Setup pki;
  int rounds = std::atoi(argv[1]);
  const char* modes[] = {"recheck", "abort", "checks"};
  for (int r = 0; r < rounds; ++r) {
    for (int i = 2; i < argc; ++i) {
      for (int m = 0; m < 3; ++m) Run(pki, modes[(m + r) % 3], std::atoi(argv[i]));
    }
  }
  return 0;
}
