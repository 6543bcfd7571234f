// Bytes from istiod or the CA that are not UTF-8 where the schema says
// "string": each decoder refuses them with its own error and the library
// prints nothing (protobuf's default logger would write to the host's
// stderr), and a NACK quoting bad bytes still goes out as valid UTF-8.
#include <string>

#include "ambient/authz/policy_codec.h"
#include "ambient/base/utf8.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/xds/address_handler.h"
#include "ambient/xds/ca_client.h"
#include "ambient/xds/delta_ads.h"
#include "discovery.pb.h"
#include "gtest/gtest.h"
#include "xds/recorder.h"

namespace ambient::xds {
namespace {

namespace wire = ::ambient::wire::envoy::discovery;

// A length-delimited field `tag` holding the two bytes FF FE.
std::string BadText(char tag) { return std::string{tag, '\x02', '\xFF', '\xFE'}; }

TEST(QuietDecodeTest, AddressWithBadUtf8NameIsRefusedSilently) {
  // Address{workload(1): Workload{name(1): FF FE}}
  std::string bytes = std::string{'\x0A', '\x04'} + BadText('\x0A');
  ::testing::internal::CaptureStderr();
  auto got = DecodeAddress(bytes);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "not an istio.workload.Address");
  EXPECT_EQ(err, "");
}

TEST(QuietDecodeTest, ResponseWithBadUtf8NonceIsRefusedSilently) {
  testing::Recorder addresses;
  DeltaAdsSession session(NodeIdentity{}, {{kAddressType, &addresses}});
  // DeltaDiscoveryResponse{nonce(5): FF FE}
  ::testing::internal::CaptureStderr();
  auto got = session.OnResponse(BadText('\x2A'));
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "xDS response does not decode as a DeltaDiscoveryResponse");
  EXPECT_EQ(err, "");
}

TEST(QuietDecodeTest, CaAnswerWithBadUtf8ChainIsRefusedSilently) {
  auto id = identity::SpiffeId::Parse("spiffe://cluster.local/ns/default/sa/web");
  ASSERT_TRUE(id.ok());
  auto csr = MakeCsr(*id);
  ASSERT_TRUE(csr.ok()) << csr.status();
  // IstioCertificateResponse{cert_chain(1): FF FE}
  ::testing::internal::CaptureStderr();
  auto got = DecodeCertificateResponse(BadText('\x0A'), *csr, 1700000000);
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().message(), "CA response does not decode");
  EXPECT_EQ(err, "");
}

TEST(QuietDecodeTest, PolicyWithBadUtf8NameIsRefusedSilently) {
  // Authorization{name(1): FF FE}
  ::testing::internal::CaptureStderr();
  auto proto = authz::DecodePolicyProto(BadText('\x0A'));
  auto json = authz::DecodePolicyJson("{\"name\": \"\xFF\xFE\", \"namespace\": \"ns\"}");
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(proto.ok());
  EXPECT_EQ(proto.status().message(), "invalid Authorization protobuf");
  EXPECT_FALSE(json.ok());
  EXPECT_EQ(err, "");
}

TEST(QuietDecodeTest, NackQuotingBadBytesIsValidUtf8) {
  testing::Recorder addresses;
  addresses.refuse["w1"] = "address \xFF\xFE is not an IP";
  DeltaAdsSession session(NodeIdentity{}, {{kAddressType, &addresses}});
  session.StreamStarted();
  wire::DeltaDiscoveryResponse r;
  r.set_type_url(kAddressType);
  r.set_nonce("n1");
  wire::Resource* res = r.add_resources();
  res->set_name("w1");
  res->set_version("1");
  res->mutable_resource()->set_type_url(kAddressType);
  res->mutable_resource()->set_value("x");
  ::testing::internal::CaptureStderr();
  auto nack = session.OnResponse(r.SerializeAsString());
  std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(nack.ok()) << nack.status();
  EXPECT_EQ(err, "");
  wire::DeltaDiscoveryRequest req;
  ASSERT_TRUE(req.ParseFromString(*nack));  // a peer checking UTF-8 accepts it
  EXPECT_TRUE(IsUtf8(req.error_detail().message()));
  EXPECT_EQ(req.error_detail().message(), "w1: address \xEF\xBF\xBD\xEF\xBF\xBD is not an IP");
}

}  // namespace
}  // namespace ambient::xds
