// AdsClient and ControlPlaneConnection on a runtime::EventLoop against a
// fake istiod on python3-grpcio (tests/xds/fake_istiod.py): first connect and
// readiness, ztunnel's headers (bearer from the token file, clusterid),
// reconnects with backoff and initial_resource_versions after istiod
// restarts, TLS with the right and wrong name or root, a response over the
// limit, unary calls, and an idle loop while istiod is down.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/xds/ads_client.h"
#include "ambient/xds/control_plane_connection.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "support/test_pki.h"
#include "xds/istiod_protos.h"
#include "xds/json_line_watch.h"
#include "xds/recorder.h"

namespace ambient::xds {
namespace {

using json = nlohmann::json;
using testing::Recorder;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

class AdsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-adsc-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    ASSERT_EQ(test_istiod::GenerateProtos(dir_), "");
    auto loop = runtime::EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    node_.pod_name = "ztunnel-x";
    node_.pod_namespace = "istio-system";
    node_.instance_ip = "198.18.0.5";
    node_.node_name = "node-1";
  }
  void TearDown() override {
    client_.reset();
    istiod_watch_.reset();
    istiod_ = test_support::Child();
    std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  // StartIstiod runs the fake istiod with `flags` (port 0: any) and waits
  // for its port.
  void StartIstiod(std::vector<std::string> flags = {}) {
    istiod_watch_.reset();
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     AMBIENT_SOURCE_DIR "/tests/xds/fake_istiod.py", dir_};
    if (port_ != 0) {
      argv.push_back("--port");
      argv.push_back(absl::StrCat(port_));
    }
    argv.insert(argv.end(), flags.begin(), flags.end());
    istiod_ = test_support::Child::Spawn(argv);
    std::string line = test_support::ReadLine(istiod_.out(), 20000);
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line, &port) && port > 0)
        << line << test_support::Drain(istiod_.err(), 500);
    port_ = port;
    istiod_watch_ =
        std::make_unique<testing::JsonLineWatch<std::deque<json>>>(loop_.get(), &requests_);
    ASSERT_TRUE(istiod_watch_->Start(istiod_.out()).ok());
  }
  void StopIstiod() {
    istiod_watch_.reset();
    istiod_.Kill();
    istiod_ = test_support::Child();
  }

  ConnectionOptions Options() {
    ConnectionOptions o;
    o.address = absl::StrCat("127.0.0.1:", port_);
    o.token_file = dir_ + "/istio-token";
    o.cluster_id = "cluster-7";
    return o;
  }
  void MakeClient(ConnectionOptions o) {
    AdsClientOptions opts;
    opts.connection = std::move(o);
    opts.node = node_;
    opts.types = {{kAddressType, &addresses_}, {kAuthorizationType, &policies_}};
    auto c = AdsClient::New(loop_.get(), std::move(opts));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = std::move(*c);
    client_->SetReadyCallback([this] { ++ready_calls_; });
    client_->Start();
  }

  // NextRequest runs the loop until istiod reports a request it received.
  json NextRequest() {
    if (!loop_->RunUntil([this] { return !requests_.empty(); }, absl::Seconds(8))) {
      ADD_FAILURE() << "istiod saw no request; " << (client_ ? client_->StatusText() : "");
      return json();
    }
    json r = requests_.front();
    requests_.pop_front();
    return r;
  }
  void Command(const json& cmd) {
    std::string line = cmd.dump() + "\n";
    ASSERT_EQ(write(istiod_.in(), line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
  void Push(const std::string& type, const std::string& nonce,
            std::vector<std::pair<std::string, std::string>> resources) {
    json res = json::array();
    for (auto& [name, value] : resources) {
      res.push_back({name, "v-" + nonce, type, absl::BytesToHexString(value)});
    }
    Command({{"push", {{"type", type}, {"nonce", nonce}, {"resources", res}}}});
  }
  // Fill pushes one resource of each type and waits for both ACKs.
  void Fill() {
    json a = NextRequest();
    ASSERT_EQ(a["type"], kAddressType);
    json p = NextRequest();
    ASSERT_EQ(p["type"], kAuthorizationType);
    Push(kAddressType, "a1", {{"pod-a", "A"}, {"pod-b", "B"}});
    EXPECT_EQ(NextRequest()["nonce"], "a1");
    EXPECT_FALSE(client_->ready());
    Push(kAuthorizationType, "p1", {{"ns/allow", "P"}});
    EXPECT_EQ(NextRequest()["nonce"], "p1");
  }

  // Pki writes a CA and a server certificate for `dns` into the temp dir;
  // returns the CA's PEM path. Flags for StartIstiod go to `flags`.
  std::string Pki(const std::string& prefix, const std::string& dns,
                  std::vector<std::string>* flags) {
    int64_t now = absl::ToUnixSeconds(absl::Now());
    test_support::CertSpec ca_spec = test_support::CaSpec("cluster.local");
    ca_spec.not_before = now - 3600;
    ca_spec.not_after = now + 3600;
    test_support::Issued ca = test_support::Issue(ca_spec);
    test_support::CertSpec leaf;
    leaf.common_name = dns;
    leaf.dns_sans = {dns};
    leaf.ext_key_usage = "serverAuth";
    leaf.key_usage = "critical,digitalSignature,keyEncipherment";
    leaf.not_before = now - 3600;
    leaf.not_after = now + 3600;
    leaf.serial = 7;
    test_support::Issued server = test_support::Issue(leaf, &ca);
    std::string root = dir_ + "/" + prefix + "-root.pem";
    WriteFile(root, ca.CertPem());
    WriteFile(dir_ + "/" + prefix + "-cert.pem", server.CertPem() + ca.CertPem());
    WriteFile(dir_ + "/" + prefix + "-key.pem", server.KeyPem());
    *flags = {"--tls", dir_ + "/" + prefix + "-cert.pem", dir_ + "/" + prefix + "-key.pem"};
    return root;
  }

  std::string dir_;
  std::unique_ptr<runtime::EventLoop> loop_;
  test_support::Child istiod_;
  std::unique_ptr<testing::JsonLineWatch<std::deque<json>>> istiod_watch_;
  std::deque<json> requests_;
  int port_ = 0;
  NodeIdentity node_;
  Recorder addresses_, policies_;
  std::unique_ptr<AdsClient> client_;
  int ready_calls_ = 0;
};

TEST_F(AdsClientTest, FirstConnectFillsTheHandlersAndBecomesReadyWithZtunnelsHeaders) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  WriteFile(dir_ + "/istio-token", "tok-1\n");
  ASSERT_NO_FATAL_FAILURE(MakeClient(Options()));
  json first = NextRequest();
  EXPECT_EQ(first["type"], kAddressType);
  EXPECT_EQ(first["node"],
            "ztunnel~198.18.0.5~ztunnel-x.istio-system~istio-system.svc.cluster.local");
  EXPECT_EQ(first["subscribe"], json::array());
  EXPECT_EQ(first["auth"], "Bearer tok-1");
  EXPECT_EQ(first["clusterid"], "cluster-7");
  requests_.push_front(first);
  ASSERT_NO_FATAL_FAILURE(Fill());
  EXPECT_TRUE(client_->ready());
  EXPECT_EQ(ready_calls_, 1);
  EXPECT_EQ(addresses_.held, (std::map<std::string, std::string>{{"pod-a", "A"}, {"pod-b", "B"}}));
  EXPECT_EQ(policies_.held, (std::map<std::string, std::string>{{"ns/allow", "P"}}));
  AdsClientStats s = client_->stats();
  EXPECT_EQ(s.connects, 1u);
  EXPECT_EQ(s.streams, 1u);
  EXPECT_EQ(s.responses, 2u);
  EXPECT_EQ(s.acks, 2u);
  EXPECT_EQ(s.nacks, 0u);
  EXPECT_NE(client_->StatusText().find("streaming; ready=yes"), std::string::npos)
      << client_->StatusText();

  // A resource that does not decode: NACKed, counted, named in the status.
  Push(kAddressType, "a2", {{"pod-c", "bad"}});
  json nack = NextRequest();
  EXPECT_EQ(nack["error"], "pod-c: cannot decode");
  EXPECT_EQ(client_->stats().nacks, 1u);
  EXPECT_NE(client_->StatusText().find("pod-c: cannot decode"), std::string::npos);

  // Unary calls on the same connection.
  absl::StatusOr<std::string> echo = absl::UnknownError("not called");
  absl::StatusOr<std::string> fail = absl::UnknownError("not called");
  client_->connection()->Call("/ambient.test.Echo/Echo", "hello", loop_->Now() + absl::Seconds(5),
                              [&](absl::StatusOr<std::string> r) { echo = std::move(r); });
  client_->connection()->Call("/ambient.test.Echo/Fail", "x", loop_->Now() + absl::Seconds(5),
                              [&](absl::StatusOr<std::string> r) { fail = std::move(r); });
  ASSERT_TRUE(loop_->RunUntil(
      [&] {
        return echo.status().code() != absl::StatusCode::kUnknown &&
               fail.status().code() != absl::StatusCode::kUnknown;
      },
      absl::Seconds(5)));
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(*echo, "hello");
  EXPECT_EQ(fail.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(fail.status().message(), "no way");
}

// ztunnel's xDS metrics: messages and resource bytes per type URL, and why
// streams ended (istiod ending one cleanly is Complete; a connection that
// cannot be made is ConnectionError).
TEST_F(AdsClientTest, MetricsCountMessagesBytesAndTerminationsAsZtunnelDoes) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  ASSERT_NO_FATAL_FAILURE(MakeClient(Options()));
  ASSERT_NO_FATAL_FAILURE(Fill());
  EXPECT_TRUE(client_->streaming());
  std::string text = XdsPrometheus(client_->stats(), client_->streaming());
  auto has = [&](const std::string& line) {
    EXPECT_TRUE(absl::StrContains(text, line + "\n")) << line << " not in:\n" << text;
  };
  has("istio_xds_message_total{url=\"type.googleapis.com/istio.workload.Address\"} 1");
  has("istio_xds_message_total{url=\"type.googleapis.com/istio.security.Authorization\"} 1");
  has("istio_xds_message_bytes_total{url=\"type.googleapis.com/istio.workload.Address\"} 2");
  has("istio_xds_message_bytes_total{url=\"type.googleapis.com/istio.security.Authorization\"} 1");
  has("istio_xds_connection_terminations_total{reason=\"Complete\"} 0");
  has("istio_xds_up 1");
  has("# TYPE istio_xds_message_total counter");

  Command({{"end", true}});  // istiod ends the stream with OK: Complete
  NextRequest();             // the new stream's first request
  NextRequest();
  text = XdsPrometheus(client_->stats(), client_->streaming());
  has("istio_xds_connection_terminations_total{reason=\"Complete\"} 1");
  has("istio_xds_connection_terminations_total{reason=\"Error\"} 0");

  // istiod gone: each failed connect is a ConnectionError, and the stream is down.
  istiod_ = test_support::Child();
  ASSERT_TRUE(loop_->RunUntil([&] { return client_->stats().terminations_connection_error >= 2; },
                              absl::Seconds(10)));
  text = XdsPrometheus(client_->stats(), client_->streaming());
  has("istio_xds_up 0");
  EXPECT_FALSE(absl::StrContains(text, "reason=\"ConnectionError\"} 0\n")) << text;
}

TEST_F(AdsClientTest, ANamedAddressConnectsAChangedTokenIsSentAndAMissingOneSendsNoHeader) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  ConnectionOptions o = Options();
  o.address = absl::StrCat("localhost:", port_);  // a name, resolved with getaddrinfo
  ASSERT_NO_FATAL_FAILURE(MakeClient(o));         // no token file yet
  json first = NextRequest();
  EXPECT_TRUE(first["auth"].is_null()) << first;
  EXPECT_EQ(first["clusterid"], "cluster-7");
  NextRequest();
  WriteFile(dir_ + "/istio-token", "tok-2");
  Command({{"end", true}});  // istiod ends the stream: the client opens another
  json again = NextRequest();
  EXPECT_EQ(again["auth"], "Bearer tok-2");
  NextRequest();
  WriteFile(dir_ + "/istio-token", "tok-three");
  Command({{"end", true}});
  EXPECT_EQ(NextRequest()["auth"], "Bearer tok-three");
  EXPECT_EQ(client_->stats().reconnects, 2u);
}

TEST_F(AdsClientTest, IstiodRestartedTheClientReconnectsWithHeldVersionsAndIdlesMeanwhile) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  ASSERT_NO_FATAL_FAILURE(MakeClient(Options()));
  ASSERT_NO_FATAL_FAILURE(Fill());
  ASSERT_TRUE(client_->ready());
  StopIstiod();
  // While istiod is down the client retries with a growing backoff: a second
  // of it costs the process little CPU.
  double cpu = CpuSeconds();
  loop_->RunFor(absl::Seconds(1));
  double used = CpuSeconds() - cpu;
  EXPECT_LT(used, 0.2) << "CPU seconds spent while istiod was down";
  ConnectionStats down = client_->connection()->stats();
  EXPECT_GE(down.connect_attempts, 3u);   // 10 ms, 20 ms, 40 ms, ... retries
  EXPECT_LE(down.connect_attempts, 14u);  // but not a busy loop
  EXPECT_FALSE(client_->connection()->connected());
  EXPECT_TRUE(client_->ready());  // readiness stays once reached
  EXPECT_NE(client_->StatusText().find("disconnected"), std::string::npos);
  EXPECT_NE(client_->StatusText().find("last error"), std::string::npos);

  ASSERT_NO_FATAL_FAILURE(StartIstiod());  // same port
  json a = NextRequest();
  EXPECT_EQ(a["type"], kAddressType);
  EXPECT_EQ(a["initial"], (json{{"pod-a", "v-a1"}, {"pod-b", "v-a1"}}));
  EXPECT_FALSE(a["node"].is_null());
  json p = NextRequest();
  EXPECT_EQ(p["initial"], (json{{"ns/allow", "v-p1"}}));
  EXPECT_GE(client_->stats().connects, 2u);
  EXPECT_EQ(client_->stats().reconnects, 1u);
  EXPECT_EQ(addresses_.held.size(), 2u);
}

TEST_F(AdsClientTest, AfterGoawayTheClientConnectsAgainAndResendsHeldVersions) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod({"--max-age-ms", "2000"}));
  ASSERT_NO_FATAL_FAILURE(MakeClient(Options()));
  ASSERT_NO_FATAL_FAILURE(Fill());
  // istiod's GOAWAY (max connection age), then the end of the stream after
  // the grace time: a new connection, a new stream with the held versions.
  json a = NextRequest();
  EXPECT_EQ(a["type"], kAddressType);
  EXPECT_EQ(a["initial"], (json{{"pod-a", "v-a1"}, {"pod-b", "v-a1"}}));
  EXPECT_EQ(client_->stats().connects, 2u) << client_->StatusText();
  EXPECT_EQ(client_->stats().reconnects, 1u);
}

TEST_F(AdsClientTest, TlsWithTheRightRootAndNameGetsData) {
  std::vector<std::string> flags;
  std::string root = Pki("good", "istiod.istio-system.svc", &flags);
  ASSERT_NO_FATAL_FAILURE(StartIstiod(flags));
  ConnectionOptions o = Options();
  o.roots_pem_file = root;
  ASSERT_NO_FATAL_FAILURE(MakeClient(o));
  ASSERT_NO_FATAL_FAILURE(Fill());
  EXPECT_TRUE(client_->ready());
  EXPECT_EQ(addresses_.held.size(), 2u);
}

TEST_F(AdsClientTest, TlsWithTheWrongNameOrRootGetsNoDataReportsAndRetries) {
  std::vector<std::string> flags;
  std::string root = Pki("good", "istiod.istio-system.svc", &flags);
  std::vector<std::string> other_flags;
  std::string other_root = Pki("other", "istiod.istio-system.svc", &other_flags);
  ASSERT_NO_FATAL_FAILURE(StartIstiod(flags));
  for (int wrong = 0; wrong < 2; ++wrong) {
    ConnectionOptions o = Options();
    o.roots_pem_file = wrong == 0 ? root : other_root;
    if (wrong == 0) o.server_name = "evil.example.com";
    ASSERT_NO_FATAL_FAILURE(MakeClient(o));
    loop_->RunUntil([&] { return client_->connection()->stats().failures >= 3; }, absl::Seconds(5));
    EXPECT_GE(client_->connection()->stats().connect_attempts, 3u);
    EXPECT_TRUE(requests_.empty()) << requests_.front();  // istiod got no request
    EXPECT_EQ(client_->stats().responses, 0u);
    EXPECT_FALSE(client_->ready());
    // The status names the failed handshake (hostname mismatch, or a chain
    // that does not reach the configured root).
    EXPECT_NE(client_->StatusText().find("last error: UNAVAILABLE: TLS handshake"),
              std::string::npos)
        << client_->StatusText();
    client_.reset();
  }
}

TEST_F(AdsClientTest, AResponseOverTheLimitEndsTheStreamAndAppliesNothing) {
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  ConnectionOptions o = Options();
  o.max_receive_message = 4096;
  ASSERT_NO_FATAL_FAILURE(MakeClient(o));
  NextRequest();
  NextRequest();
  Push(kAddressType, "big", {{"pod-big", std::string(8192, 'x')}});
  // The stream ends (ResourceExhausted) and is opened again.
  json again = NextRequest();
  EXPECT_EQ(again["type"], kAddressType);
  EXPECT_TRUE(again["nonce"].get<std::string>().empty()) << again;
  EXPECT_TRUE(addresses_.held.empty());
  EXPECT_EQ(client_->stats().responses, 0u);
  EXPECT_EQ(client_->stats().reconnects, 1u);
  EXPECT_EQ(client_->last_error().code(), absl::StatusCode::kResourceExhausted)
      << client_->last_error();
}

TEST_F(AdsClientTest, AUnaryCallWaitsForTheConnectionAndHonoursItsDeadline) {
  // Nothing listens: the call waits, then ends at its deadline.
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  StopIstiod();
  auto conn = ControlPlaneConnection::New(loop_.get(), Options());
  ASSERT_TRUE(conn.ok()) << conn.status();
  (*conn)->Start();
  absl::StatusOr<std::string> r = absl::UnknownError("not called");
  absl::Time start = loop_->Now();
  (*conn)->Call("/ambient.test.Echo/Echo", "x", start + absl::Milliseconds(300),
                [&](absl::StatusOr<std::string> got) { r = std::move(got); });
  ASSERT_TRUE(loop_->RunUntil([&] { return r.status().code() != absl::StatusCode::kUnknown; },
                              absl::Seconds(3)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_GE(loop_->Now() - start, absl::Milliseconds(300));
  // istiod comes up: the next call goes through on the reconnected channel.
  ASSERT_NO_FATAL_FAILURE(StartIstiod());
  r = absl::UnknownError("not called");
  (*conn)->Call("/ambient.test.Echo/Echo", "again", loop_->Now() + absl::Seconds(5),
                [&](absl::StatusOr<std::string> got) { r = std::move(got); });
  ASSERT_TRUE(loop_->RunUntil([&] { return r.status().code() != absl::StatusCode::kUnknown; },
                              absl::Seconds(5)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, "again");
}

TEST(ControlPlaneConnectionOptions, BadAddressesAndRootsAreRefused) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  for (const char* bad : {"", "istiod", "istiod:", "istiod:0", "istiod:99999", "[::1]", ":15012"}) {
    ConnectionOptions o;
    o.address = bad;
    EXPECT_EQ(ControlPlaneConnection::New(loop->get(), o).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
  ConnectionOptions o;
  o.address = "istiod.istio-system.svc:15012";
  o.roots_pem_file = "/nonexistent/root-cert.pem";
  EXPECT_EQ(ControlPlaneConnection::New(loop->get(), o).status().code(),
            absl::StatusCode::kNotFound);
  o.roots_pem_file = "/etc/hostname";  // not PEM
  EXPECT_EQ(ControlPlaneConnection::New(loop->get(), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  Backoff b(absl::Milliseconds(10), absl::Seconds(15), 1);
  absl::Duration last = absl::ZeroDuration();
  for (int i = 0; i < 20; ++i) last = b.Next();
  EXPECT_LE(last, absl::Seconds(15));
  EXPECT_GE(last, absl::Milliseconds(11250));
  b.Reset();
  absl::Duration first = b.Next();
  EXPECT_LE(first, absl::Milliseconds(10));
  EXPECT_GE(first, absl::Microseconds(7500));
}

}  // namespace
}  // namespace ambient::xds
