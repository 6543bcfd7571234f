// ambient/netns/pod_listeners.h: the listening sockets a node proxy opens
// inside one pod's network namespace.
//
// Object model. A PodListenerSet is the set of listeners ztunnel opens in a
// pod it captures (in-pod mode), all created inside the pod's netns through a
// SocketFactory and owned by the set; destroying the set closes them all, so
// the ports disappear from the pod. The set does not accept connections: the
// host polls the descriptors and accepts on them with its own event loop.
//
//   kind               proto  address                 port
//   kOutbound          TCP    wildcard (:: or 0.0.0.0) 15001  redirected egress
//   kInboundPlaintext  TCP    wildcard                 15006  redirected ingress
//   kInboundHbone      TCP    wildcard                 15008  HBONE (mTLS) ingress
//   kDnsUdp, kDnsTcp   both   127.0.0.1 and ::1        15053  DNS proxy
//
// Every socket gets SO_MARK (0x539 by default, which istio-cni's in-pod rules
// use to let the proxy's own traffic through) and SO_REUSEPORT (an old and a
// new proxy can both hold the ports during an upgrade); the three TCP
// wildcard listeners get IP_TRANSPARENT / IPV6_TRANSPARENT when the kernel
// allows it (best effort by default). The wildcard listeners are dual-stack
// [::] sockets when the pod has IPv6, else 0.0.0.0; the ::1 DNS pair is only
// made when the pod's loopback has ::1. Setting SO_MARK needs CAP_NET_ADMIN.
//
// Threads. A set is used from one thread at a time; Open may run on several
// threads at once for different pods.
#ifndef AMBIENT_NETNS_POD_LISTENERS_H_
#define AMBIENT_NETNS_POD_LISTENERS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "ambient/netns/fd.h"
#include "ambient/netns/netns.h"
#include "ambient/base/address.h"

namespace ambient::netns {

// The in-pod constants shared with istio-cni's rules and ztunnel.
inline constexpr uint32_t kInpodMark = 0x539;
inline constexpr uint16_t kOutboundPort = 15001;
inline constexpr uint16_t kInboundPlaintextPort = 15006;
inline constexpr uint16_t kInboundHbonePort = 15008;
inline constexpr uint16_t kDnsPort = 15053;

enum class ListenerKind { kOutbound, kInboundPlaintext, kInboundHbone, kDnsUdp, kDnsTcp };

// ListenerKindName returns "outbound", "inbound", "hbone", "dns-udp", "dns-tcp".
const char* ListenerKindName(ListenerKind kind);

enum class Transparency {
  kBestEffort,  // try IP_TRANSPARENT, carry on without it (ztunnel's default)
  kRequired,    // fail Open when the kernel refuses it
  kOff,         // do not set it
};

struct PodListenerOptions {
  uint32_t mark = kInpodMark;  // SO_MARK on every socket; 0 leaves the mark unset
  bool dns = true;             // open the 15053 UDP+TCP pair(s)
  bool reuse_port = true;      // SO_REUSEPORT
  Transparency transparent = Transparency::kBestEffort;
  int backlog = 128;
  uint16_t outbound_port = kOutboundPort;
  uint16_t inbound_plaintext_port = kInboundPlaintextPort;
  uint16_t inbound_hbone_port = kInboundHbonePort;
  uint16_t dns_port = kDnsPort;
};

struct PodListener {
  ListenerKind kind;
  UniqueFd fd;                // non-blocking, close-on-exec, listening (TCP) or bound (UDP)
  SocketAddress local;        // the bound address, as getsockname reports it
  bool transparent = false;   // whether IP_TRANSPARENT is set on it
};

class PodListenerSet {
 public:
  PodListenerSet() = default;
  PodListenerSet(PodListenerSet&&) noexcept = default;
  PodListenerSet& operator=(PodListenerSet&&) noexcept = default;

  // Open creates the whole set inside the namespace `factory` stands for, in
  // a single entry into it. All or nothing: on failure no socket is left
  // open. Errors: AlreadyExists when a port is taken by a socket without
  // SO_REUSEPORT; PermissionDenied without CAP_NET_ADMIN (SO_MARK) or, with
  // Transparency::kRequired, when IP_TRANSPARENT is refused;
  // InvalidArgument for a backlog <= 0; the errors of SocketFactory::Run.
  static absl::StatusOr<PodListenerSet> Open(SocketFactory& factory,
                                             const PodListenerOptions& options = {});
  // Open in `ns` through a NetnsSocketFactory-equivalent (calling thread).
  static absl::StatusOr<PodListenerSet> Open(const Netns& ns,
                                             const PodListenerOptions& options = {});

  const std::vector<PodListener>& listeners() const { return listeners_; }
  // Find returns the first listener of `kind` (and `family`, unless AF_UNSPEC),
  // or nullptr.
  const PodListener* Find(ListenerKind kind, int family = AF_UNSPEC) const;

 private:
  std::vector<PodListener> listeners_;
};

}  // namespace ambient::netns

#endif  // AMBIENT_NETNS_POD_LISTENERS_H_
