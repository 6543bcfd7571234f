// ambient/dns/pod_dns.h: the DNS proxy in every captured pod, for the node
// proxy (ambient/runtime/node_proxy.h, NodeProxyOptions::pod_attach).
//
// PodDnsAttach makes the hook the node proxy calls when it captures a pod:
// it starts a DnsServer on each of the pod's 15053 UDP+TCP listener pairs
// (127.0.0.1 and ::1; NodeProxyOptions::listeners must have dns = true), for
// the pod's namespace and network, forwarding to `upstreams` on sockets made
// inside the pod's netns with SO_MARK `mark` (so istio-cni's capture rules
// let them out). The servers live as long as the pod: releasing it closes
// them with its other listeners. Search domains are Kubernetes' defaults for
// the pod's namespace (the pod's resolv.conf is not visible from the node).
//
// Threads: the hook runs on the node proxy's loop thread, like the servers.
#ifndef AMBIENT_DNS_POD_DNS_H_
#define AMBIENT_DNS_POD_DNS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "ambient/dns/server.h"
#include "ambient/netns/pod_listeners.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/node_proxy.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::dns {

struct PodDnsOptions {
  std::vector<ambient::SocketAddress> upstreams;  // required (see ReadResolvConf)
  std::string cluster_domain = "cluster.local";
  uint32_t mark = 0x539;  // SO_MARK of upstream sockets (0: none)
  absl::Duration upstream_timeout = absl::Seconds(2);
  size_t max_in_flight = 128;           // per pod
  size_t max_tcp_connections = 32;      // per pod
  std::shared_ptr<DnsMetrics> metrics;  // optional, shared by all pods
  LogSink log;
};

// PodAttach is NodeProxyOptions::pod_attach's type.
using PodAttach = std::function<absl::StatusOr<std::shared_ptr<void>>(
    const runtime::Workload&, const netns::PodListenerSet&,
    const std::shared_ptr<netns::SocketFactory>&)>;

// PodDnsAttach returns the hook. The hook's errors: FailedPrecondition when
// the pod has no 15053 listeners; InvalidArgument without upstreams; the
// errors of DnsServer::Start. `directory` must outlive every server.
PodAttach PodDnsAttach(runtime::EventLoop* loop,
                       std::shared_ptr<const runtime::WorkloadDirectory> directory,
                       PodDnsOptions options);

// EnablePodDns switches the DNS proxy on in `node`, the options of a node
// proxy still to be made on `loop`: every pod it captures gets the 15053
// listeners (node->listeners.dns) and a PodDnsAttach hook over
// node->workloads. `dns.metrics` is made when null and `dns.log` defaults to
// node->log. Returns the metrics every pod's servers count into. Errors
// (`node` unchanged): InvalidArgument for a null loop or node, a node
// without workloads, or no upstreams.
absl::StatusOr<std::shared_ptr<DnsMetrics>> EnablePodDns(runtime::EventLoop* loop,
                                                         runtime::NodeProxyOptions* node,
                                                         PodDnsOptions dns);

}  // namespace ambient::dns

#endif  // AMBIENT_DNS_POD_DNS_H_
