// ztunnel's delta ADS client protocol (sans I/O): ambient/xds/delta_ads.h.
#include "ambient/xds/delta_ads.h"

#include <set>

#include <google/protobuf/stubs/logging.h>
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/base/utf8.h"
#include "discovery.pb.h"

namespace ambient::xds {
namespace {

namespace wire = ::ambient::wire::envoy::discovery;

// Bounds on what one response may carry before it is refused outright.
constexpr size_t kMaxResponseBytes = 200u << 20;  // ztunnel's decoding limit

}  // namespace

std::string NodeIdentity::NodeId() const {
  return absl::StrCat("ztunnel~", instance_ip, "~", pod_name, ".", pod_namespace, "~",
                      pod_namespace, ".svc.cluster.local");
}

DeltaAdsSession::DeltaAdsSession(NodeIdentity node,
                                 std::vector<std::pair<std::string, TypeHandler*>> types)
    : node_(std::move(node)) {
  for (auto& [url, handler] : types) {
    Type t;
    t.url = std::move(url);
    t.handler = handler;
    types_.push_back(std::move(t));
  }
}

DeltaAdsSession::Type* DeltaAdsSession::Find(absl::string_view url) {
  for (Type& t : types_) {
    if (t.url == url) return &t;
  }
  return nullptr;
}

std::vector<std::string> DeltaAdsSession::StreamStarted() {
  std::vector<std::string> out;
  for (Type& t : types_) {
    t.acked = false;
    wire::DeltaDiscoveryRequest req;
    wire::Node* n = req.mutable_node();
    n->set_id(node_.NodeId());
    auto* fields = n->mutable_metadata()->mutable_fields();
    (*fields)["NAME"].set_string_value(node_.pod_name);
    (*fields)["NAMESPACE"].set_string_value(node_.pod_namespace);
    (*fields)["INSTANCE_IPS"].set_string_value(node_.instance_ip);
    (*fields)["NODE_NAME"].set_string_value(node_.node_name);
    for (const auto& [k, v] : node_.metadata) (*fields)[k].set_string_value(v);
    req.set_type_url(t.url);
    for (const auto& [name, version] : t.known) {
      (*req.mutable_initial_resource_versions())[name] = version;
    }
    out.push_back(req.SerializeAsString());
  }
  return out;
}

absl::StatusOr<std::string> DeltaAdsSession::OnResponse(absl::string_view bytes) {
  if (bytes.size() > kMaxResponseBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("xDS response of ", bytes.size(), " bytes is over the limit"));
  }
  // Not UTF-8 where the schema says string: the parse fails, and protobuf
  // would also log it to the host's stderr; the library prints nothing.
  // Only around the parse: the handlers run after it.
  wire::DeltaDiscoveryResponse res;
  bool parsed;
  {
    google::protobuf::LogSilencer quiet;
    parsed = res.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  }
  if (!parsed) {
    return absl::InvalidArgumentError("xDS response does not decode as a DeltaDiscoveryResponse");
  }
  Type* t = Find(res.type_url());
  if (t == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("xDS response for type \"", res.type_url(), "\", which was not subscribed"));
  }
  ++stats_.responses;
  TypeStats& counted = stats_.by_type[t->url];
  ++counted.responses;
  for (const wire::Resource& r : res.resources())
    counted.resource_bytes += r.resource().value().size();
  std::vector<Rejection> rejected;
  std::vector<ResourceUpdate> updates;
  std::set<std::string> names;
  for (const wire::Resource& r : res.resources()) {
    if (r.name().empty()) {
      rejected.emplace_back("(unnamed)", "resource without a name");
      continue;
    }
    if (!names.insert(r.name()).second) {
      rejected.emplace_back(r.name(), "named twice in one response");
      continue;
    }
    if (!r.has_resource() || r.resource().type_url() != t->url) {
      rejected.emplace_back(
          r.name(), absl::StrCat("carries type \"", r.resource().type_url(), "\", want ", t->url));
      continue;
    }
    ResourceUpdate u;
    u.name = r.name();
    u.version = r.version();
    u.type_url = r.resource().type_url();
    u.value = r.resource().value();
    updates.push_back(std::move(u));
  }
  std::vector<std::string> removed(res.removed_resources().begin(), res.removed_resources().end());
  stats_.resources += updates.size();
  stats_.removals += removed.size();
  std::vector<Rejection> by_handler = t->handler->Apply(updates, removed);
  std::set<std::string> refused;
  for (const Rejection& r : rejected) refused.insert(r.first);
  for (Rejection& r : by_handler) {
    refused.insert(r.first);
    rejected.push_back(std::move(r));
  }
  for (const std::string& name : removed) t->known.erase(name);
  for (const ResourceUpdate& u : updates) {
    if (refused.count(u.name) == 0) {
      t->known[u.name] = u.version;
    } else {
      t->known.erase(u.name);  // not held: the server sends it again next time
    }
  }

  wire::DeltaDiscoveryRequest reply;
  reply.set_type_url(t->url);
  reply.set_response_nonce(res.nonce());
  if (rejected.empty()) {
    ++stats_.acks;
    t->acked = true;
  } else {
    ++stats_.nacks;
    std::vector<std::string> parts;
    for (const auto& [name, why] : rejected) parts.push_back(absl::StrCat(name, ": ", why));
    // A reason may quote bytes it refused; the message field must be UTF-8.
    last_nack_ = ScrubUtf8(absl::StrJoin(parts, "; "));
    reply.mutable_error_detail()->set_message(last_nack_);
  }
  return reply.SerializeAsString();
}

bool DeltaAdsSession::Acked(const std::string& type_url) const {
  for (const Type& t : types_) {
    if (t.url == type_url) return t.acked;
  }
  return false;
}

bool DeltaAdsSession::Ready() const {
  for (const Type& t : types_) {
    if (!t.acked) return false;
  }
  return !types_.empty();
}

const std::map<std::string, std::string>& DeltaAdsSession::Known(
    const std::string& type_url) const {
  static const std::map<std::string, std::string> kEmpty;
  for (const Type& t : types_) {
    if (t.url == type_url) return t.known;
  }
  return kEmpty;
}

}  // namespace ambient::xds
