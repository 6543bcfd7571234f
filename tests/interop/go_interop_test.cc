// ambient's HBONE against Go's standard library (net/http HTTP/2 CONNECT over
// crypto/tls mTLS), both directions, as separate processes on loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include <string>
#include <vector>

#include "hbone/test_pki.h"
#include "hbone/test_process.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;
using testing::Drain;
using testing::EchoListener;
using testing::KeyAndCert;
using testing::Proc;
using testing::ReadLine;
using testing::Spawn;
using testing::TestCa;
using testing::Wait;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

class GoInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ambient-interop-XXXXXX";
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
    for (Proc& p : servers_) {
      kill(p.pid, SIGTERM);
      Wait(p.pid);
      close(p.in);
      close(p.out);
      close(p.err);
    }
    std::string cmd = "rm -rf " + dir_;
    EXPECT_EQ(std::system(cmd.c_str()), 0);
  }
  void Write(const std::string& name, const std::string& data) {
    std::ofstream(dir_ + "/" + name) << data;
  }
  std::vector<std::string> Tls(const std::string& who) {
    return {"--cert", dir_ + "/" + who + ".pem", "--key", dir_ + "/" + who + ".key", "--bundle",
            dir_ + "/ca.pem"};
  }
  std::string StartServer(std::vector<std::string> args) {
    Proc p = Spawn(args);
    std::string line = ReadLine(p.out);
    servers_.push_back(p);
    EXPECT_THAT(line, HasSubstr("listening on "));
    return line.substr(line.rfind(' ') + 1);
  }
  struct Result {
    int code;
    std::string out;
    std::string err;
  };
  Result RunClient(std::vector<std::string> args, const std::string& input) {
    Proc p = Spawn(args);
    size_t off = 0;
    std::string out;
    std::thread writer([&] {
      while (off < input.size()) {
        ssize_t n = write(p.in, input.data() + off, input.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(p.in);
    });
    Result r;
    std::thread err_reader([&] { r.err = Drain(p.err); });
    r.out = Drain(p.out);
    writer.join();
    err_reader.join();
    r.code = Wait(p.pid);
    close(p.out);
    close(p.err);
    return r;
  }

  TestCa ca_;
  std::string dir_;
  std::vector<Proc> servers_;
  EchoListener echo_;
};

std::string Payload(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return s;
}

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
  std::string line = ReadLine(servers_[0].err);
  EXPECT_THAT(line, HasSubstr("info access connection complete"));
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
                                    echo_.address(), "--cert", dir_ + "/rogue.pem", "--key",
                                    dir_ + "/rogue.key", "--bundle", dir_ + "/ca.pem"};
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
  Result r = RunClient({"/usr/bin/python3", H2_SCRIPT, via, dir_ + "/client.pem",
                        dir_ + "/client.key", dir_ + "/ca.pem", echo_.address()},
                       "");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("all h2 edge cases passed"));
}

}  // namespace
}  // namespace ambient::hbone
