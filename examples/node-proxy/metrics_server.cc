#include "metrics_server.h"

#include <utility>

namespace ambient::examples {

std::optional<std::string> HttpRespond(absl::string_view request, const MetricsHandlers& h) {
  return HttpAnswer(request, [&h](const HttpRequest& req) {
    bool head = req.method == "HEAD";
    if (req.method != "GET" && !head) {
      return HttpText(405, "Method Not Allowed", "only GET and HEAD\n");
    }
    if (req.path == "/metrics" || req.path == "/stats/prometheus") {
      std::string text = h.metrics ? h.metrics() : std::string();
      return HttpResponse(200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, head);
    }
    if (req.path == "/healthz/ready") {
      if (h.ready && h.ready()) return HttpText(200, "OK", "ready\n", head);
      return HttpText(503, "Service Unavailable", "not ready\n", head);
    }
    return HttpText(404, "Not Found", "not found\n", head);
  });
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::New(runtime::EventLoop* loop,
                                                                  const std::string& listen,
                                                                  MetricsHandlers handlers) {
  auto http =
      HttpServer::New(loop, listen, [handlers = std::move(handlers)](absl::string_view request) {
        return HttpRespond(request, handlers);
      });
  if (!http.ok()) return http.status();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(*http)));
}

}  // namespace ambient::examples
