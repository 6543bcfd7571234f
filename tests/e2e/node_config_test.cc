// The node config file of the example node agent and node proxy: what they
// accept, and that every malformed file is refused with a reason.
#include "node_config.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace ambient::examples {
namespace {

class NodeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-node-config-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
  }
  void TearDown() override {
    unlink(Path().c_str());
    rmdir(dir_.c_str());
  }
  std::string Path() const { return dir_ + "/node.json"; }
  absl::StatusOr<NodeConfig> Load(const std::string& text) {
    std::ofstream(Path()) << text;
    return LoadNodeConfig(Path());
  }
  std::string dir_;
};

TEST_F(NodeConfigTest, ReadsWorkloadsAndResolvesRelativePaths) {
  absl::StatusOr<NodeConfig> c = Load(R"({
    "trust_domain": "example.org", "trust_bundle": "ca.pem",
    "workloads": [
      {"uid": "a", "name": "client", "namespace": "demo", "service_account": "sa-a",
       "addresses": ["198.18.1.2", "2001:db8:1::2"], "netns": "pod-a",
       "cert": "a.pem", "key": "/abs/a.key", "policies": ["demo/p"]},
      {"uid": "b", "name": "legacy", "namespace": "demo", "addresses": ["198.18.2.2"],
       "protocol": "NONE", "trust_domain": "other.org"}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_bundle, dir_ + "/ca.pem");
  ASSERT_EQ(c->pods.size(), 2u);
  const PodConfig& a = c->pods[0];
  EXPECT_EQ(a.workload.Identity()->str(), "spiffe://example.org/ns/demo/sa/sa-a");
  EXPECT_EQ(a.workload.addresses.size(), 2u);
  EXPECT_TRUE(a.workload.hbone);
  EXPECT_EQ(a.netns, "pod-a");
  EXPECT_EQ(a.cert, dir_ + "/a.pem");
  EXPECT_EQ(a.key, "/abs/a.key");
  EXPECT_EQ(a.workload.policies, std::vector<std::string>{"demo/p"});
  const PodConfig& b = c->pods[1];
  EXPECT_FALSE(b.workload.hbone);
  EXPECT_EQ(b.workload.Identity()->str(), "spiffe://other.org/ns/demo/sa/default");
  EXPECT_TRUE(b.netns.empty());
  EXPECT_TRUE(b.cert.empty());
}

TEST_F(NodeConfigTest, LocalConfigBringsServicesAndFillsUidOnlyPods) {
  std::string mesh = dir_ + "/mesh.yaml";
  std::ofstream(mesh) << R"(
workloads:
- uid: pod-b
  name: server
  namespace: demo
  serviceAccount: server
  workloadIps: ["198.18.2.2"]
  protocol: HBONE
  services: {"demo/server.demo.svc.cluster.local": {80: 9080}}
- uid: elsewhere
  name: other
  namespace: demo
  workloadIps: ["198.18.7.7"]
services:
- name: server
  namespace: demo
  hostname: server.demo.svc.cluster.local
  vips: ["/198.19.0.10"]
  ports: {80: 9080}
policies:
- {name: p, namespace: demo, scope: Namespace, action: Allow, rules: [[[{destinationPorts: [9080]}]]]}
)";
  absl::StatusOr<NodeConfig> c = Load(R"({"trust_bundle": "ca.pem", "local_config": "mesh.yaml",
    "workloads": [{"uid": "pod-b", "netns": "pod-b", "cert": "b.pem", "key": "b.key"}]})");
  unlink(mesh.c_str());
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->local_config, mesh);
  ASSERT_EQ(c->pods.size(), 2u);
  EXPECT_EQ(c->pods[0].workload.name, "server");  // from the local config
  EXPECT_EQ(c->pods[0].netns, "pod-b");           // from the node file
  EXPECT_EQ(c->pods[0].cert, dir_ + "/b.pem");
  EXPECT_EQ(c->pods[1].workload.uid, "elsewhere");
  EXPECT_TRUE(c->pods[1].netns.empty());
  ASSERT_EQ(c->services.size(), 1u);
  EXPECT_EQ(c->services[0].hostname, "server.demo.svc.cluster.local");
  ASSERT_EQ(c->policies.size(), 1u);

  // A uid-only entry the local config lacks, and a missing local config.
  std::ofstream(mesh) << "workloads: []\n";
  absl::StatusOr<NodeConfig> missing = Load(R"({"trust_bundle": "ca.pem",
    "local_config": "mesh.yaml", "workloads": [{"uid": "pod-b", "netns": "pod-b"}]})");
  unlink(mesh.c_str());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("workload pod-b is not in"), std::string::npos)
      << missing.status();
  EXPECT_EQ(Load(R"({"trust_bundle": "ca.pem", "local_config": "nope.yaml", "workloads": []})")
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(NodeConfigTest, MalformedFilesAreRefusedWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {"[]", "want a JSON object"},
      {R"({"workloads": []})", "trust_bundle is required"},
      {R"({"trust_bundle": "x", "workloads": {}})", "workloads must be a list"},
      {R"({"trust_bundle": "x", "workloads": [], "extra": 1})", "unknown key \"extra\""},
      {R"({"trust_bundle": 7, "workloads": []})", "trust_bundle: want a string"},
      {R"({"trust_bundle": "x", "workloads": [1]})", "workloads[0]: want an object"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "addresses": "198.18.1.2"}]})",
       "workloads[0].addresses: want a list"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "addresses": [1]}]})",
       "workloads[0].addresses[0]: want a string"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "addresses": ["10.0.0.300"]}]})",
       "is not a numeric IP"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "protocol": "TCP"}]})",
       "workloads[0].protocol"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "cert": "c.pem"}]})",
       "cert and key go together"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "namespace": "s"}]})",
       "needs a uid, a name and a namespace"},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "colour": "red"}]})",
       "unknown key \"colour\""},
      {R"({"trust_bundle": "x", "workloads": [{"uid": "a", "name": "n", "namespace": "s",
          "trust_domain": "Bad Domain"}]})",
       "identity"},
  };
  for (const auto& [text, want] : cases) {
    absl::StatusOr<NodeConfig> c = Load(text);
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(c.status().message().find(want), absl::string_view::npos)
        << text << " -> " << c.status();
  }
  EXPECT_EQ(LoadNodeConfig(dir_ + "/missing.json").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NodeConfigTest, DeeplyNestedJsonIsRefusedWithoutCrashing) {
  std::string deep(100000, '[');
  absl::StatusOr<NodeConfig> c = Load(deep);
  EXPECT_FALSE(c.ok());
}

// ParseNodeConfig works on text alone: relative paths are resolved against
// the given directory, no file is read (none of them exists), and errors
// about the whole document carry the given name.
TEST(ParseNodeConfig, ParsesTextWithoutReadingFiles) {
  absl::StatusOr<NodeConfig> c = ParseNodeConfig(
      R"({"trust_bundle": "ca.pem", "workloads": [{"uid": "a", "name": "n", "namespace": "demo",
          "addresses": ["198.18.1.2"], "cert": "a.pem", "key": "a.key"}]})",
      "/nonexistent/base");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->trust_bundle, "/nonexistent/base/ca.pem");
  ASSERT_EQ(c->pods.size(), 1u);
  EXPECT_EQ(c->pods[0].cert, "/nonexistent/base/a.pem");
  EXPECT_EQ(c->pods[0].key, "/nonexistent/base/a.key");

  absl::StatusOr<NodeConfig> bad = ParseNodeConfig("{", "/x", "inline.json");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("inline.json"), absl::string_view::npos) << bad.status();
  // A NUL byte does not end the text: what follows it is not ignored.
  const std::string ok = R"({"trust_bundle": "ca.pem", "workloads": []})";
  const std::string nul = ok + std::string("\0junk", 5);
  EXPECT_EQ(ParseNodeConfig(nul, "/x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ParseNodeConfig(ok, "/x").ok());
}

}  // namespace
}  // namespace ambient::examples
