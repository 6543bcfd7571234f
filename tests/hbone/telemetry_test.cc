#include "ambient/hbone/telemetry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace ambient::hbone
