// `ambientctl hbone serve|connect|forward` as a user runs them: real
// processes on loopback, PEM files on disk, exit statuses and stdout.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hbone/test_pki.h"
#include "hbone/test_process.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using testing::KeyAndCert;
using testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

using testing::Drain;
using testing::EchoListener;
using testing::Proc;
using testing::ReadLine;
using testing::Spawn;
using testing::Wait;

class AmbientctlHboneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ambientctl-hbone-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Write("ca.pem", ca_.CaPem());
    KeyAndCert server = ca_.Leaf(kServerId);
    KeyAndCert client = ca_.Leaf(kClientId);
    Write("server.pem", TestCa::CertPem(server));
    Write("server.key", TestCa::KeyPem(server));
    Write("client.pem", TestCa::CertPem(client));
    Write("client.key", TestCa::KeyPem(client));
  }
  void TearDown() override {
    if (serve_.pid > 0) {
      kill(serve_.pid, SIGTERM);
      EXPECT_EQ(Wait(serve_.pid), 0) << "serve exits 0 on SIGTERM";
    }
    std::string cmd = "rm -rf " + dir_;
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  void Write(const std::string& name, const std::string& data) {
    std::ofstream(dir_ + "/" + name) << data;
  }
  std::string Path(const std::string& name) { return dir_ + "/" + name; }

  // Starts `serve` and returns its address.
  std::string Serve(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0",
                                     "--cert", Path("server.pem"), "--key", Path("server.key"),
                                     "--bundle", Path("ca.pem")};
    args.insert(args.end(), extra.begin(), extra.end());
    serve_ = Spawn(args);
    std::string line = ReadLine(serve_.out);
    EXPECT_THAT(line, HasSubstr("listening on 127.0.0.1:"));
    return line.substr(line.rfind(' ') + 1);
  }

  struct Result {
    int code;
    std::string out;
    std::string err;
  };
  Result Connect(const std::string& via, const std::string& authority, const std::string& input,
                 std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {AMBIENTCTL, "hbone", "connect", "--via", via, "--authority",
                                     authority, "--cert", Path("client.pem"), "--key",
                                     Path("client.key"), "--bundle", Path("ca.pem")};
    args.insert(args.end(), extra.begin(), extra.end());
    Proc p = Spawn(args);
    EXPECT_EQ(write(p.in, input.data(), input.size()), static_cast<ssize_t>(input.size()));
    close(p.in);
    Result r;
    std::thread err_reader([&] { r.err = Drain(p.err); });
    r.out = Drain(p.out);
    err_reader.join();
    r.code = Wait(p.pid);
    close(p.out);
    close(p.err);
    return r;
  }

  TestCa ca_;
  std::string dir_;
  Proc serve_;
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
  std::string line = ReadLine(serve_.err);
  EXPECT_THAT(line, HasSubstr("error access connection complete"));
  EXPECT_THAT(line, HasSubstr("direction=\"inbound\""));
  EXPECT_THAT(line, HasSubstr("is not allowed"));
}

TEST_F(AmbientctlHboneTest, ForwardTurnsTcpConnectionsIntoTunnels) {
  std::string via = Serve();
  Proc fwd = Spawn({AMBIENTCTL, "hbone", "forward", "--listen", "127.0.0.1:0", "--via", via,
                    "--authority", echo_.address(), "--expect", kServerId, "--cert",
                    Path("client.pem"), "--key", Path("client.key"), "--bundle", Path("ca.pem")});
  std::string line = ReadLine(fwd.out);
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
  kill(fwd.pid, SIGTERM);
  EXPECT_EQ(Wait(fwd.pid), 0);
  std::string logs = Drain(fwd.err, 1000);
  EXPECT_THAT(logs, HasSubstr("info access connection complete"));
  EXPECT_THAT(logs, HasSubstr("direction=\"outbound\""));
  close(fwd.in);
  close(fwd.out);
  close(fwd.err);
}

TEST_F(AmbientctlHboneTest, UsageErrorsExitTwoAndHelpExitsZero) {
  Proc p = Spawn({AMBIENTCTL, "hbone", "connect", "--via", "127.0.0.1:1"});
  close(p.in);
  EXPECT_EQ(Wait(p.pid), 2);
  EXPECT_THAT(Drain(p.err), HasSubstr("--authority is required"));
  Proc h = Spawn({AMBIENTCTL, "hbone", "serve", "--help"});
  close(h.in);
  EXPECT_THAT(Drain(h.out), HasSubstr("usage: ambientctl hbone serve"));
  EXPECT_EQ(Wait(h.pid), 0);
  Proc bad = Spawn({AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0", "--cert",
                    "/nonexistent.pem", "--key", "/nonexistent.key", "--bundle", "/x"});
  close(bad.in);
  EXPECT_EQ(Wait(bad.pid), 1);
  EXPECT_THAT(Drain(bad.err), HasSubstr("/nonexistent.pem"));
}

}  // namespace
}  // namespace ambient::hbone
