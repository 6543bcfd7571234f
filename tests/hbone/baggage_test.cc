#include "ambient/hbone/baggage.h"

#include <gtest/gtest.h>

#include <string>

namespace ambient::hbone {
namespace {

WorkloadInfo Echo() {
  WorkloadInfo w;
  w.name = "echo";
  w.ns = "default";
  w.canonical_service = "echo-svc";
  w.canonical_revision = "v1";
  w.cluster = "Kubernetes";
  return w;
}

TEST(BaggageTest, BuildUsesZtunnelKeysAndSkipsEmptyValues) {
  EXPECT_EQ(BuildBaggage(Echo()),
            "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,"
            "k8s.deployment.name=echo,service.name=echo-svc,service.version=v1");
  WorkloadInfo pod;
  pod.name = "shell";
  pod.workload_type = "pod";
  pod.region = "eu";
  EXPECT_EQ(BuildBaggage(pod), "k8s.pod.name=shell,cloud.region=eu");
  EXPECT_EQ(BuildBaggage(WorkloadInfo()), "");
}

TEST(BaggageTest, RoundTripsIncludingBytesThatNeedEscaping) {
  WorkloadInfo w = Echo();
  w.workload_type = "job";
  w.name = "a,b=c;d %e\"\xc3\xa9";
  w.zone = "z 1";
  std::string text = BuildBaggage(w);
  EXPECT_EQ(text.find(' '), std::string::npos);
  EXPECT_EQ(text.find(';'), std::string::npos);
  absl::StatusOr<WorkloadInfo> back = ParseBaggage(text);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, w);
}

TEST(BaggageTest, ParseIsLenient) {
  absl::StatusOr<WorkloadInfo> w = ParseBaggage(
      " k8s.namespace.name = ns1 ;prop=1, junk,=x,other.key=zzz,k8s.cronjob.name=nightly,"
      "k8s.widget.name=nope,service.name=,service.version=%zz,k8s.cluster.name=c1,"
      "k8s.cluster.name=c2");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->ns, "ns1");
  EXPECT_EQ(w->name, "nightly");
  EXPECT_EQ(w->workload_type, "cronjob");
  EXPECT_EQ(w->canonical_service, "");    // empty value ignored
  EXPECT_EQ(w->canonical_revision, "");   // malformed escape ignored
  EXPECT_EQ(w->cluster, "c2");            // the later member wins
  EXPECT_TRUE(ParseBaggage("")->empty());
  EXPECT_TRUE(ParseBaggage(",,,;=")->empty());
}

TEST(BaggageTest, ParseRejectsOversizeAndDropsControlBytesAndLongValues) {
  EXPECT_FALSE(ParseBaggage(std::string(kMaxBaggageSize + 1, 'a')).ok());
  EXPECT_TRUE(ParseBaggage(std::string(kMaxBaggageSize, ',')).ok());
  absl::StatusOr<WorkloadInfo> w =
      ParseBaggage("k8s.namespace.name=a%0Ab,k8s.pod.name=" + std::string(kMaxBaggageValue + 1, 'x') +
                   ",service.name=" + std::string(kMaxBaggageValue, 'y'));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->ns, "");
  EXPECT_EQ(w->name, "");
  EXPECT_EQ(w->canonical_service, std::string(kMaxBaggageValue, 'y'));
  EXPECT_TRUE(ParseBaggage("k8s.pod.name=%4")->name.empty());
  EXPECT_TRUE(ParseBaggage("k8s.pod.name=%")->name.empty());
}

TEST(CheckWorkloadInfo, AcceptsWhatBaggageCarriesAndNamesTheBadField) {
  EXPECT_TRUE(CheckWorkloadInfo(WorkloadInfo()).ok());
  EXPECT_TRUE(CheckWorkloadInfo(Echo()).ok());
  for (const char* type : {"deployment", "cronjob", "pod", "job"}) {
    WorkloadInfo w = Echo();
    w.workload_type = type;
    EXPECT_TRUE(CheckWorkloadInfo(w).ok()) << type;
  }
  WorkloadInfo w = Echo();
  w.workload_type = "statefulset";
  EXPECT_EQ(CheckWorkloadInfo(w).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckWorkloadInfo(w).message(),
            "workload_type \"statefulset\" is not deployment, cronjob, pod or job");
  w = Echo();
  w.zone = std::string(kMaxBaggageValue, 'z');
  EXPECT_TRUE(CheckWorkloadInfo(w).ok());
  w.zone += 'z';
  EXPECT_EQ(CheckWorkloadInfo(w).message(), "workload zone is longer than 256 bytes");
  w = Echo();
  w.canonical_revision = "v1\x7f";
  EXPECT_EQ(CheckWorkloadInfo(w).message(),
            "workload canonical_revision contains a control character");
  w.name = "bad\nname";  // earlier fields are reported first
  EXPECT_EQ(CheckWorkloadInfo(w).message(), "workload name contains a control character");
}

}  // namespace
}  // namespace ambient::hbone
