// ambient/dns/server.h: a pod's DNS proxy (ztunnel's port 15053), on the
// runtime's event loop.
//
// A DnsServer serves one pod on a UDP socket and a listening TCP socket the
// caller made (the node proxy makes them inside the pod's netns). Each query
// goes through Answer (ambient/dns/answer.h): mesh names are answered
// locally; the rest is forwarded, byte for byte (the pod's query ID, its
// EDNS options), to the upstream resolvers over the transport the pod used,
// on a fresh socket per query that the caller's UpstreamSocket makes (inside
// the pod's netns, marked so capture rules skip it). The upstream's answer
// goes back unchanged: a truncated UDP answer stays truncated, so the
// client retries over TCP. An upstream that fails or stays silent past the
// timeout, on every resolver in turn, gives SERVFAIL.
//
// Bounds, per server (so per pod): at most max_in_flight forwarded queries
// (more get SERVFAIL at once) and max_tcp_connections client connections
// (more are closed at once); idle TCP clients are closed after
// tcp_idle_timeout. Malformed queries get FORMERR or are dropped, and are
// counted.
//
// Threads: a DnsServer lives on its loop's thread: make it before the loop
// runs or on the loop thread, and destroy it there. Destroying it closes the
// sockets, every client connection and every upstream query at once.
// DnsMetrics is thread-safe and may be shared by all pods' servers.
#ifndef AMBIENT_DNS_SERVER_H_
#define AMBIENT_DNS_SERVER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/base/log.h"
#include "ambient/dns/answer.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::dns {

// DnsMetrics counts what every DnsServer sharing it did, under ztunnel's
// metric names.
class DnsMetrics {
 public:
  // Upper bounds (seconds) of the upstream latency histogram's buckets.
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    5};

  void Request(Transport t) { requests_[Index(t)]++; }
  void Answered() { answered_++; }
  void Malformed() { malformed_++; }
  void Limited() { limited_++; }
  void UpstreamRequest(Transport t) { upstream_requests_[Index(t)]++; }
  void UpstreamFailure(Transport t) { upstream_failures_[Index(t)]++; }
  void UpstreamLatency(Transport t, absl::Duration d);

  uint64_t requests(Transport t) const { return requests_[Index(t)]; }
  uint64_t answered() const { return answered_; }
  uint64_t malformed() const { return malformed_; }
  uint64_t limited() const { return limited_; }
  uint64_t upstream_requests(Transport t) const { return upstream_requests_[Index(t)]; }
  uint64_t upstream_failures(Transport t) const { return upstream_failures_[Index(t)]; }

  // Prometheus renders the text exposition format:
  // istio_dns_requests_total{request_protocol}, istio_dns_upstream_requests_total,
  // istio_dns_upstream_failures_total, the histogram
  // istio_dns_upstream_request_duration_seconds, and ambient's own
  // ambient_dns_answered_total (mesh names answered locally),
  // ambient_dns_malformed_total and ambient_dns_limited_total.
  std::string Prometheus() const;

 private:
  static size_t Index(Transport t) { return t == Transport::kUdp ? 0 : 1; }
  std::atomic<uint64_t> requests_[2]{};
  std::atomic<uint64_t> answered_{0};
  std::atomic<uint64_t> malformed_{0};
  std::atomic<uint64_t> limited_{0};
  std::atomic<uint64_t> upstream_requests_[2]{};
  std::atomic<uint64_t> upstream_failures_[2]{};
  std::atomic<uint64_t> buckets_[2][kBuckets.size()]{};
  std::atomic<uint64_t> latency_count_[2]{};
  std::atomic<uint64_t> latency_sum_us_[2]{};
};

// UpstreamSocket makes an unconnected socket of `family` (AF_INET/AF_INET6)
// and `type` (SOCK_DGRAM/SOCK_STREAM) for one forwarded query; the server
// owns the returned fd. The default makes it in the calling thread's netns.
using UpstreamSocket = std::function<absl::StatusOr<int>(int family, int type)>;

struct DnsServerOptions {
  PodDnsContext pod;
  // The directory names are answered from. Required; must outlive the server.
  const runtime::WorkloadDirectory* directory = nullptr;
  // Upstream resolvers, tried in order (see ReadResolvConf). Required.
  std::vector<ambient::SocketAddress> upstreams;
  UpstreamSocket upstream_socket;                      // empty: socket(2) here
  absl::Duration upstream_timeout = absl::Seconds(2);  // per resolver tried
  size_t max_in_flight = 128;
  size_t max_tcp_connections = 32;
  absl::Duration tcp_idle_timeout = absl::Seconds(10);
  DnsMetrics* metrics = nullptr;  // optional; must outlive the server
  LogSink log;                    // called on the loop thread
};

class DnsServer {
 public:
  // Start serves on `udp_fd` (a bound UDP socket) and `tcp_fd` (a listening
  // TCP socket); either may be -1. The server owns both fds from the call
  // on, also on error. Errors: InvalidArgument without a directory or
  // upstreams; the errno of epoll registration.
  static absl::StatusOr<std::unique_ptr<DnsServer>> Start(runtime::EventLoop* loop, int udp_fd,
                                                          int tcp_fd, DnsServerOptions options);
  virtual ~DnsServer() = default;

  // Forwarded queries waiting for an upstream, and open TCP client
  // connections.
  virtual size_t in_flight() const = 0;
  virtual size_t tcp_connections() const = 0;
};

// ResolvConf is what a resolver configuration file says.
struct ResolvConf {
  std::vector<ambient::SocketAddress> nameservers;  // port 53
  std::vector<std::string> search;
};

// ParseResolvConf reads resolv.conf text ("nameserver IP", "search a b",
// comments with '#' or ';'); unknown lines are ignored, as the C library
// does. InvalidArgument for a nameserver that is not a numeric IP.
absl::StatusOr<ResolvConf> ParseResolvConf(absl::string_view text);

// ReadResolvConf reads and parses the file at `path` (the node's
// /etc/resolv.conf by default). NotFound when it cannot be read, then
// ParseResolvConf's errors, naming the path.
absl::StatusOr<ResolvConf> ReadResolvConf(const std::string& path = "/etc/resolv.conf");

// ParseUpstreams reads a comma-separated list of resolvers, each "ip:port",
// "[v6]:port" or a bare numeric IP (port 53). InvalidArgument naming the bad
// entry, or for an empty list.
absl::StatusOr<std::vector<ambient::SocketAddress>> ParseUpstreams(absl::string_view list);

// UpstreamsOrResolvConf is ParseUpstreams(list) when `list` is not empty,
// else the nameservers of `resolv_conf`; FailedPrecondition when that file
// lists none.
absl::StatusOr<std::vector<ambient::SocketAddress>> UpstreamsOrResolvConf(
    absl::string_view list, const std::string& resolv_conf = "/etc/resolv.conf");

}  // namespace ambient::dns

#endif  // AMBIENT_DNS_SERVER_H_
