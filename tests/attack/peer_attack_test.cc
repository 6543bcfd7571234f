// Peers that die, freeze or just sit there (issue 17): an HBONE client
// process killed with SIGKILL in the middle of a transfer, one stopped with
// SIGSTOP while its upstream keeps sending, and many idle tunnels. The
// client is a separate process (ambientctl hbone connect), as it would be in
// production. Each case checks what an operator would notice: descriptors
// and connections come back, memory stays bounded and is returned, the loop
// does not spin, and a legitimate tunnel still completes within 1 s.
//
// AMBIENT_ATTACK_TUNNELS sets the idle-tunnel count (default 1,000; `make
// soak` runs 5,000).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "attack/attack_fixture.h"
#include "support/echo_listener.h"
#include "support/hbone_pki_files.h"
#include "support/process.h"
#include "support/sanitizer.h"
#include "support/temp_dir.h"

namespace ambient::runtime::attack {
namespace {

using test_support::Child;
using test_support::TempDir;

#if AMBIENT_TEST_SANITIZED
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

long ResidentKiB() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Upstream is a one-connection TCP target on its own thread. As a sink it
// counts what arrives until EOF; as a source it writes until the write
// fails (blocking writes: it slows down exactly as fast as the tunnel lets
// it). Either way it closes its socket when the connection ends.
class Upstream {
 public:
  enum class Mode { kSink, kSource };
  explicit Upstream(Mode mode) {
    listen_fd_ = ListenLoopback(4, &address_);
    thread_ = std::thread([this, mode] {
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::vector<char> buf(64 * 1024, 'u');
      for (;;) {
        ssize_t n = mode == Mode::kSink ? read(c, buf.data(), buf.size())
                                        : send(c, buf.data(), buf.size(), MSG_NOSIGNAL);
        if (n <= 0) break;
        bytes_ += static_cast<size_t>(n);
      }
      close(c);
      ended_ = true;
    });
  }
  ~Upstream() {
    shutdown(listen_fd_, SHUT_RDWR);  // ends an accept still waiting
    thread_.join();
    close(listen_fd_);
  }
  const std::string& address() const { return address_; }
  size_t bytes() const { return bytes_.load(); }
  bool ended() const { return ended_.load(); }

 private:
  int listen_fd_ = -1;
  std::string address_;
  std::thread thread_;
  std::atomic<size_t> bytes_{0};
  std::atomic<bool> ended_{false};
};

class PeerAttackTest : public HboneServerAttackTest {
 protected:
  void SetUp() override {
    HboneServerAttackTest::SetUp();
    signal(SIGPIPE, SIG_IGN);  // a peer that died must fail a write, not end the test
    ASSERT_TRUE(dir_.Create("ambient-peer-attack"));
    test_support::WriteHbonePki(dir_, ca_, kServerId, kClientId);
  }
  // Client runs `ambientctl hbone connect` through the server to `authority`.
  Child Client(const std::string& authority) {
    return Child::Spawn({AMBIENTCTL, "hbone", "connect", "--via", server_->address().ToString(),
                         "--authority", authority, "--cert", dir_.Path("client.pem"), "--key",
                         dir_.Path("client.key"), "--bundle", dir_.Path("ca.pem")});
  }
  TempDir dir_;
};

// A client killed with SIGKILL mid-transfer leaves nothing behind on the
// server: its connection and upstream socket close (the kernel resets the
// TCP connection), the stream gets its access line, and fds are back.
TEST_F(PeerAttackTest, PeerKilledMidTransferReleasesEverything) {
  ASSERT_NO_FATAL_FAILURE(Serve(Options()));
  RunLoop();
  test_support::EchoListener echo;  // a legitimate client's target
  int baseline = OpenFds();
  Upstream upstream(Upstream::Mode::kSink);
  Child peer = Client(upstream.address());
  ASSERT_TRUE(peer.started());
  fcntl(peer.in(), F_SETFL, O_NONBLOCK);
  std::string chunk(64 * 1024, 'c');
  ASSERT_TRUE(WaitFor(15000,
                      [&] {
                        (void)!write(peer.in(), chunk.data(), chunk.size());
                        return upstream.bytes() >= 1024 * 1024;
                      }))
      << "data did not flow through the tunnel: " << test_support::Drain(peer.err(), 100);
  EXPECT_EQ(Connections(), 1u);

  peer = Child();  // SIGKILL, reaped, pipes closed
  EXPECT_TRUE(WaitFor(5000, [&] { return upstream.ended() && Connections() == 0; }))
      << "connections " << Connections() << ", upstream ended " << upstream.ended();
  // The Upstream's listener stays open until the end of the test.
  EXPECT_TRUE(WaitFor(5000, [&] { return OpenFds() <= baseline + 1; }))
      << OpenFds() << " fds open, " << baseline << " before";
  Figure("fds_above_baseline_after", OpenFds() - baseline - 1);
  EXPECT_TRUE(WaitFor(5000, [&] { return !LogsWith("access: ").empty(); }))
      << "the killed peer's stream has no access line";
  ExpectLegitimateTunnelWithin1s(echo.address());
}

// A client frozen with SIGSTOP while its upstream keeps sending: flow
// control holds the upstream back (no unbounded buffering in the server),
// the server's loop does not spin, and other clients are served. Once the
// peer is killed everything is released.
TEST_F(PeerAttackTest, StoppedPeerIsHeldBackByFlowControl) {
  ASSERT_NO_FATAL_FAILURE(Serve(Options()));
  RunLoop();
  test_support::EchoListener echo;  // a legitimate client's target
  int baseline = OpenFds();
  Upstream upstream(Upstream::Mode::kSource);
  Child peer = Client(upstream.address());
  ASSERT_TRUE(peer.started());
  size_t received = 0;
  ASSERT_TRUE(WaitFor(15000, [&] {
    char buf[65536];
    pollfd p{peer.out(), POLLIN, 0};
    while (poll(&p, 1, 0) == 1) {
      ssize_t n = read(peer.out(), buf, sizeof(buf));
      if (n <= 0) break;
      received += static_cast<size_t>(n);
    }
    return received >= 4 * 1024 * 1024;
  })) << "data did not flow through the tunnel";

  peer.Signal(SIGSTOP);
  // Let every window and buffer on the way fill, then watch for growth.
  usleep(1500 * 1000);
  size_t sent1 = upstream.bytes();
  long rss1 = ResidentKiB();
  double cpu1 = ProcessCpuSeconds();
  usleep(1500 * 1000);
  size_t sent2 = upstream.bytes();
  long rss2 = ResidentKiB();
  double cpu = ProcessCpuSeconds() - cpu1;
  EXPECT_LE(sent2 - sent1, 1024u * 1024) << "the upstream kept sending into a frozen peer";
  EXPECT_LT(sent1, received + 64u * 1024 * 1024)
      << "more than 64 MiB went into buffers for a frozen peer";
  if (!kSanitized) {
    EXPECT_LT(rss2 - rss1, 2048) << "memory grew while the peer was frozen";
  }
  Figure("frozen_peer_cpu_ms_per_1500ms", cpu * 1000);
  Figure("frozen_peer_rss_growth_kib", static_cast<double>(rss2 - rss1));
  EXPECT_LT(cpu, 0.3) << "the process used CPU while everything waited";
  ExpectLegitimateTunnelWithin1s(echo.address());

  peer = Child();  // SIGKILL works on a stopped process too
  EXPECT_TRUE(WaitFor(5000, [&] { return upstream.ended() && Connections() == 0; }))
      << "connections " << Connections() << ", upstream ended " << upstream.ended();
  EXPECT_TRUE(WaitFor(5000, [&] { return OpenFds() <= baseline + 1; }))
      << OpenFds() << " fds open, " << baseline << " before";
}

// HoldingUpstream accepts every connection and keeps it until destroyed.
class HoldingUpstream {
 public:
  HoldingUpstream() {
    listen_fd_ = ListenLoopback(1024, &address_);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        std::lock_guard<std::mutex> lock(mu_);
        held_.push_back(c);
      }
    });
  }
  ~HoldingUpstream() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
    for (int c : held_) close(c);
  }
  const std::string& address() const { return address_; }
  size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  void CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (int c : held_) close(c);
    held_.clear();
  }

 private:
  int listen_fd_ = -1;
  std::string address_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<int> held_;
};

// Many idle tunnels cost little memory each, leave the server responsive,
// and when their clients go, descriptors come back and (after the loop's
// idle second) the memory is returned to the system.
TEST_F(PeerAttackTest, IdleTunnelsAreCheapAndGiveEverythingBack) {
  int tunnels = 1000;
  if (const char* env = std::getenv("AMBIENT_ATTACK_TUNNELS")) tunnels = std::atoi(env);
  ASSERT_GT(tunnels, 0);
  constexpr int kPerConnection = 100;
  int connections = (tunnels + kPerConnection - 1) / kPerConnection;
  rlimit old{};
  getrlimit(RLIMIT_NOFILE, &old);
  rlimit raised = old;
  raised.rlim_cur = std::min<rlim_t>(old.rlim_max, static_cast<rlim_t>(4 * tunnels + 1024));
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &raised), 0);
  ASSERT_GE(raised.rlim_cur, static_cast<rlim_t>(3 * tunnels + 256))
      << "the hard descriptor limit is too low for " << tunnels << " tunnels";

  ASSERT_NO_FATAL_FAILURE(Serve(Options()));
  RunLoop();
  HoldingUpstream upstream;
  test_support::EchoListener echo;  // a legitimate client's target
  int baseline = OpenFds();
  long rss0 = ResidentKiB();

  std::vector<std::unique_ptr<H2>> clients;
  int opened = 0;
  for (int c = 0; c < connections; ++c) {
    auto h2 = std::make_unique<H2>();
    ASSERT_TRUE(h2->Open(client_ctx_.get(), server_->address()));
    std::vector<int32_t> ids;
    for (int s = 0; s < kPerConnection && opened < tunnels; ++s, ++opened) {
      ids.push_back(h2->Connect(upstream.address()));
    }
    h2->Pump(10000, [&] { return h2->Count("200") == ids.size(); });
    ASSERT_EQ(h2->Count("200"), ids.size()) << "connection " << c;
    clients.push_back(std::move(h2));
  }
  ASSERT_TRUE(WaitFor(5000, [&] { return upstream.held() == static_cast<size_t>(tunnels); }));
  long rss1 = ResidentKiB();
  double per_tunnel = static_cast<double>(rss1 - rss0) / tunnels;
  Figure("idle_tunnels", tunnels);
  Figure("kib_per_idle_tunnel_incl_client_and_upstream", per_tunnel);
  std::printf("%d idle tunnels: %.1f KiB each (server, attacker client and upstream together)\n",
              tunnels, per_tunnel);
  // Both ends of each tunnel live in this process; the server's share was
  // measured at ~3.6 KiB (issue 17). 32 KiB bounds all three sides.
  if (!kSanitized) {
    EXPECT_LT(per_tunnel, 32.0);
  }

  ExpectLegitimateTunnelWithin1s(echo.address());

  uint64_t trims = OnLoop([this] { return loop_->memory_trims(); });
  clients.clear();
  upstream.CloseAll();
  EXPECT_TRUE(WaitFor(5000, [&] { return Connections() == 0; }));
  EXPECT_TRUE(WaitFor(5000, [&] { return OpenFds() <= baseline; }))
      << OpenFds() << " fds open, " << baseline << " before";
  if (!kSanitized) {
    // The loop trims after a quiet second. What stays is what the server
    // keeps on purpose (tables sized for the peak, caches): about half of
    // the growth at 1,000 tunnels, less at 5,000; without the trim all of it
    // stays resident.
    EXPECT_TRUE(WaitFor(4000, [&] {
      return OnLoop([this] { return loop_->memory_trims(); }) > trims;
    })) << "the loop did not trim after the burst";
    long rss2 = ResidentKiB();
    std::printf("resident: %ld KiB before, %ld with the tunnels, %ld after\n", rss0, rss1, rss2);
    Figure("rss_kept_after_burst_pct",
           rss1 > rss0 ? 100.0 * static_cast<double>(rss2 - rss0) / (rss1 - rss0) : 0.0);
    EXPECT_LT(rss2 - rss0, std::max(1024L, (rss1 - rss0) * 3 / 4))
        << "resident " << rss2 << " KiB: " << rss0 << " before the tunnels, " << rss1
        << " with them";
  }
  setrlimit(RLIMIT_NOFILE, &old);
}

}  // namespace
}  // namespace ambient::runtime::attack
