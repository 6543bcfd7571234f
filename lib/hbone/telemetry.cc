#include "ambient/hbone/telemetry.h"

#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ambient::hbone {

bool WorkloadInfo::empty() const { return *this == WorkloadInfo(); }

void WorkloadInfo::Merge(const WorkloadInfo& o) {
  auto fill = [](std::string* mine, const std::string& theirs) {
    if (mine->empty()) *mine = theirs;
  };
  fill(&name, o.name);
  fill(&workload_type, o.workload_type);
  fill(&ns, o.ns);
  fill(&canonical_service, o.canonical_service);
  fill(&canonical_revision, o.canonical_revision);
  fill(&cluster, o.cluster);
  fill(&region, o.region);
  fill(&zone, o.zone);
}

bool operator==(const WorkloadInfo& a, const WorkloadInfo& b) {
  return a.name == b.name && a.workload_type == b.workload_type && a.ns == b.ns &&
         a.canonical_service == b.canonical_service &&
         a.canonical_revision == b.canonical_revision && a.cluster == b.cluster &&
         a.region == b.region && a.zone == b.zone;
}

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

// ServiceParts splits "name.ns.svc..." into (name, ns); ("", "") otherwise.
std::pair<std::string, std::string> ServiceParts(absl::string_view host) {
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() < 3 || parts[2] != "svc" || parts[0].empty() || parts[1].empty()) return {};
  return {std::string(parts[0]), std::string(parts[1])};
}

void AppendLabel(std::string* out, absl::string_view name, absl::string_view value) {
  if (!out->empty()) out->push_back(',');
  absl::StrAppend(out, name, "=\"", LabelValue(value), "\"");
}

std::string Labels(const ConnectionRecord& r) {
  std::string out;
  AppendLabel(&out, "reporter", r.direction == Direction::kOutbound ? "source" : "destination");
  AppendLabel(&out, "source_workload", r.src.name);
  AppendLabel(&out, "source_canonical_service", r.src.canonical_service);
  AppendLabel(&out, "source_canonical_revision", r.src.canonical_revision);
  AppendLabel(&out, "source_workload_namespace", r.src.ns);
  AppendLabel(&out, "source_principal", Principal(r.src_identity));
  AppendLabel(&out, "source_app", r.src.canonical_service);
  AppendLabel(&out, "source_version", r.src.canonical_revision);
  AppendLabel(&out, "source_cluster", r.src.cluster);
  AppendLabel(&out, "destination_service", r.dst_service.empty() ? r.dst_hbone_addr : r.dst_service);
  auto [svc_name, svc_ns] = ServiceParts(r.dst_service);
  AppendLabel(&out, "destination_service_namespace", svc_ns);
  AppendLabel(&out, "destination_service_name", svc_name);
  AppendLabel(&out, "destination_workload", r.dst.name);
  AppendLabel(&out, "destination_canonical_service", r.dst.canonical_service);
  AppendLabel(&out, "destination_canonical_revision", r.dst.canonical_revision);
  AppendLabel(&out, "destination_workload_namespace", r.dst.ns);
  AppendLabel(&out, "destination_principal", Principal(r.dst_identity));
  AppendLabel(&out, "destination_app", r.dst.canonical_service);
  AppendLabel(&out, "destination_version", r.dst.canonical_revision);
  AppendLabel(&out, "destination_cluster", r.dst.cluster);
  AppendLabel(&out, "request_protocol", "tcp");
  AppendLabel(&out, "response_flags", r.response_flags);
  AppendLabel(&out, "connection_security_policy", "mutual_tls");
  // Locality labels only when known, as ztunnel does.
  if (!r.src.region.empty() || !r.src.zone.empty() || !r.dst.region.empty() ||
      !r.dst.zone.empty()) {
    AppendLabel(&out, "source_region", r.src.region);
    AppendLabel(&out, "source_zone", r.src.zone);
    AppendLabel(&out, "destination_region", r.dst.region);
    AppendLabel(&out, "destination_zone", r.dst.zone);
  }
  return out;
}

void AppendQuoted(std::string* out, absl::string_view key, absl::string_view v) {
  if (!v.empty()) absl::StrAppend(out, " ", key, "=", Quoted(v));
}

}  // namespace

std::string FormatAccessLog(const ConnectionRecord& r) {
  std::string out = "connection complete";
  if (!r.src_addr.empty()) absl::StrAppend(&out, " src.addr=", r.src_addr);
  AppendQuoted(&out, "src.workload", r.src.name);
  AppendQuoted(&out, "src.namespace", r.src.ns);
  AppendQuoted(&out, "src.identity", r.src_identity);
  AppendQuoted(&out, "src.cluster", r.src.cluster);
  if (!r.dst_addr.empty()) absl::StrAppend(&out, " dst.addr=", r.dst_addr);
  if (!r.dst_hbone_addr.empty()) absl::StrAppend(&out, " dst.hbone_addr=", r.dst_hbone_addr);
  AppendQuoted(&out, "dst.service", r.dst_service);
  AppendQuoted(&out, "dst.workload", r.dst.name);
  AppendQuoted(&out, "dst.namespace", r.dst.ns);
  AppendQuoted(&out, "dst.identity", r.dst_identity);
  AppendQuoted(&out, "dst.cluster", r.dst.cluster);
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
  // Every istio_tcp_* counter is listed from the start: before its first
  // connection as one sample without labels at 0, so a scraper (or a user
  // with curl) sees the whole set at once.
  std::map<std::string, const std::map<std::string, uint64_t>*> all;
  for (const auto& [name, help] : kHelp) all[name] = nullptr;
  for (const auto& [name, series] : counters_) all[name] = &series;
  std::string out;
  for (const auto& [name, series] : all) {
    auto help = kHelp.find(name);
    absl::StrAppend(&out, "# HELP ", name, " ", help != kHelp.end() ? help->second : name, "\n");
    absl::StrAppend(&out, "# TYPE ", name, " counter\n");
    if (series == nullptr || series->empty()) {
      absl::StrAppend(&out, name, " 0\n");
      continue;
    }
    for (const auto& [labels, v] : *series) absl::StrAppend(&out, name, "{", labels, "} ", v, "\n");
  }
  return out;
}

}  // namespace ambient::hbone
