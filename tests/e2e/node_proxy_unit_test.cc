// The node proxy's pieces that need no privileges: the workload directory,
// workload telemetry metadata, and argument checks.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "ambient/runtime/node_proxy.h"
#include "gtest/gtest.h"
#include "hbone/test_pki.h"
#include "runtime/node_tcp_relay.h"

namespace ambient::runtime {
namespace {

Workload Make(const std::string& uid, const std::string& name, std::vector<std::string> ips) {
  Workload w;
  w.uid = uid;
  w.name = name;
  w.ns = "demo";
  w.service_account = name;
  w.addresses = std::move(ips);
  return w;
}

TEST(WorkloadDirectoryTest, FindsByUidAddressAndName) {
  WorkloadDirectory d;
  ASSERT_TRUE(d.Upsert(Make("a", "client", {"198.18.1.2", "2001:db8::a"})).ok());
  ASSERT_TRUE(d.Upsert(Make("b", "server", {"198.18.2.2"})).ok());
  EXPECT_EQ(d.size(), 2u);
  ASSERT_TRUE(d.ByAddress("198.18.2.2").has_value());
  EXPECT_EQ(d.ByAddress("198.18.2.2")->uid, "b");
  // IPv6 addresses match whatever their spelling.
  ASSERT_TRUE(d.ByAddress("2001:0db8:0:0::a").has_value());
  EXPECT_EQ(d.ByAddress("2001:db8::a")->name, "client");
  EXPECT_FALSE(d.ByAddress("198.18.9.9").has_value());
  EXPECT_FALSE(d.ByAddress("not an ip").has_value());
  EXPECT_EQ(d.ByName("demo", "server")->uid, "b");
  EXPECT_EQ(d.ByUid("a")->Identity()->str(), "spiffe://cluster.local/ns/demo/sa/client");
}

TEST(WorkloadDirectoryTest, BadEntriesAreRefusedAndChangeNothing) {
  WorkloadDirectory d;
  ASSERT_TRUE(d.Upsert(Make("a", "client", {"198.18.1.2"})).ok());
  EXPECT_EQ(d.Upsert(Make("", "x", {})).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.Upsert(Make("c", "x", {"198.18.1.300"})).code(), absl::StatusCode::kInvalidArgument);
  // An address owned by another workload.
  absl::Status st = d.Upsert(Make("c", "x", {"198.18.3.3", "198.18.1.2"}));
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("already belongs to a"), absl::string_view::npos) << st;
  Workload bad_td = Make("c", "x", {"198.18.3.3"});
  bad_td.trust_domain = "Not A Domain";
  EXPECT_EQ(d.Upsert(bad_td).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(d.size(), 1u);
  EXPECT_FALSE(d.ByAddress("198.18.3.3").has_value());
  EXPECT_EQ(d.ByAddress("198.18.1.2")->uid, "a");
}

TEST(WorkloadDirectoryTest, UpsertMovesAddressesAndRemoveForgetsThem) {
  WorkloadDirectory d;
  ASSERT_TRUE(d.Upsert(Make("a", "client", {"198.18.1.2"})).ok());
  ASSERT_TRUE(d.Upsert(Make("a", "client", {"198.18.1.3"})).ok());
  EXPECT_FALSE(d.ByAddress("198.18.1.2").has_value());
  EXPECT_TRUE(d.ByAddress("198.18.1.3").has_value());
  EXPECT_TRUE(d.Remove("a"));
  EXPECT_FALSE(d.Remove("a"));
  EXPECT_FALSE(d.ByAddress("198.18.1.3").has_value());
}

TEST(WorkloadDirectoryTest, CloneIsASnapshotThatChangesAlone) {
  WorkloadDirectory d;
  ASSERT_TRUE(d.Upsert(Make("a", "client", {"198.18.1.2"})).ok());
  Service svc;
  svc.name = "reviews";
  svc.ns = "demo";
  svc.hostname = "reviews.demo.svc.cluster.local";
  svc.vips = {*ParseNetworkAddress("198.19.0.10")};
  svc.ports = {{9080, 9080}};
  ASSERT_TRUE(d.UpsertService(svc).ok());
  std::unique_ptr<WorkloadDirectory> c = d.Clone();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->ByAddress("198.18.1.2")->uid, "a");
  EXPECT_EQ(c->ByName("demo", "client")->uid, "a");
  EXPECT_EQ(c->service_count(), 1u);
  ASSERT_TRUE(c->ServiceByVip(*ParseNetworkAddress("198.19.0.10")).has_value());
  // Changes to either side stay there.
  ASSERT_TRUE(d.Upsert(Make("b", "server", {"198.18.2.2"})).ok());
  EXPECT_TRUE(c->Remove("a"));
  EXPECT_EQ(c->size(), 0u);
  EXPECT_FALSE(c->ByAddress("198.18.2.2").has_value());
  EXPECT_EQ(d.size(), 2u);
  EXPECT_EQ(d.ByAddress("198.18.1.2")->uid, "a");
}

TEST(StaticCredentialsTest, GivesEachPodItsOwnSvidAndRefusesOthers) {
  hbone::testing::TestCa ca;
  hbone::testing::KeyAndCert kc = ca.Leaf("spiffe://cluster.local/ns/demo/sa/client");
  auto creds = identity::Credentials::FromPem(hbone::testing::TestCa::CertPem(kc),
                                              hbone::testing::TestCa::KeyPem(kc));
  ASSERT_TRUE(creds.ok());
  std::map<std::string, std::shared_ptr<const identity::Credentials>> svids;
  svids["a"] = *creds;
  auto fn = StaticCredentials(std::move(svids));
  auto got = fn(Make("a", "client", {}));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ((*got)->Get(), *creds);
  auto missing = fn(Make("b", "server", {}));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no SVID set for pod b");
}

TEST(WorkloadTest, IdentityIsASpiffeIdValueOrAnError) {
  Workload w = Make("a", "client", {"198.18.1.2"});
  w.trust_domain = "example.org";
  absl::StatusOr<identity::SpiffeId> id = w.Identity();
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->str(), "spiffe://example.org/ns/demo/sa/client");
  EXPECT_EQ(id->trust_domain_name(), "example.org");
  EXPECT_EQ(id->path(), "/ns/demo/sa/client");
  // A trust domain that is itself a SPIFFE ID is not a bare name: refused,
  // not silently reduced to "example.org".
  w.trust_domain = "spiffe://example.org";
  EXPECT_FALSE(w.Identity().ok());
  // The offset of a bad byte counts from the start of the whole ID.
  w.trust_domain = "cluster.local";
  w.service_account = "a b";
  absl::StatusOr<identity::SpiffeId> bad = w.Identity();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            identity::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/a b").status().message());
}

TEST(WorkloadTest, TelemetryUsesIstioDefaults) {
  Workload w = Make("a", "client", {"198.18.1.2"});
  hbone::WorkloadInfo t = w.Telemetry();
  EXPECT_EQ(t.name, "client");
  EXPECT_EQ(t.ns, "demo");
  EXPECT_EQ(t.canonical_service, "client");
  EXPECT_EQ(t.canonical_revision, "latest");
  EXPECT_EQ(t.cluster, "");
  w.canonical_service = "shop";
  w.canonical_revision = "v2";
  w.cluster = "east";
  t = w.Telemetry();
  EXPECT_EQ(t.canonical_service, "shop");
  EXPECT_EQ(t.canonical_revision, "v2");
  EXPECT_EQ(t.cluster, "east");
}

TEST(NodeProxyTest, NewRefusesMissingPieces) {
  auto loop = EventLoop::New();
  ASSERT_TRUE(loop.ok());
  NodeProxyOptions o;
  EXPECT_EQ(NodeProxy::New(loop->get(), o).status().code(), absl::StatusCode::kInvalidArgument);
  o.workloads = std::make_shared<WorkloadDirectory>();
  EXPECT_EQ(NodeProxy::New(loop->get(), o).status().code(), absl::StatusCode::kInvalidArgument);
  o.bundles = std::make_shared<identity::TrustBundleSource>();
  EXPECT_EQ(NodeProxy::New(loop->get(), o).status().code(), absl::StatusCode::kInvalidArgument);
  o.credentials =
      [](const Workload&) -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
    return absl::NotFoundError("none");
  };
  EXPECT_TRUE(NodeProxy::New(loop->get(), o).ok());
  EXPECT_EQ(NodeProxy::New(nullptr, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NodeProxyTest, AddPodRefusesUnknownWorkloadsAndEmptyArguments) {
  auto loop = EventLoop::New();
  ASSERT_TRUE(loop.ok());
  NodeProxyOptions o;
  o.workloads = std::make_shared<WorkloadDirectory>();
  o.bundles = std::make_shared<identity::TrustBundleSource>();
  o.credentials =
      [](const Workload&) -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
    return absl::NotFoundError("none");
  };
  auto proxy = NodeProxy::New(loop->get(), o);
  ASSERT_TRUE(proxy.ok());
  auto self = netns::Netns::Current();
  ASSERT_TRUE(self.ok());
  EXPECT_EQ((*proxy)->AddPod("", {}, std::move(*self)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*proxy)->AddPod("uid", {}, netns::Netns()).code(), absl::StatusCode::kInvalidArgument);
  auto again = netns::Netns::Current();
  ASSERT_TRUE(again.ok());
  absl::Status st = (*proxy)->AddPod("uid", {"name", "ns", "sa"}, std::move(*again));
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound) << st;
  EXPECT_TRUE((*proxy)->pods().empty());
  EXPECT_FALSE((*proxy)->RemovePod("uid"));
}

TEST(NodeProxyTest, AddPodRefusesAnSvidForAnotherIdentity) {
  auto loop = EventLoop::New();
  ASSERT_TRUE(loop.ok());
  hbone::testing::TestCa ca;
  hbone::testing::KeyAndCert kc = ca.Leaf("spiffe://cluster.local/ns/demo/sa/mallory");
  auto creds = identity::Credentials::FromPem(hbone::testing::TestCa::CertPem(kc),
                                              hbone::testing::TestCa::KeyPem(kc));
  ASSERT_TRUE(creds.ok());
  NodeProxyOptions o;
  o.workloads = std::make_shared<WorkloadDirectory>();
  ASSERT_TRUE(o.workloads->Upsert(Make("a", "client", {"198.18.1.2"})).ok());
  o.bundles = std::make_shared<identity::TrustBundleSource>();
  o.credentials =
      [&](const Workload&) -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> {
    return std::make_shared<identity::CredentialHolder>(*creds);
  };
  auto proxy = NodeProxy::New(loop->get(), o);
  ASSERT_TRUE(proxy.ok());
  auto self = netns::Netns::Current();
  ASSERT_TRUE(self.ok());
  absl::Status st = (*proxy)->AddPod("a", {}, std::move(*self));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(st.message().find("sa/mallory"), absl::string_view::npos) << st;
  EXPECT_TRUE((*proxy)->pods().empty());
}

// ReadAll reads `fd` until EOF.
std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

TEST(TcpRelayTest, CarriesBigPayloadsBothWaysWithHalfClose) {
  // client <-> [a relay b] <-> server, over stream socket pairs.
  int left[2];
  int right[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, left), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, right), 0);
  int client = left[0];
  int server = right[1];
  // The test's ends block; the relay's ends stay non-blocking.
  for (int fd : {client, server}) ASSERT_EQ(fcntl(fd, F_SETFL, 0), 0);

  auto loop = EventLoop::New();
  ASSERT_TRUE(loop.ok());
  std::atomic<bool> done{false};
  TcpRelayResult result;
  StartTcpRelay(loop->get(), left[1], right[0], [&](const TcpRelayResult& r) {
    result = r;
    done = true;
  });
  std::thread runner([&] { (*loop)->RunUntil([&] { return done.load(); }, absl::Seconds(20)); });

  std::string request(3 << 20, 'q');  // 3 MiB: far more than the relay buffers
  for (size_t i = 0; i < request.size(); i += 4096) request[i] = static_cast<char>('a' + i % 26);
  std::string reply(5 << 20, 'r');
  std::thread writer([&] {
    size_t off = 0;
    while (off < request.size()) {
      ssize_t n = write(client, request.data() + off, request.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    shutdown(client, SHUT_WR);  // half-close: the reply must still arrive
  });
  // The server reads the whole request (EOF = the client's half-close went
  // through), then answers and closes.
  std::string got = ReadAll(server);
  writer.join();
  EXPECT_EQ(got.size(), request.size());
  EXPECT_TRUE(got == request);
  std::thread answer([&] {
    size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = write(server, reply.data() + off, reply.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(server);
  });
  std::string back = ReadAll(client);
  answer.join();
  runner.join();
  close(client);
  EXPECT_EQ(back.size(), reply.size());
  ASSERT_TRUE(done);
  EXPECT_TRUE(result.status.ok()) << result.status;
  EXPECT_EQ(result.a_to_b, request.size());
  EXPECT_EQ(result.b_to_a, reply.size());
  (*loop)->RunFor(absl::Milliseconds(1));  // the relay's deferred delete
}

TEST(TcpRelayTest, APeerThatGoesAwayEndsTheRelayWithAnError) {
  int left[2];
  int right[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, left), 0);
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, right), 0);
  auto loop = EventLoop::New();
  ASSERT_TRUE(loop.ok());
  bool done = false;
  TcpRelayResult result;
  StartTcpRelay(loop->get(), left[1], right[0], [&](const TcpRelayResult& r) {
    result = r;
    done = true;
  });
  // The server side vanishes while the client still sends.
  close(right[1]);
  std::string data(1 << 20, 'x');
  (void)!write(left[0], data.data(), data.size());
  EXPECT_TRUE((*loop)->RunUntil([&] { return done; }, absl::Seconds(10)));
  EXPECT_FALSE(result.status.ok());
  close(left[0]);
  (*loop)->RunFor(absl::Milliseconds(1));
}

}  // namespace
}  // namespace ambient::runtime
