#include "ambient/hbone/telemetry.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ambient::hbone {

namespace {

// Quote a string value the way ztunnel's logs show them ("...").
std::string Quoted(absl::string_view v) { return absl::StrCat("\"", absl::CEscape(v), "\""); }

std::string LabelValue(absl::string_view v) {
  if (v.empty()) return "unknown";
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

// Istio reports principals without the spiffe:// scheme.
std::string Principal(absl::string_view id) {
  constexpr absl::string_view kScheme = "spiffe://";
  if (id.substr(0, kScheme.size()) == kScheme) id.remove_prefix(kScheme.size());
  return std::string(id);
}

std::string Labels(const ConnectionRecord& r) {
  const char* unknown = "unknown";
  std::string src = Principal(r.src_identity);
  std::string dst = Principal(r.dst_identity);
  return absl::StrCat(
      "reporter=\"", r.direction == Direction::kOutbound ? "source" : "destination", "\",",
      "source_workload=\"", unknown, "\",source_canonical_service=\"", unknown,
      "\",source_canonical_revision=\"", unknown, "\",source_workload_namespace=\"", unknown,
      "\",source_principal=\"", LabelValue(src), "\",source_app=\"", unknown,
      "\",source_version=\"", unknown, "\",source_cluster=\"", unknown,
      "\",destination_service=\"", LabelValue(r.dst_hbone_addr),
      "\",destination_service_namespace=\"", unknown, "\",destination_service_name=\"", unknown,
      "\",destination_workload=\"", unknown, "\",destination_canonical_service=\"", unknown,
      "\",destination_canonical_revision=\"", unknown, "\",destination_workload_namespace=\"",
      unknown, "\",destination_principal=\"", LabelValue(dst), "\",destination_app=\"", unknown,
      "\",destination_version=\"", unknown, "\",destination_cluster=\"", unknown,
      "\",request_protocol=\"tcp\",response_flags=\"", LabelValue(r.response_flags),
      "\",connection_security_policy=\"mutual_tls\"");
}

}  // namespace

std::string FormatAccessLog(const ConnectionRecord& r) {
  std::string out = "connection complete";
  if (!r.src_addr.empty()) absl::StrAppend(&out, " src.addr=", r.src_addr);
  if (!r.src_identity.empty()) absl::StrAppend(&out, " src.identity=", Quoted(r.src_identity));
  if (!r.dst_addr.empty()) absl::StrAppend(&out, " dst.addr=", r.dst_addr);
  if (!r.dst_hbone_addr.empty()) absl::StrAppend(&out, " dst.hbone_addr=", r.dst_hbone_addr);
  if (!r.dst_identity.empty()) absl::StrAppend(&out, " dst.identity=", Quoted(r.dst_identity));
  absl::StrAppend(&out, " direction=", Quoted(r.direction == Direction::kOutbound ? "outbound" : "inbound"),
                  " bytes_sent=", r.bytes_sent, " bytes_recv=", r.bytes_recv, " duration=",
                  Quoted(absl::StrCat(absl::ToInt64Milliseconds(r.duration), "ms")));
  if (!r.error.ok()) absl::StrAppend(&out, " error=", Quoted(r.error.message()));
  return out;
}

void Metrics::Add(const std::string& name, const std::string& labels, uint64_t v) {
  std::lock_guard<std::mutex> lock(mu_);
  counters_[name][labels] += v;
}

void Metrics::ConnectionOpened(const ConnectionRecord& r) {
  Add("istio_tcp_connections_opened_total", Labels(r), 1);
}

void Metrics::ConnectionClosed(const ConnectionRecord& r) {
  std::string labels = Labels(r);
  Add("istio_tcp_connections_closed_total", labels, 1);
  if (!r.error.ok()) Add("istio_tcp_connections_failed_total", labels, 1);
  // Istio convention: "received" is what the destination received.
  uint64_t client_to_server = r.direction == Direction::kOutbound ? r.bytes_sent : r.bytes_recv;
  uint64_t server_to_client = r.direction == Direction::kOutbound ? r.bytes_recv : r.bytes_sent;
  Add("istio_tcp_received_bytes_total", labels, client_to_server);
  Add("istio_tcp_sent_bytes_total", labels, server_to_client);
}

uint64_t Metrics::Total(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = counters_.find(name);
  if (it == counters_.end()) return 0;
  uint64_t sum = 0;
  for (const auto& [labels, v] : it->second) sum += v;
  return sum;
}

std::string Metrics::Prometheus() const {
  static const std::map<std::string, const char*> kHelp = {
      {"istio_tcp_connections_closed_total", "Proxied TCP connections that ended."},
      {"istio_tcp_connections_failed_total", "Proxied TCP connections that ended with an error."},
      {"istio_tcp_connections_opened_total", "Proxied TCP connections that started."},
      {"istio_tcp_received_bytes_total", "Payload bytes from client to server."},
      {"istio_tcp_sent_bytes_total", "Payload bytes from server to client."},
  };
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, series] : counters_) {
    auto help = kHelp.find(name);
    absl::StrAppend(&out, "# HELP ", name, " ", help != kHelp.end() ? help->second : name, "\n");
    absl::StrAppend(&out, "# TYPE ", name, " counter\n");
    for (const auto& [labels, v] : series) absl::StrAppend(&out, name, "{", labels, "} ", v, "\n");
  }
  return out;
}

}  // namespace ambient::hbone
