// ambient/runtime/node_proxy.h: a node proxy (ztunnel's role, in-pod mode)
// on an EventLoop: captured pods' traffic carried over HBONE.
//
// Object model. A NodeProxy knows the mesh's workloads from a
// WorkloadDirectory (the data ztunnel gets from xDS: uid, name, namespace,
// service account, trust domain, addresses, whether the workload speaks
// HBONE) and captures the pods a node agent hands it (AddPod, usually
// over ZDS: StartZds runs the proxy end of ZDS on the same loop). For each captured pod it
// opens the in-pod listeners inside the pod's netns (netns::PodListenerSet:
// 15001, 15006, 15008) and serves them on its loop; every socket it makes on
// a pod's behalf is made inside that pod's netns with the in-pod mark
// (0x539), so istio-cni's rules let it through:
//
//  - 15001 (redirected egress): the original destination (SO_ORIGINAL_DST)
//    is resolved against the directory by DecideOutbound
//    (outbound_decision.h, ztunnel's rules): a service VIP goes to its
//    waypoint or to a healthy endpoint, a workload IP to the workload (or
//    its waypoint). An HBONE next hop is reached through an HBONE tunnel to
//    its IP:15008 (TLS 1.3 mTLS with the source pod's SVID, the next hop's
//    SPIFFE IDs expected, CONNECT :authority = endpoint IP:target port, or
//    the original VIP:port through a waypoint), dialed from inside the
//    source pod. Anything else is passed through as plain TCP from inside
//    the source pod; a VIP without a healthy endpoint is refused ("no
//    healthy upstream: VIP:port" in the access line).
//  - 15008 (HBONE ingress): TLS with the pod's own SVID; clients need an
//    SVID of the pod's own trust domain that verifies against its bundle
//    (ztunnel's inbound rule); each CONNECT must target
//    one of the pod's addresses and pass authorization (the PolicyStore,
//    when given); the upstream connection to the app is made inside the
//    pod, bound to the client's IP (IP_TRANSPARENT + IP_FREEBIND) when the
//    kernel allows it, as ztunnel does.
//  - 15006 (plaintext ingress): authorized without an identity, then
//    forwarded to the original destination inside the pod the same way.
//  Both inbound paths check against the directory's entry for the pod's
//  workload as it is now; a captured pod whose workload left the directory
//  (removed from xDS while the node agent still has the pod) is refused
//  inbound ("workload U is no longer in the workload directory"), as
//  ztunnel refuses traffic to a workload it does not know.
//
// Every proxied connection ends in one ztunnel-style access log line
// (component "access": "connection complete ..." with src/dst workload,
// namespace, identities and dst.service where known; ERROR with error= on
// failure). Inbound lines name the service of the pod whose target port was
// hit (ztunnel's guess).
// The metadata is put in the hbone::ConnectionRecord itself, so the
// istio_tcp_* metric labels carry it too: the source pod's on outbound
// (sent to the peer as `baggage`) and the destination's from the
// directory; on inbound the pod's own (answered as `baggage` on the 200)
// and the client's from the directory by source IP, else from the
// request's baggage. IPv4-mapped IPv6 addresses are recorded as IPv4.
// Other lines go to component "node-proxy".
//
// Threads. NodeProxy is used on its loop's thread, like every runtime
// object (AddPod, RemovePod, StartZds, StopZds, the getters, destruction);
// ZDS runs on that loop too (no thread of its own), so a host may destroy
// the proxy whenever it likes, with or without ZDS started.
// WorkloadDirectory is thread-safe.
#ifndef AMBIENT_RUNTIME_NODE_PROXY_H_
#define AMBIENT_RUNTIME_NODE_PROXY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/authz/policy_store.h"
#include "ambient/base/log.h"
#include "ambient/hbone/connection.h"
#include "ambient/hbone/telemetry.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/netns.h"
#include "ambient/netns/pod_listeners.h"
#include "ambient/netns/zds.h"
#include "ambient/netns/zds_session.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::runtime {

// NodeProxyLimits keep the node proxy in service under connection floods
// from inside a pod (0 = no limit). At a cap the listener rests and new
// connections wait in the kernel's backlog (the app sees a slow connect, not
// a refusal) until one closes.
struct NodeProxyLimits {
  // Open connections accepted on one pod's 15001 (outbound) or 15006
  // (plaintext inbound) listener, each listener counted on its own.
  size_t max_connections_per_listener = 4096;
  // Open connections accepted on all pods' 15001 and 15006 listeners together.
  size_t max_connections = 65536;
  // Each pod's 15008 HBONE server (connections, handshakes, silent
  // clients, pending dials): ServerLimits.
  ServerLimits hbone;
};

struct NodeProxyOptions {
  std::shared_ptr<WorkloadDirectory> workloads;          // required
  std::shared_ptr<identity::TrustBundleSource> bundles;  // required
  // credentials returns the SVID holder for a captured workload (called by
  // AddPod; its SPIFFE ID must be the workload's identity). Required.
  std::function<absl::StatusOr<std::shared_ptr<identity::CredentialHolder>>(const Workload&)>
      credentials;
  std::shared_ptr<authz::PolicyStore> policies;  // optional: allow everything when null
  // match_pod, when set, finds the workload of a pod handed over (AddPod)
  // instead of the directory lookup by uid, then namespace/name. With xDS the
  // pod uid is not the workload's: xds::NodeControlPlane::MatchPod matches by
  // namespace, name and service account among this node's workloads. Its
  // error fails AddPod (ZDS keeps the pod pending and retries).
  std::function<absl::StatusOr<Workload>(const std::string& uid,
                                         const netns::zds::WorkloadInfo& info)>
      match_pod;
  // The in-pod listeners (ports, mark, transparency); DNS (15053) is off
  // unless a pod_attach serves it.
  netns::PodListenerOptions listeners = [] {
    netns::PodListenerOptions o;
    o.dns = false;
    return o;
  }();
  // Bind inbound upstream connections to the client's IP (best effort).
  bool keep_source_ip = true;
  absl::Duration connect_timeout = absl::Seconds(10);
  NodeProxyLimits limits;
  hbone::Settings settings;
  LogSink log;
  std::shared_ptr<hbone::Metrics> metrics;
  // pod_attach, when set, is called (loop thread) for each captured pod once
  // its listeners are open; what it returns is kept with the pod and
  // destroyed when the pod is released, before its listeners close. An
  // error fails AddPod. The DNS proxy: ambient/dns/pod_dns.h, with
  // listeners.dns = true.
  std::function<absl::StatusOr<std::shared_ptr<void>>(const Workload&, const netns::PodListenerSet&,
                                                      const std::shared_ptr<netns::SocketFactory>&)>
      pod_attach;
};

// StaticCredentials returns a NodeProxyOptions::credentials that gives each
// pod the SVID `svids` holds for its uid (a new CredentialHolder per
// capture), and NotFound "no SVID set for pod UID" for any other pod.
// Hosts that get their SVIDs up front (the C ABI's node proxy options) use
// it; hosts that fetch them per pod write their own.
std::function<absl::StatusOr<std::shared_ptr<identity::CredentialHolder>>(const Workload&)>
StaticCredentials(std::map<std::string, std::shared_ptr<const identity::Credentials>> svids);

// PodInfo describes one captured pod (for status and tests).
struct PodInfo {
  std::string uid;
  std::string workload;  // "namespace/name"
  identity::SpiffeId identity;  // the workload's (Workload::Identity())
  netns::NetnsId netns;
  int hbone_port = 0;  // the pod's 15008 listener port
};

class NodeProxy {
 public:
  // New makes a proxy with no pods. Errors: InvalidArgument (missing
  // workloads, bundles or credentials).
  static absl::StatusOr<std::unique_ptr<NodeProxy>> New(EventLoop* loop, NodeProxyOptions options);
  virtual ~NodeProxy() = default;

  // AddPod captures pod `uid` living in `netns`. The workload is found by
  // options.match_pod when set, else by uid, else by info's namespace/name. Adding a uid that is already
  // captured with the same netns is a no-op; with another netns the old
  // capture is removed first. Errors (nothing captured): NotFound for a
  // workload the directory does not know; AlreadyExists when another uid is
  // captured in the same netns (one netns is one pod); InvalidArgument for
  // an empty uid or netns; FailedPrecondition when the SVID does not match the
  // workload's identity; the errors of credentials() and of
  // netns::PodListenerSet::Open (AlreadyExists, PermissionDenied).
  virtual absl::Status AddPod(const std::string& uid, const netns::zds::WorkloadInfo& info,
                              netns::Netns netns) = 0;
  // RemovePod stops capturing `uid`: its listeners close (the ports vanish
  // from the pod) and its HBONE connections are aborted; connections
  // already relayed in plain TCP run to their end. False if unknown.
  virtual bool RemovePod(const std::string& uid) = 0;
  // pods lists the captured pods, in uid order.
  virtual std::vector<PodInfo> pods() const = 0;

  // RecheckPolicies evaluates authorization again for every inbound
  // connection being carried (HBONE streams on the pods' 15008, plaintext
  // connections on 15006) against the policies and workloads in force now,
  // and closes each one now denied (the HBONE stream reset with
  // CONNECT_ERROR, the plaintext sockets shut down) with the access line
  // error "connection closed due to policy change: <reason>" (ztunnel's
  // policy watcher). Call it after the PolicyStore changed (an xDS push, a
  // file reload). Returns how many it closed.
  virtual size_t RecheckPolicies() = 0;

  // StartZds connects to the node agent's ZDS socket (options.socket_path)
  // and keeps reconnecting, on the loop (runtime::ZdsClient): pods the agent
  // adds or deletes are captured (AddPod) or released (RemovePod) on the
  // loop thread, and each is acknowledged with AddPod's result. An empty
  // options.log uses the proxy's log. Once per proxy. Errors:
  // FailedPrecondition when called before (even after StopZds);
  // InvalidArgument for a socket path that does not fit in sockaddr_un or a
  // bad back-off.
  virtual absl::Status StartZds(netns::zds::ZdsProxyOptions options) = 0;
  // StopZds closes the ZDS connection and stops reconnecting; captured pods
  // stay. Does nothing when not started. Destruction does it too.
  virtual void StopZds() = 0;
  // zds returns the ZDS session's state (ready(): connected, snapshot
  // applied, no pod pending a retry: ztunnel's readiness), or NULL when
  // StartZds was never called. Lent; valid until the NodeProxy goes.
  virtual const netns::zds::ProxySession* zds() const = 0;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_NODE_PROXY_H_
