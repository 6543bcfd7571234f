// ambient/xds/delta_ads.h: ztunnel's delta ADS client protocol, sans I/O.
//
// Object model. A DeltaAdsSession is the protocol state of the xDS client
// ztunnel runs against istiod: one bidirectional gRPC stream
// (/envoy.service.discovery.v3.AggregatedDiscoveryService/
// DeltaAggregatedResources) carrying DeltaDiscoveryRequests up and
// DeltaDiscoveryResponses down. It never touches the stream itself: the host
// (a grpc::Channel call, ambient/grpc/channel.h) sends the serialized
// requests it returns and hands it each response message.
//
// On every new stream, StreamStarted returns one initial request per
// subscribed type, in order: the node (ztunnel's id and metadata), the type,
// an empty subscribe list (the wildcard subscription as ztunnel sends it,
// not "*"), and initial_resource_versions = every resource of that type held
// from earlier streams, so a reconnect neither loses nor repeats anything.
// Each response goes to the type's handler, which applies what it can and
// names what it rejected; the session answers with an ACK (type + nonce) or,
// when anything was rejected or did not decode, a NACK whose error_detail
// message is "name: reason; name: reason" (the good resources stay applied).
// Removals are applied and forgotten. Rejected resources are not recorded
// as held, so the server sends them again after a reconnect.
//
// Threads: one thread at a time.
#ifndef AMBIENT_XDS_DELTA_ADS_H_
#define AMBIENT_XDS_DELTA_ADS_H_

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::xds {

inline constexpr char kAdsMethod[] =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
inline constexpr char kAddressType[] = "type.googleapis.com/istio.workload.Address";
inline constexpr char kAuthorizationType[] = "type.googleapis.com/istio.security.Authorization";

// NodeIdentity is what ztunnel reads from its environment (POD_NAME,
// POD_NAMESPACE, INSTANCE_IP, NODE_NAME, ISTIO_META_*).
struct NodeIdentity {
  std::string pod_name;
  std::string pod_namespace;
  std::string instance_ip = "1.1.1.1";  // ztunnel's default when INSTANCE_IP is unset
  std::string node_name;
  // More string metadata (ISTIO_META_<KEY>=value gives KEY).
  std::vector<std::pair<std::string, std::string>> metadata;

  // NodeId is "ztunnel~<instance_ip>~<pod_name>.<ns>~<ns>.svc.cluster.local".
  std::string NodeId() const;
};

// One resource of a response: its name, version and the Any it carries.
struct ResourceUpdate {
  std::string name;
  std::string version;
  std::string type_url;  // the Any's type URL
  std::string value;     // the Any's bytes
};

// A rejected resource and why.
using Rejection = std::pair<std::string, std::string>;

// TypeHandler applies one type's changes (e.g. into the workload directory
// or the policy store). It applies every update it can and returns those it
// could not, with the reason; it must not keep references to the vectors.
class TypeHandler {
 public:
  virtual ~TypeHandler() = default;
  virtual std::vector<Rejection> Apply(const std::vector<ResourceUpdate>& updates,
                                       const std::vector<std::string>& removed) = 0;
};

// TypeStats counts one subscribed type's responses (ztunnel's
// istio_xds_message_total and istio_xds_message_bytes_total, by type URL).
struct TypeStats {
  uint64_t responses = 0;
  uint64_t resource_bytes = 0;  // the resources' Any values, summed
};

struct SessionStats {
  uint64_t responses = 0;
  uint64_t acks = 0;
  uint64_t nacks = 0;
  uint64_t resources = 0;  // updates received
  uint64_t removals = 0;
  std::map<std::string, TypeStats> by_type;  // by type URL, subscribed types only
};

class DeltaAdsSession {
 public:
  // `types` are subscribed in this order; each handler is borrowed and must
  // outlive the session.
  DeltaAdsSession(NodeIdentity node, std::vector<std::pair<std::string, TypeHandler*>> types);

  // StreamStarted returns the initial requests for a new stream (serialized
  // DeltaDiscoveryRequests) and forgets which types the old stream ACKed.
  std::vector<std::string> StreamStarted();
  // OnResponse applies one serialized DeltaDiscoveryResponse and returns the
  // request to send back (ACK or NACK). Errors (nothing applied, nothing to
  // send; the host should end the stream): InvalidArgument for bytes that
  // are not a response, or a response for a type not subscribed.
  absl::StatusOr<std::string> OnResponse(absl::string_view bytes);

  // Acked: `type_url` has been ACKed at least once on the current stream.
  // Ready: every type has (ztunnel's readiness condition).
  bool Acked(const std::string& type_url) const;
  bool Ready() const;
  // Held resources of a type: name -> version.
  const std::map<std::string, std::string>& Known(const std::string& type_url) const;
  const SessionStats& stats() const { return stats_; }
  // The last NACK's error_detail message ("" if none).
  const std::string& last_nack() const { return last_nack_; }

 private:
  struct Type {
    std::string url;
    TypeHandler* handler = nullptr;
    std::map<std::string, std::string> known;
    bool acked = false;
  };
  Type* Find(absl::string_view url);

  NodeIdentity node_;
  std::vector<Type> types_;
  SessionStats stats_;
  std::string last_nack_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_DELTA_ADS_H_
