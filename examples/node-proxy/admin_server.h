// AdminServer: the node proxy's admin endpoint, like ztunnel's :15000 (its
// src/admin.rs), on the HTTP/1.1 server of http_server.h.
//
// It answers one request per connection and closes it:
//   GET  /config_dump             200 application/json: AdminHandlers::config_dump
//                                 (config_dump.h renders ztunnel's shape)
//   GET  /logging                 200 "current log level is LEVEL\n"
//   POST /logging                 the same (ztunnel lists the level this way)
//   POST /logging?level=LEVEL     sets the level (debug, info, warn or error),
//                                 then 200 "current log level is LEVEL\n";
//                                 another value is 400 "Invalid level
//                                 provided: VALUE" with the usage, and
//                                 changes nothing
//   GET  /                        200, the list of endpoints
// HEAD is answered like GET without the body. A known path with another
// method is 405 (GET /logging?level=... too: changes take a POST, so a
// link or an <img> cannot make them); an unknown path 404; a malformed
// request 400; a request head over 8 KiB 431. Connections are handled as
// HttpServer handles them (5 s idle timeout, at most 64 at once).
//
// Nothing here checks who is asking: the endpoint shows the whole config and
// changes the log level, so bind it to loopback (the node proxy's --admin
// takes 127.0.0.1:15000 like ztunnel's default).
// Everything runs on the EventLoop's thread; the handlers are called there.
#ifndef AMBIENT_EXAMPLES_NODE_PROXY_ADMIN_SERVER_H_
#define AMBIENT_EXAMPLES_NODE_PROXY_ADMIN_SERVER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/base/log.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"
#include "http_server.h"

namespace ambient::examples {

// ParseLogLevel reads "debug", "info", "warn" or "error" (exactly, lower
// case); nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(absl::string_view name);
// LogLevelName is the inverse: "debug", "info", "warn" or "error".
absl::string_view LogLevelName(LogLevel level);

struct AdminHandlers {
  std::function<std::string()> config_dump;  // the JSON document
  std::function<LogLevel()> log_level;       // the level in force
  std::function<void(LogLevel)> set_log_level;
  // Optional: AdminServer says at debug level, component "admin", which
  // request it answered and how: "POST /logging?level=debug HTTP/1.1 ->
  // 200" (the request line cut at 200 bytes, unprintable bytes as '?').
  // AdminRespond does not use it.
  LogSink log;
};

// AdminRespond returns the full response to the request head in `request`
// (the bytes received so far), or nullopt when the head is not complete yet.
// It calls set_log_level for a valid POST /logging?level=. Empty handlers
// answer 500 "not available". No I/O, for tests and fuzzing.
std::optional<std::string> AdminRespond(absl::string_view request, const AdminHandlers& h);

class AdminServer {
 public:
  // New listens on `listen` ("ip:port", "[v6]:port"; port 0 picks one).
  // Errors: InvalidArgument (address), AlreadyExists, PermissionDenied.
  static absl::StatusOr<std::unique_ptr<AdminServer>> New(runtime::EventLoop* loop,
                                                          const std::string& listen,
                                                          AdminHandlers handlers);
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  const ambient::SocketAddress& address() const { return http_->address(); }

 private:
  explicit AdminServer(std::unique_ptr<HttpServer> http) : http_(std::move(http)) {}
  std::unique_ptr<HttpServer> http_;
};

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_PROXY_ADMIN_SERVER_H_
