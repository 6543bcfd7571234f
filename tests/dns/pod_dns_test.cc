// The DNS proxy inside a pod's netns (ambient/dns/pod_dns.h), as the node
// proxy runs it: 15053 listeners opened in a throwaway netns, dig run inside
// it, and dnsmasq as the upstream also inside it on 127.0.0.1, which only a
// forwarding socket made in the pod's netns can reach. Needs root.
#include "ambient/dns/pod_dns.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <future>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/netns.h"
#include "ambient/runtime/node_proxy.h"
#include "hbone/test_pki.h"
#include "netns/test_util.h"
#include "support/privileged.h"
#include "support/process.h"

namespace ambient::dns {
namespace {

using netns::testing::NamedNetns;
using test_support::RunResult;

class PodDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AMBIENT_REQUIRE_ROOT();
    ASSERT_EQ(access("/usr/sbin/dnsmasq", X_OK), 0) << "dnsmasq missing (install-deps.sh)";
    ASSERT_EQ(access("/usr/bin/dig", X_OK), 0) << "dig missing (install-deps.sh)";
    ns_ = std::make_unique<NamedNetns>();
    ASSERT_TRUE(ns_->ok());
    auto ns = netns::Netns::OpenByName(ns_->name());
    ASSERT_TRUE(ns.ok()) << ns.status();
    ASSERT_TRUE(netns::BringUpLoopback(*ns).ok());

    runtime::Service svc;
    svc.name = "reviews";
    svc.ns = "default";
    svc.hostname = "reviews.default.svc.cluster.local";
    svc.vips = {*runtime::ParseNetworkAddress("198.19.0.10"),
                *runtime::ParseNetworkAddress("2001:db8:ffff::10")};
    svc.ports = {{9080, 9080}};
    ASSERT_TRUE(dir_->UpsertService(svc).ok());
    workload_.uid = "pod-a";
    workload_.name = "pod-a";
    workload_.ns = "default";
    workload_.addresses = {"198.18.0.1"};

    // The upstream, inside the pod's netns only.
    dnsmasq_ = test_support::Child::Spawn(
        {"/usr/bin/ip", "netns", "exec", ns_->name(), "/usr/sbin/dnsmasq", "--keep-in-foreground",
         "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
         "--pid-file=", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=5399",
         "--user=root", "--group=root", "--host-record=outside.test,192.0.2.7"});
    ASSERT_TRUE(dnsmasq_.started());
    bool up = false;
    for (int i = 0; i < 50 && !up; ++i) {
      up = absl::StrContains(InPod({"@127.0.0.1", "-p", "5399", "+short", "outside.test"}).out,
                             "192.0.2.7");
      if (!up) usleep(100 * 1000);
    }
    ASSERT_TRUE(up) << "dnsmasq did not come up in " << ns_->name();

    netns::PodListenerOptions lo;
    lo.transparent = netns::Transparency::kOff;
    auto listeners = netns::PodListenerSet::Open(*ns, lo);
    ASSERT_TRUE(listeners.ok()) << listeners.status();
    listeners_ = std::move(*listeners);
    factory_ = std::make_shared<netns::NetnsSocketFactory>(std::move(*ns));

    auto loop = runtime::EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    PodDnsOptions o;
    o.upstreams = {*ambient::SocketAddress::Parse("127.0.0.1:5399")};
    o.metrics = metrics_;
    PodAttach attach = PodDnsAttach(loop_.get(), dir_, std::move(o));
    auto a = attach(workload_, listeners_, factory_);
    ASSERT_TRUE(a.ok()) << a.status();
    attached_ = std::move(*a);
    thread_ = std::thread([this] { loop_->Run(); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      OnLoop([this] { attached_.reset(); });
      loop_->Stop();
      thread_.join();
    }
    attached_.reset();
  }

  void OnLoop(std::function<void()> fn) {
    std::promise<void> done;
    loop_->Post([&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }

  RunResult InPod(std::vector<std::string> dig_args) {
    std::vector<std::string> argv = {"/usr/bin/ip",  "netns",    "exec",   ns_->name(),
                                     "/usr/bin/dig", "+tries=1", "+time=2"};
    argv.insert(argv.end(), dig_args.begin(), dig_args.end());
    return test_support::Run(argv);
  }

  std::shared_ptr<runtime::WorkloadDirectory> dir_ = std::make_shared<runtime::WorkloadDirectory>();
  std::shared_ptr<DnsMetrics> metrics_ = std::make_shared<DnsMetrics>();
  runtime::Workload workload_;
  std::unique_ptr<NamedNetns> ns_;
  test_support::Child dnsmasq_;
  netns::PodListenerSet listeners_;
  std::shared_ptr<netns::NetnsSocketFactory> factory_;
  std::unique_ptr<runtime::EventLoop> loop_;
  std::shared_ptr<void> attached_;
  std::thread thread_;
};

TEST_F(PodDnsTest, ServesMeshNamesAndForwardsFromInsideThePod) {
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+short", "reviews"}).out, "198.19.0.10\n");
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+tcp", "+short", "reviews.default.svc"}).out,
            "198.19.0.10\n");
  EXPECT_EQ(InPod({"@::1", "-p", "15053", "+short", "reviews.default", "AAAA"}).out,
            "2001:db8:ffff::10\n");
  // Forwarded on a socket in the pod's netns (the upstream is on the pod's
  // loopback), over UDP and TCP.
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+short", "outside.test"}).out, "192.0.2.7\n");
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+tcp", "+short", "outside.test"}).out,
            "192.0.2.7\n");
  EXPECT_EQ(metrics_->upstream_failures(Transport::kUdp), 0u);
  EXPECT_EQ(metrics_->upstream_requests(Transport::kUdp), 1u);
  EXPECT_EQ(metrics_->upstream_requests(Transport::kTcp), 1u);
}

TEST_F(PodDnsTest, ReleasingThePodClosesItsDnsListeners) {
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+tcp", "+short", "reviews"}).out, "198.19.0.10\n");
  OnLoop([this] { attached_.reset(); });
  listeners_ = netns::PodListenerSet();  // what the node proxy's pod also closes
  RunResult r = InPod({"@127.0.0.1", "-p", "15053", "+tcp", "reviews"});
  EXPECT_FALSE(absl::StrContains(r.out, "198.19.0.10")) << r.out;
}

TEST_F(PodDnsTest, NoDnsListenersIsAnError) {
  netns::PodListenerSet empty;
  PodAttach attach = PodDnsAttach(loop_.get(), dir_, PodDnsOptions());
  PodDnsOptions o;
  o.upstreams = {*ambient::SocketAddress::Parse("127.0.0.1:5399")};
  PodAttach attach2 = PodDnsAttach(loop_.get(), dir_, o);
  EXPECT_EQ(attach(workload_, empty, factory_).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(attach2(workload_, empty, factory_).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// EnablePodDns refuses what cannot work and then leaves the options alone;
// otherwise it turns the 15053 listeners on, installs the hook, and makes
// the metrics and the log the servers use. No netns needed.
TEST(EnablePodDnsTest, ChecksItsInputsAndFillsTheNodeOptions) {
  auto loop = runtime::EventLoop::New();
  ASSERT_TRUE(loop.ok());
  runtime::NodeProxyOptions o;
  PodDnsOptions dns;
  dns.upstreams = {*ambient::SocketAddress::Parse("127.0.0.1:5399")};
  EXPECT_EQ(EnablePodDns(loop->get(), &o, dns).status().code(),
            absl::StatusCode::kInvalidArgument);  // no workloads
  o.workloads = std::make_shared<runtime::WorkloadDirectory>();
  EXPECT_EQ(EnablePodDns(loop->get(), &o, PodDnsOptions()).status().code(),
            absl::StatusCode::kInvalidArgument);  // no upstreams
  EXPECT_EQ(EnablePodDns(nullptr, &o, dns).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EnablePodDns(loop->get(), nullptr, dns).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(o.listeners.dns);
  EXPECT_FALSE(o.pod_attach);

  absl::StatusOr<std::shared_ptr<DnsMetrics>> m = EnablePodDns(loop->get(), &o, dns);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_NE(*m, nullptr);
  EXPECT_TRUE(o.listeners.dns);
  EXPECT_TRUE(o.pod_attach);
}

// Through the node proxy: NodeProxyOptions::pod_attach with the 15053
// listeners on opens the DNS proxy when the pod is captured and closes it
// when the pod is released.
TEST_F(PodDnsTest, NodeProxyServesDnsInEachCapturedPod) {
  // Free the pod's 15053 ports from the fixture's own servers first.
  OnLoop([this] { attached_.reset(); });
  listeners_ = netns::PodListenerSet();

  hbone::testing::TestCa ca;
  hbone::testing::KeyAndCert kc = ca.Leaf(workload_.Identity()->str());
  auto creds = identity::Credentials::FromPem(hbone::testing::TestCa::CertPem(kc),
                                              hbone::testing::TestCa::KeyPem(kc));
  ASSERT_TRUE(creds.ok()) << creds.status();
  auto holder = std::make_shared<identity::CredentialHolder>(*creds);
  auto td = identity::TrustDomain::Parse("cluster.local");
  auto bundle = identity::TrustBundle::FromPem(*td, ca.CaPem());
  ASSERT_TRUE(bundle.ok());
  auto set = identity::TrustBundleSet::Create({*bundle});
  ASSERT_TRUE(set.ok());
  ASSERT_TRUE(dir_->Upsert(workload_).ok());

  runtime::NodeProxyOptions o;
  o.workloads = dir_;
  o.bundles = std::make_shared<identity::TrustBundleSource>(*set);
  o.credentials = [holder](const runtime::Workload&)
      -> absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> { return holder; };
  o.listeners.transparent = netns::Transparency::kOff;
  PodDnsOptions dns;
  dns.upstreams = {*ambient::SocketAddress::Parse("127.0.0.1:5399")};
  dns.metrics = metrics_;
  absl::StatusOr<std::shared_ptr<DnsMetrics>> m = EnablePodDns(loop_.get(), &o, std::move(dns));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(*m, metrics_);
  EXPECT_TRUE(o.listeners.dns);
  std::unique_ptr<runtime::NodeProxy> proxy;
  OnLoop([&] {
    auto p = runtime::NodeProxy::New(loop_.get(), std::move(o));
    ASSERT_TRUE(p.ok()) << p.status();
    proxy = std::move(*p);
    auto ns = netns::Netns::OpenByName(ns_->name());
    ASSERT_TRUE(ns.ok());
    netns::zds::WorkloadInfo info{"pod-a", "default", "default"};
    absl::Status st = proxy->AddPod("pod-a", info, std::move(*ns));
    ASSERT_TRUE(st.ok()) << st;
  });
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+short", "reviews"}).out, "198.19.0.10\n");
  EXPECT_EQ(InPod({"@127.0.0.1", "-p", "15053", "+tcp", "+short", "outside.test"}).out,
            "192.0.2.7\n");
  OnLoop([&] { EXPECT_TRUE(proxy->RemovePod("pod-a")); });
  RunResult r = InPod({"@127.0.0.1", "-p", "15053", "+tcp", "reviews"});
  EXPECT_FALSE(absl::StrContains(r.out, "198.19.0.10")) << r.out;
  OnLoop([&] { proxy.reset(); });
}

}  // namespace
}  // namespace ambient::dns
