#include "ambient/hbone/telemetry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace ambient::hbone {
namespace {

using ::testing::HasSubstr;

TEST(TelemetryTest, AccessLogHasZtunnelFieldsInOrder) {
  ConnectionRecord r;
  r.direction = Direction::kInbound;
  r.src_addr = "10.244.0.24:46238";
  r.src_identity = "spiffe://cluster.local/ns/default/sa/default";
  r.dst_addr = "10.244.0.42:15008";
  r.dst_hbone_addr = "10.244.0.42:80";
  r.bytes_sent = 490;
  r.bytes_recv = 67;
  r.duration = absl::Milliseconds(13);
  EXPECT_EQ(FormatAccessLog(r),
            "connection complete src.addr=10.244.0.24:46238 "
            "src.identity=\"spiffe://cluster.local/ns/default/sa/default\" "
            "dst.addr=10.244.0.42:15008 dst.hbone_addr=10.244.0.42:80 direction=\"inbound\" "
            "bytes_sent=490 bytes_recv=67 duration=\"13ms\"");
  r.error = absl::UnavailableError("connect \"refused\"");
  EXPECT_THAT(FormatAccessLog(r), HasSubstr(R"( error="connect \"refused\"")"));
}

TEST(TelemetryTest, MetricsUseIstioNamesAndByteConvention) {
  Metrics m;
  ConnectionRecord out;
  out.direction = Direction::kOutbound;
  out.src_identity = "spiffe://cluster.local/ns/a/sa/x";
  out.bytes_sent = 100;  // client -> server
  out.bytes_recv = 7;
  m.ConnectionOpened(out);
  m.ConnectionClosed(out);
  ConnectionRecord in = out;
  in.direction = Direction::kInbound;
  in.bytes_sent = 7;  // server -> client
  in.bytes_recv = 100;
  in.error = absl::UnavailableError("x");
  m.ConnectionOpened(in);
  m.ConnectionClosed(in);
  EXPECT_EQ(m.Total("istio_tcp_received_bytes_total"), 200u);
  EXPECT_EQ(m.Total("istio_tcp_sent_bytes_total"), 14u);
  EXPECT_EQ(m.Total("istio_tcp_connections_opened_total"), 2u);
  EXPECT_EQ(m.Total("istio_tcp_connections_failed_total"), 1u);
  std::string text = m.Prometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE istio_tcp_sent_bytes_total counter\n"));
  EXPECT_THAT(text, HasSubstr("reporter=\"source\""));
  EXPECT_THAT(text, HasSubstr("reporter=\"destination\""));
  EXPECT_THAT(text, HasSubstr("source_principal=\"cluster.local/ns/a/sa/x\""));
  EXPECT_THAT(text, HasSubstr("destination_principal=\"unknown\""));
  EXPECT_THAT(text, HasSubstr("connection_security_policy=\"mutual_tls\""));
}

TEST(TelemetryTest, AccessLogPrintsWorkloadsInZtunnelOrder) {
  ConnectionRecord r;
  r.direction = Direction::kOutbound;
  r.src_addr = "10.244.0.24:46238";
  r.src = {"shell", "", "default", "shell", "", "Kubernetes", "", ""};
  r.src_identity = "spiffe://cluster.local/ns/default/sa/default";
  r.dst_addr = "10.244.0.42:15008";
  r.dst_hbone_addr = "10.96.108.116:80";
  r.dst_service = "echo.default.svc.cluster.local";
  r.dst.name = "echo";
  r.dst.ns = "prod";
  r.dst.cluster = "east";
  r.dst_identity = "spiffe://cluster.local/ns/prod/sa/echo";
  r.bytes_sent = 67;
  r.bytes_recv = 490;
  r.duration = absl::Milliseconds(13);
  EXPECT_EQ(FormatAccessLog(r),
            "connection complete src.addr=10.244.0.24:46238 src.workload=\"shell\" "
            "src.namespace=\"default\" src.identity=\"spiffe://cluster.local/ns/default/sa/default\" "
            "src.cluster=\"Kubernetes\" dst.addr=10.244.0.42:15008 dst.hbone_addr=10.96.108.116:80 "
            "dst.service=\"echo.default.svc.cluster.local\" dst.workload=\"echo\" "
            "dst.namespace=\"prod\" dst.identity=\"spiffe://cluster.local/ns/prod/sa/echo\" "
            "dst.cluster=\"east\" direction=\"outbound\" bytes_sent=67 bytes_recv=490 "
            "duration=\"13ms\"");
  // Values are quoted and escaped: a name cannot forge another field.
  r.src.name = "x\" dst.workload=\"y";
  EXPECT_THAT(FormatAccessLog(r), HasSubstr(R"(src.workload="x\" dst.workload=\"y")"));
}

TEST(TelemetryTest, MetricsLabelWorkloadsAndSayUnknownWhenMissing) {
  Metrics m;
  ConnectionRecord r;
  r.direction = Direction::kInbound;
  r.src.name = "shell";
  r.src.ns = "default";
  r.src.canonical_service = "shell-svc";
  r.src.canonical_revision = "v2";
  r.src.cluster = "Kubernetes";
  r.dst.name = "echo";
  r.dst.ns = "prod";
  r.dst_service = "echo.prod.svc.cluster.local";
  m.ConnectionOpened(r);
  std::string text = m.Prometheus();
  for (const char* label :
       {"source_workload=\"shell\"", "source_workload_namespace=\"default\"",
        "source_canonical_service=\"shell-svc\"", "source_canonical_revision=\"v2\"",
        "source_app=\"shell-svc\"", "source_version=\"v2\"", "source_cluster=\"Kubernetes\"",
        "destination_workload=\"echo\"", "destination_workload_namespace=\"prod\"",
        "destination_service=\"echo.prod.svc.cluster.local\"",
        "destination_service_name=\"echo\"", "destination_service_namespace=\"prod\"",
        "destination_canonical_service=\"unknown\"", "destination_cluster=\"unknown\""}) {
    EXPECT_THAT(text, HasSubstr(label));
  }
  EXPECT_THAT(text, ::testing::Not(HasSubstr("source_region")));
  r.dst.zone = "z1";
  m.ConnectionOpened(r);
  EXPECT_THAT(m.Prometheus(), HasSubstr("source_region=\"unknown\",source_zone=\"unknown\","
                                        "destination_region=\"unknown\",destination_zone=\"z1\""));
}

TEST(TelemetryTest, RecordsWithoutMetadataKeepTheirLabels) {
  Metrics m;
  ConnectionRecord r;
  r.dst_hbone_addr = "198.18.0.2:80";
  m.ConnectionOpened(r);
  EXPECT_THAT(m.Prometheus(), HasSubstr(
            "# HELP istio_tcp_connections_opened_total Proxied TCP connections that started.\n"
            "# TYPE istio_tcp_connections_opened_total counter\n"
            "istio_tcp_connections_opened_total{reporter=\"source\",source_workload=\"unknown\","
            "source_canonical_service=\"unknown\",source_canonical_revision=\"unknown\","
            "source_workload_namespace=\"unknown\",source_principal=\"unknown\","
            "source_app=\"unknown\",source_version=\"unknown\",source_cluster=\"unknown\","
            "destination_service=\"198.18.0.2:80\",destination_service_namespace=\"unknown\","
            "destination_service_name=\"unknown\",destination_workload=\"unknown\","
            "destination_canonical_service=\"unknown\",destination_canonical_revision=\"unknown\","
            "destination_workload_namespace=\"unknown\",destination_principal=\"unknown\","
            "destination_app=\"unknown\",destination_version=\"unknown\","
            "destination_cluster=\"unknown\",request_protocol=\"tcp\",response_flags=\"-\","
            "connection_security_policy=\"mutual_tls\"} 1\n"));
  // The counters that have no series yet stay listed at 0.
  EXPECT_THAT(m.Prometheus(), HasSubstr("\nistio_tcp_connections_closed_total 0\n"));
  EXPECT_THAT(m.Prometheus(), ::testing::Not(HasSubstr("istio_tcp_connections_opened_total 0")));
}

TEST(TelemetryTest, EveryCounterIsListedAtZeroBeforeTheFirstConnection) {
  Metrics m;
  std::string text = m.Prometheus();
  for (const char* name : {"istio_tcp_connections_opened_total", "istio_tcp_connections_closed_total",
                           "istio_tcp_connections_failed_total", "istio_tcp_received_bytes_total",
                           "istio_tcp_sent_bytes_total"}) {
    EXPECT_THAT(text, HasSubstr(absl::StrCat("# TYPE ", name, " counter\n", name, " 0\n")));
  }
}

}  // namespace
}  // namespace ambient::hbone
