// ambient's HBONE against Go's standard library (net/http HTTP/2 CONNECT over
// crypto/tls mTLS), both directions, as separate processes on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <future>
#include <thread>

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hbone/test_pki.h"
#include "support/echo_listener.h"
#include "support/hbone_pki_files.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using test_support::Child;
using test_support::EchoListener;
using test_support::ReadLine;
using testing::KeyAndCert;
using testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

class GoInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.Create("ambient-interop"));
    test_support::WriteHbonePki(dir_, ca_, kServerId, kClientId);
  }
  // Servers get SIGTERM here; any that outlive it (or a test that never got
  // this far) are killed when servers_ is destroyed.
  void TearDown() override {
    for (Child& p : servers_) {
      p.Signal(SIGTERM);
      p.Wait();
    }
    EXPECT_TRUE(dir_.Remove());
  }
  void Write(const std::string& name, const std::string& data) { dir_.Write(name, data); }
  std::vector<std::string> Tls(const std::string& who) {
    return {"--cert", dir_.Path(who + ".pem"), "--key", dir_.Path(who + ".key"), "--bundle",
            dir_.Path("ca.pem")};
  }
  std::string StartServer(std::vector<std::string> args) {
    servers_.push_back(Child::Spawn(args));
    std::string line = ReadLine(servers_.back().out());
    EXPECT_THAT(line, HasSubstr("listening on "));
    return line.substr(line.rfind(' ') + 1);
  }
  using Result = test_support::RunResult;
  Result RunClient(std::vector<std::string> args, const std::string& input) {
    return test_support::Run(args, input);
  }

  TestCa ca_;
  test_support::TempDir dir_;
  std::vector<Child> servers_;
  EchoListener echo_;
};

std::string Payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

// A loopback listener that serves one connection with `serve` on its own
// thread (and then stops); the destructor waits for it.
class OneConnectionUpstream {
 public:
  explicit OneConnectionUpstream(std::function<void(int fd)> serve) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(fd_, 4), 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this, serve = std::move(serve)] {
      int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      timeval tv{10, 0};  // never hang the test
      setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      serve(c);
    });
  }
  ~OneConnectionUpstream() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
  std::thread thread_;
};

TEST_F(GoInteropTest, AmbientClientThroughGoServer) {
  std::vector<std::string> sargs = {HBONEPEER, "server", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  std::vector<std::string> cargs = {AMBIENTCTL, "hbone", "connect", "--via", via, "--authority",
                                    echo_.address(), "--expect", kServerId};
  for (auto& a : Tls("client")) cargs.push_back(a);
  std::string data = Payload(3 << 20);
  Result r = RunClient(cargs, data);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data);
}

TEST_F(GoInteropTest, GoClientThroughAmbientServer) {
  std::vector<std::string> sargs = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  std::vector<std::string> cargs = {HBONEPEER, "client", "--via", via, "--authority",
                                    echo_.address(), "--expect", kServerId};
  for (auto& a : Tls("client")) cargs.push_back(a);
  std::string data = Payload(3 << 20);
  Result r = RunClient(cargs, data);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), data.size());
  EXPECT_TRUE(r.out == data);
  // The ambient server logged the tunnel with the Go client's identity.
  std::string line = ReadLine(servers_[0].err());
  EXPECT_THAT(line, HasSubstr("info  access  connection complete"));
  EXPECT_THAT(line, HasSubstr(kClientId));
  EXPECT_THAT(line, HasSubstr(absl::StrCat("bytes_sent=", data.size(), " bytes_recv=", data.size())));
}

TEST_F(GoInteropTest, GoClientGetsAmbient503ForUnreachableTarget) {
  std::vector<std::string> sargs = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  std::vector<std::string> cargs = {HBONEPEER, "client", "--via", via, "--authority",
                                    "127.0.0.1:1", "--expect", kServerId};
  for (auto& a : Tls("client")) cargs.push_back(a);
  Result r = RunClient(cargs, "x");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("503"));
}

TEST_F(GoInteropTest, GoClientWithoutTrustInOurCaFails) {
  TestCa other;
  KeyAndCert rogue = other.Leaf(kClientId);
  Write("rogue.pem", TestCa::CertPem(rogue));
  Write("rogue.key", TestCa::KeyPem(rogue));
  std::vector<std::string> sargs = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  std::vector<std::string> cargs = {HBONEPEER, "client", "--via", via, "--authority",
                                    echo_.address(), "--cert", dir_.Path("rogue.pem"), "--key",
                                    dir_.Path("rogue.key"), "--bundle", dir_.Path("ca.pem")};
  Result r = RunClient(cargs, "secret");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
}

// python-h2 (hyper-h2, independent of nghttp2) drives scripted edge cases
// against `ambientctl hbone serve`: see h2_edge_cases.py.
TEST_F(GoInteropTest, PythonH2EdgeCasesAgainstAmbientServer) {
  if (access("/usr/lib/python3/dist-packages/h2/__init__.py", R_OK) != 0) {
    GTEST_FAIL() << "python3-h2 is not installed (scripts/install-deps.sh installs it)";
  }
  std::vector<std::string> sargs = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  Result r = RunClient({"/usr/bin/python3", H2_SCRIPT, via, dir_.Path("client.pem"),
                        dir_.Path("client.key"), dir_.Path("ca.pem"), echo_.address()},
                       "");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("all h2 edge cases passed"));
}

// RFC 9113 section 8.5 both ways, checked by python-h2 (h2_connect_error.py):
// an upstream that closes with RST reaches the client as RST_STREAM(CONNECT_ERROR);
// a client's RST_STREAM(CONNECT_ERROR) makes the server reset its upstream
// (the upstream reads ECONNRESET, not EOF); a clean upstream close is still
// END_STREAM.
TEST_F(GoInteropTest, ConnectErrorMapsToTcpResetBothWays) {
  if (access("/usr/lib/python3/dist-packages/h2/__init__.py", R_OK) != 0) {
    GTEST_FAIL() << "python3-h2 is not installed (scripts/install-deps.sh installs it)";
  }
  OneConnectionUpstream resetter([](int fd) {
    char buf[64];
    (void)read(fd, buf, sizeof(buf));  // the client's "hello": the tunnel is up
    linger l{1, 0};                     // close with RST
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    close(fd);
  });
  std::promise<int> watched;  // how the watched upstream's reads ended: 0 (EOF) or errno
  std::future<int> watch_end = watched.get_future();
  OneConnectionUpstream watcher([&watched](int fd) {
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
    }
    watched.set_value(n == 0 ? 0 : errno);
    close(fd);
  });
  OneConnectionUpstream finisher([](int fd) {
    (void)send(fd, "bye", 3, MSG_NOSIGNAL);
    close(fd);
  });
  std::vector<std::string> sargs = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0"};
  for (auto& a : Tls("server")) sargs.push_back(a);
  std::string via = StartServer(sargs);
  Result r = RunClient({"/usr/bin/python3", H2_CONNECT_ERROR_SCRIPT, via,
                        dir_.Path("client.pem"), dir_.Path("client.key"), dir_.Path("ca.pem"),
                        resetter.address(), watcher.address(), finisher.address()},
                       "");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("all CONNECT_ERROR cases passed"));
  ASSERT_EQ(watch_end.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(watch_end.get(), ECONNRESET)
      << "the server should reset its upstream on RST_STREAM(CONNECT_ERROR)";
}

}  // namespace
}  // namespace ambient::hbone
