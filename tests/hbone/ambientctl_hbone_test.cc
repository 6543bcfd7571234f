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
using ::testing::Not;
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
  EXPECT_THAT(line, HasSubstr("error access  connection complete"));
  EXPECT_THAT(line, ::testing::MatchesRegex(
                        "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z  .*"))
      << "timestamped like node-proxy's lines";
  EXPECT_THAT(line, HasSubstr("direction=\"inbound\""));
  EXPECT_THAT(line, HasSubstr("is not allowed"));
}

// Addresses the library cannot use are refused before anything starts, with
// the library's own reason (ambient_socket_address_parse for --listen/--via,
// ambient_hbone_authority_check for --authority) and what to write instead,
// not a bare "invalid argument"; exit 2 (usage).
TEST_F(AmbientctlHboneTest, AddressErrorsSayWhatIsNeeded) {
  struct Case {
    const char* via;
    const char* authority;
    const char* says;
  };
  for (const Case& c : {
           Case{"localhost:15008", "127.0.0.1:80",
                "--via: invalid IP address \"localhost\" (a numeric IP:port is needed"},
           Case{"127.0.0.1:15008", "127.0.0.1", "--authority: bad :authority \"127.0.0.1\": missing port"},
           Case{"127.0.0.1:15008", "127.0.0.1", "missing port"},
           Case{"127.0.0.1:15008", "::1:80", "IPv6 address must be in brackets"},
           Case{"127.0.0.1:15008", "[fe80::1%eth0]:80", "bad IPv6 address"},
           Case{"127.0.0.1", "127.0.0.1:80",
                "--via: invalid address \"127.0.0.1\": want IPv4:PORT or [IPv6]:PORT"},
           Case{"::1:15008", "127.0.0.1:80", "want IPv4:PORT or [IPv6]:PORT"},
           Case{"[198.18.0.1]:15008", "127.0.0.1:80", "brackets need IPv6"},
           Case{"[fe80::1%eth0]:15008", "127.0.0.1:80", "invalid IP address \"fe80::1%eth0\""},
           Case{"127.0.0.1:99999", "127.0.0.1:80",
                "invalid port in \"127.0.0.1:99999\": want 0-65535"},
           Case{"127.0.0.1:65536", "127.0.0.1:80", "want 0-65535"}}) {
    Result r = Connect(c.via, c.authority, "");
    EXPECT_EQ(r.code, 2) << c.via << " " << c.authority;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.via << " " << c.authority;
    EXPECT_EQ(r.out, "");
  }
  // serve's --listen goes through the same check, before the TLS files are
  // read (these do not exist).
  Result r = test_support::Run({AMBIENTCTL, "hbone", "serve", "--listen", "[::ffff:1.2.3.4:0",
                                "--cert", "/nonexistent.pem", "--key", "/nonexistent.key",
                                "--bundle", "/nonexistent-ca.pem"},
                               "");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--listen: invalid address \"[::ffff:1.2.3.4:0\": want "
                               "[IPv6]:PORT (a numeric IP:port is needed"));
  EXPECT_EQ(r.out, "");
}

// An --allow entry that is not a SPIFFE ID used to be accepted, and then every
// client was denied with 401. serve now refuses to start and says why.
TEST_F(AmbientctlHboneTest, AllowThatIsNotASpiffeIdIsRefusedBeforeServing) {
  struct Case {
    const char* allow;
    const char* says;
  };
  for (const Case& c : {Case{"cluster.local/ns/default/sa/demo",
                             "did you mean \"spiffe://cluster.local/ns/default/sa/demo\""},
                        Case{"spiffe://td/ns/a/sa/b/", "trailing"}}) {
    Result r = test_support::Run({AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0",
                                  "--cert", Path("server.pem"), "--key", Path("server.key"),
                                  "--bundle", Path("ca.pem"), "--allow", kClientId, "--allow",
                                  c.allow},
                                 "");
    EXPECT_NE(r.code, 0) << c.allow;
    EXPECT_EQ(r.out, "") << "no 'listening on' for " << c.allow;
    EXPECT_THAT(r.err, HasSubstr("allow[1]")) << c.allow;
    EXPECT_THAT(r.err, HasSubstr(c.says)) << c.allow;
  }
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
  EXPECT_THAT(logs, HasSubstr("Z  info  access  connection complete"));
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
  // A key file that holds no key: the reason once, not "credentials: credentials".
  Result key = test_support::Run({AMBIENTCTL, "hbone", "serve", "--listen", "127.0.0.1:0",
                                  "--cert", Path("server.pem"), "--key", Path("server.pem"),
                                  "--bundle", Path("ca.pem")});
  EXPECT_EQ(key.code, 1);
  EXPECT_THAT(key.err, HasSubstr("no private key found"));
  EXPECT_THAT(key.err, Not(HasSubstr("credentials: credentials")));
}

}  // namespace
}  // namespace ambient::hbone
