// The DNS proxy in every captured pod; see ambient/dns/pod_dns.h.
#include "ambient/dns/pod_dns.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ambient::dns {
namespace {

// PodServers owns a pod's DNS servers (one per listener pair).
struct PodServers {
  std::vector<std::unique_ptr<DnsServer>> servers;
};

absl::StatusOr<int> Dup(const netns::UniqueFd& fd) {
  int d = fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
  if (d < 0) return absl::ResourceExhaustedError(absl::StrCat("dup: ", strerror(errno)));
  return d;
}

}  // namespace

PodAttach PodDnsAttach(runtime::EventLoop* loop,
                       std::shared_ptr<const runtime::WorkloadDirectory> directory,
                       PodDnsOptions options) {
  return [loop, directory, o = std::move(options)](
             const runtime::Workload& w, const netns::PodListenerSet& listeners,
             const std::shared_ptr<netns::SocketFactory>& factory)
             -> absl::StatusOr<std::shared_ptr<void>> {
    if (o.upstreams.empty()) return absl::InvalidArgumentError("pod dns: no upstream resolvers");
    auto pod = std::make_shared<PodServers>();
    for (const netns::PodListener& udp : listeners.listeners()) {
      if (udp.kind != netns::ListenerKind::kDnsUdp) continue;
      const netns::PodListener* tcp = nullptr;
      for (const netns::PodListener& l : listeners.listeners()) {
        if (l.kind == netns::ListenerKind::kDnsTcp && l.local.ToString() == udp.local.ToString()) {
          tcp = &l;
        }
      }
      DnsServerOptions so;
      so.pod.ns = w.ns;
      so.pod.network = w.network;
      so.pod.cluster_domain = o.cluster_domain;
      so.directory = directory.get();
      so.upstreams = o.upstreams;
      so.upstream_timeout = o.upstream_timeout;
      so.max_in_flight = o.max_in_flight;
      so.max_tcp_connections = o.max_tcp_connections;
      so.metrics = o.metrics.get();
      so.log = o.log;
      so.upstream_socket = [factory, mark = o.mark](int family, int type) -> absl::StatusOr<int> {
        absl::StatusOr<netns::UniqueFd> fd =
            factory->Socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (!fd.ok()) return fd.status();
        if (mark != 0 && setsockopt(fd->get(), SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0) {
          return absl::PermissionDeniedError(absl::StrCat("SO_MARK: ", strerror(errno)));
        }
        return fd->release();
      };
      absl::StatusOr<int> ufd = Dup(udp.fd);
      if (!ufd.ok()) return ufd.status();
      int tfd = -1;
      if (tcp != nullptr) {
        absl::StatusOr<int> d = Dup(tcp->fd);
        if (!d.ok()) {
          close(*ufd);
          return d.status();
        }
        tfd = *d;
      }
      absl::StatusOr<std::unique_ptr<DnsServer>> s =
          DnsServer::Start(loop, *ufd, tfd, std::move(so));
      if (!s.ok()) return s.status();
      pod->servers.push_back(std::move(*s));
    }
    if (pod->servers.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("pod ", w.ns, "/", w.name, " has no DNS (15053) listeners"));
    }
    return std::shared_ptr<void>(pod);
  };
}

absl::StatusOr<std::shared_ptr<DnsMetrics>> EnablePodDns(runtime::EventLoop* loop,
                                                         runtime::NodeProxyOptions* node,
                                                         PodDnsOptions dns) {
  if (loop == nullptr) return absl::InvalidArgumentError("pod dns: no event loop");
  if (node == nullptr) return absl::InvalidArgumentError("pod dns: no node proxy options");
  if (node->workloads == nullptr) {
    return absl::InvalidArgumentError("pod dns: the node proxy options have no workloads");
  }
  if (dns.upstreams.empty()) return absl::InvalidArgumentError("pod dns: no upstream resolvers");
  if (dns.metrics == nullptr) dns.metrics = std::make_shared<DnsMetrics>();
  if (!dns.log) dns.log = node->log;
  std::shared_ptr<DnsMetrics> metrics = dns.metrics;
  PodAttach attach = PodDnsAttach(loop, node->workloads, std::move(dns));
  node->listeners.dns = true;
  node->pod_attach = std::move(attach);
  return metrics;
}

}  // namespace ambient::dns
