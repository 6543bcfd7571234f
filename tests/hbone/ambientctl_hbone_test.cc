// `ambientctl hbone serve|connect|forward` as a user runs them: real
// processes on loopback, PEM files on disk, exit statuses and stdout.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "hbone/test_pki.h"
#include "support/echo_listener.h"
#include "support/hbone_pki_files.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

using test_support::Child;
using test_support::Drain;
using test_support::EchoListener;
using test_support::ReadLine;

class AmbientctlHboneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.Create("ambientctl-hbone"));
    test_support::WriteHbonePki(dir_, ca_, kServerId, kClientId);
  }
  void TearDown() override {
    if (serve_.started()) {
      serve_.Signal(SIGTERM);
      EXPECT_EQ(serve_.Wait(), 0) << "serve exits 0 on SIGTERM";
    }
    EXPECT_TRUE(dir_.Remove());
  }
  std::string Path(const std::string& name) { return dir_.Path(name); }

  // Starts `serve` and returns its address.
  std::string Serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0",
                                     "--cert", Path("server.pem"), "--key", Path("server.key"),
                                     "--bundle", Path("ca.pem")};
    args.insert(args.end(), extra.begin(), extra.end());
    serve_ = Child::Spawn(args);
    std::string line = ReadLine(serve_.out());
    EXPECT_THAT(line, HasSubstr("listening on 127.0.0.1:"));
    return line.substr(line.rfind(' ') + 1);
  }

  using Result = test_support::RunResult;
  Result Connect(const std::string& via, const std::string& authority, const std::string& input,
                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {AMBIENTCTL, "hbone", "connect", "--via", via, "--authority",
                                     authority, "--cert", Path("client.pem"), "--key",
                                     Path("client.key"), "--bundle", Path("ca.pem")};
    args.insert(args.end(), extra.begin(), extra.end());
    Result r = test_support::Run(args, input);
    EXPECT_EQ(r.input_written, input.size());
    return r;
  }

  TestCa ca_;
  test_support::TempDir dir_;
  Child serve_;
  EchoListener echo_;
};

TEST_F(AmbientctlHboneTest, ConnectCarriesStdinAndStdoutAndExitsZero) {
  std::string via = Serve();
  Result r = Connect(via, echo_.address(), "hello over hbone\n", {"--expect", kServerId});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello over hbone\n");
}

TEST_F(AmbientctlHboneTest, WrongServerIdentityExitsOne) {
  std::string via = Serve();
  Result r = Connect(via, echo_.address(), "secret\n",
                     {"--expect", "spiffe://cluster.local/ns/prod/sa/db"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("ambientctl: hbone connect:"));
}

TEST_F(AmbientctlHboneTest, NotAllowedClientExitsOneAndServeLogsTheDenial) {
  std::string via = Serve({"--allow", "spiffe://cluster.local/ns/default/sa/other"});
  Result r = Connect(via, echo_.address(), "secret\n", {"--expect", kServerId});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("401"));
  std::string line = ReadLine(serve_.err());
  EXPECT_THAT(line, HasSubstr("error access connection complete"));
  EXPECT_THAT(line, HasSubstr("direction=\"inbound\""));
  EXPECT_THAT(line, HasSubstr("is not allowed"));
}

TEST_F(AmbientctlHboneTest, ForwardTurnsTcpConnectionsIntoTunnels) {
  std::string via = Serve();
  Child fwd = Child::Spawn({AMBIENTCTL, "hbone", "forward", "--listen", "127.0.0.1:0", "--via", via,
                    "--authority", echo_.address(), "--expect", kServerId, "--cert",
                    Path("client.pem"), "--key", Path("client.key"), "--bundle", Path("ca.pem")});
  std::string line = ReadLine(fwd.out());
  ASSERT_THAT(line, HasSubstr("listening on 127.0.0.1:"));
  int port = std::stoi(line.substr(line.rfind(':') + 1));
  for (int i = 0; i < 3; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    std::string msg = "round " + std::to_string(i);
    ASSERT_EQ(write(fd, msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    shutdown(fd, SHUT_WR);
    EXPECT_EQ(Drain(fd), msg);
    close(fd);
  }
  fwd.Signal(SIGTERM);
  EXPECT_EQ(fwd.Wait(), 0);
  std::string logs = Drain(fwd.err(), 1000);
  EXPECT_THAT(logs, HasSubstr("info access connection complete"));
  EXPECT_THAT(logs, HasSubstr("direction=\"outbound\""));
}

TEST_F(AmbientctlHboneTest, UsageErrorsExitTwoAndHelpExitsZero) {
  Child p = Child::Spawn({AMBIENTCTL, "hbone", "connect", "--via", "127.0.0.1:1"});
  p.CloseIn();
  EXPECT_EQ(p.Wait(), 2);
  EXPECT_THAT(Drain(p.err()), HasSubstr("--authority is required"));
  Child h = Child::Spawn({AMBIENTCTL, "hbone", "serve", "--help"});
  h.CloseIn();
  EXPECT_THAT(Drain(h.out()), HasSubstr("usage: ambientctl hbone serve"));
  EXPECT_EQ(h.Wait(), 0);
  Child bad = Child::Spawn({AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0", "--cert",
                            "/nonexistent.pem", "--key", "/nonexistent.key", "--bundle", "/x"});
  bad.CloseIn();
  EXPECT_EQ(bad.Wait(), 1);
  EXPECT_THAT(Drain(bad.err()), HasSubstr("/nonexistent.pem"));
}

}  // namespace
}  // namespace ambient::hbone
