// Decoding Istio Authorization resources: the JSON mapping, binary protobuf
// built by hand from field numbers (so the wire layout itself is checked), and
// every rejection.
#include "ambient/authz/policy_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace ambient::authz {
namespace {

TEST(PolicyCodec, DecodesIstioJson) {
  auto p = DecodePolicyJson(R"({
    "name": "deny-b", "namespace": "ns1", "scope": "NAMESPACE", "action": "DENY", "dryRun": true,
    "rules": [{"clauses": [{"matches": [{
      "principals": [{"exact": "cluster.local/ns/b/sa/b"}],
      "notNamespaces": [{"prefix": "kube-"}],
      "sourceIps": [{"address": "xhIAAA==", "length": 15}],
      "destinationPorts": [9080],
      "serviceAccounts": [{"namespace": "b", "serviceAccount": "b"}],
      "namespaces": [{"presence": {}}]
    }]}]}]})");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->key(), "ns1/deny-b");
  EXPECT_EQ(p->scope, Scope::kNamespace);
  EXPECT_EQ(p->action, Action::kDeny);
  EXPECT_TRUE(p->dry_run);
  ASSERT_EQ(p->rules.size(), 1u);
  const Match& m = p->rules[0].clauses[0].matches[0];
  EXPECT_EQ(m.principals[0].kind(), StringMatch::Kind::kExact);
  EXPECT_EQ(m.not_namespaces[0].kind(), StringMatch::Kind::kPrefix);
  EXPECT_EQ(m.namespaces[0].kind(), StringMatch::Kind::kPresence);
  EXPECT_EQ(m.source_ips[0].ToString(), "198.18.0.0/15");
  EXPECT_EQ(m.destination_ports, std::vector<uint16_t>{9080});
  EXPECT_EQ(m.service_accounts[0].service_account, "b");
}

// Minimal protobuf encoder for the test: tag, varint, length-delimited.
std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  s.push_back(static_cast<char>(v));
  return s;
}
std::string Field(int num, const std::string& bytes) {
  return Varint((num << 3) | 2) + Varint(bytes.size()) + bytes;
}
std::string VarintField(int num, uint64_t v) { return Varint(num << 3) + Varint(v); }

TEST(PolicyCodec, DecodesBinaryByIstioFieldNumbers) {
  // Match{ destination_ports(9) = 443, not_source_ips(6) = 198.18.0.0/15 }
  std::string address = Field(1, std::string("\xc6\x12\x00\x00", 4)) + VarintField(2, 15);
  std::string match = VarintField(9, 443) + Field(6, address);
  std::string clause = Field(2, match);
  std::string rule = Field(1, clause);
  std::string authz = Field(1, "allow-443") + Field(2, "ns9") + VarintField(3, 2) +
                      VarintField(4, 0) + Field(5, rule);
  auto p = DecodePolicyProto(authz);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->key(), "ns9/allow-443");
  EXPECT_EQ(p->scope, Scope::kWorkloadSelector);
  EXPECT_EQ(p->action, Action::kAllow);
  const Match& m = p->rules.at(0).clauses.at(0).matches.at(0);
  EXPECT_EQ(m.destination_ports, std::vector<uint16_t>{443});
  EXPECT_EQ(m.not_source_ips.at(0).ToString(), "198.18.0.0/15");
}

TEST(PolicyCodec, RejectsWhatZtunnelWouldSilentlyDrop) {
  struct Case {
    const char* json;
    const char* want;
  } cases[] = {
      {R"({"name":"p","rules":[{"clauses":[{"matches":[{"principals":[{}]}]}]}]})",
       "rules[0].clauses[0].matches[0].principals[0]: string match has none"},
      {R"({"name":"p","rules":[{"clauses":[{"matches":[{"sourceIps":[{"address":"xhIAAA==","length":33}]}]}]}]})",
       "rules[0].clauses[0].matches[0].source_ips[0]: prefix length 33"},
      {R"({"name":"p","rules":[{"clauses":[{"matches":[{"destinationIps":[{"address":"AAA=","length":8}]}]}]}]})",
       "destination_ips[0]: an IP address is 4 or 16 bytes"},
      {R"({"name":"p","rules":[{"clauses":[{"matches":[{"destinationPorts":[70000]}]}]}]})",
       "destination_ports[0]: port 70000 > 65535"},
      {R"({"name":"p","principal":[]})", "invalid policy JSON"},
      {R"({"name":"p","action":"MAYBE"})", "invalid policy JSON"},
      {R"({"name":)", "invalid policy JSON"},
  };
  for (const Case& c : cases) {
    auto p = DecodePolicyJson(c.json);
    ASSERT_FALSE(p.ok()) << c.json;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(c.want), std::string::npos)
        << p.status().message() << " / want: " << c.want;
  }
  EXPECT_FALSE(DecodePolicyProto("\xff\xff\xff").ok());
  EXPECT_FALSE(DecodePolicyProto(VarintField(3, 7)).ok());  // unknown scope value
}

TEST(PolicyCodec, DeepNestingIsRefusedQuickly) {
  std::string deep = R"({"name":"p","rules":)" + std::string(200000, '[') + std::string(200000, ']') + "}";
  auto p = DecodePolicyJson(deep);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("nested deeper than"), std::string::npos) << p.status();
  EXPECT_FALSE(DecodePolicyListJson("[" + deep + "]").ok());
}

TEST(PolicyCodec, ListForms) {
  auto list = DecodePolicyListJson(R"({"policies": [{"name": "a"}, {"name": "b", "namespace": "n"}]})");
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].key(), "n/b");
  auto array = DecodePolicyListJson(R"( [{"name": "a"}] )");
  ASSERT_TRUE(array.ok()) << array.status();
  EXPECT_EQ(array->size(), 1u);
  auto single = DecodePolicyListJson(R"({"name": "policies"})");
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_EQ(single->at(0).name, "policies");
  auto bad = DecodePolicyListJson(
      R"({"policies": [{"name": "a"}, {"name": "b", "rules": [{"clauses": [{"matches": [{"namespaces": [{}]}]}]}]}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("policies[1]: rules[0]"), std::string::npos)
      << bad.status().message();
}

}  // namespace
}  // namespace ambient::authz
