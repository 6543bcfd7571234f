// MetricsServer: the node proxy's tiny HTTP/1.1 endpoint for Prometheus
// metrics and readiness, like ztunnel's :15020 /metrics and :15021
// /healthz/ready (here both paths on one address).
//
// It answers one GET (or HEAD) per connection and closes it:
//   /metrics, /stats/prometheus  200, text/plain; version=0.0.4 (Handlers::metrics)
//   /healthz/ready               200 "ready" when Handlers::ready(), else 503
//   other paths 404, other methods 405, a malformed request 400, a request
//   head over 8 KiB 431. Connections idle for 5 s are closed; at most 64 are
//   served at once: at that cap a new connection takes the place of the
//   oldest one that has not sent its request yet (so idle connections
//   cannot starve a readiness probe), and is closed only when all 64 are
//   being answered (the HttpServer of http_server.h).
// Everything runs on the EventLoop's thread; the handlers are called there.
#ifndef AMBIENT_EXAMPLES_NODE_PROXY_METRICS_SERVER_H_
#define AMBIENT_EXAMPLES_NODE_PROXY_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"
#include "http_server.h"

namespace ambient::examples {

struct MetricsHandlers {
  std::function<std::string()> metrics;  // the Prometheus text
  std::function<bool()> ready;
};

// HttpRespond returns the full response to the request head in `request`
// (the bytes received so far), or nullopt when the head is not complete yet.
// Pure: no I/O, for tests and fuzzing.
std::optional<std::string> HttpRespond(absl::string_view request, const MetricsHandlers& h);

class MetricsServer {
 public:
  // New listens on `listen` ("ip:port", "[v6]:port"; port 0 picks one).
  // Errors: InvalidArgument (address), AlreadyExists, PermissionDenied.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> New(runtime::EventLoop* loop,
                                                            const std::string& listen,
                                                            MetricsHandlers handlers);
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  const ambient::SocketAddress& address() const { return http_->address(); }

  static constexpr size_t kMaxHead = HttpServer::kMaxHead;
  static constexpr size_t kMaxConnections = HttpServer::kMaxConnections;

 private:
  explicit MetricsServer(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<HttpServer> http_;
};

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_PROXY_METRICS_SERVER_H_
