// HttpServer: the node proxy's minimal HTTP/1.1 server, shared by its
// metrics/readiness endpoint (metrics_server.h) and its admin endpoint
// (admin_server.h).
//
// Two halves. HttpAnswer is pure: it reads a request head from the bytes
// received so far and either asks for more, answers a malformed or
// oversized head itself (400, 431), or hands the parsed request line to a
// route that builds the response. HttpServer is the I/O: it accepts on one
// address, gives each connection's bytes to a responder (usually
// HttpAnswer with a route), writes the one response, and closes:
//   - one request per connection ("Connection: close"); a request body is
//     never read (the endpoints need none);
//   - a request head over kMaxHead (8 KiB) is answered 431;
//   - a connection idle for 5 s before its request is closed, one that has
//     been answered gets 2 s to read the answer and close;
//   - at most kMaxConnections (64) are served at once: at that cap a new
//     connection takes the place of the oldest one that has not sent its
//     request yet (so idle connections cannot starve a probe), and is closed
//     only when all 64 are being answered.
// Everything runs on the EventLoop's thread; the responder is called there.
#ifndef AMBIENT_EXAMPLES_NODE_PROXY_HTTP_SERVER_H_
#define AMBIENT_EXAMPLES_NODE_PROXY_HTTP_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/socket.h"

namespace ambient::examples {

// HttpRequest is a request line that parsed: METHOD TARGET HTTP/1.x. The
// views point into the bytes given to HttpAnswer.
struct HttpRequest {
  absl::string_view method;  // as sent (case-sensitive, like HTTP)
  absl::string_view target;  // starts with '/'
  absl::string_view path;    // target up to the first '?'
  absl::string_view query;   // after the first '?' ("" without one)
};

// HttpQueryParam returns the value of `name` in `query`
// ("a=1&level=debug"): the first "name=value" pair's value (undecoded; ""
// for "name" or "name="), or nullopt when `name` is absent.
std::optional<absl::string_view> HttpQueryParam(absl::string_view query, absl::string_view name);

// HttpResponse builds a whole response: status line, Content-Type,
// Content-Length (the body's, also for HEAD), "Connection: close", and the
// body unless `head_only`.
std::string HttpResponse(int code, absl::string_view reason, absl::string_view content_type,
                         absl::string_view body, bool head_only = false);
// HttpText is HttpResponse with "text/plain; charset=utf-8".
std::string HttpText(int code, absl::string_view reason, absl::string_view body,
                     bool head_only = false);

// HttpRoute answers a well-formed request (any method, any path).
using HttpRoute = std::function<std::string(const HttpRequest&)>;

// HttpAnswer returns the full response to the request head in `bytes` (the
// bytes received so far), or nullopt when the head is not complete yet. A
// head over HttpServer::kMaxHead is 431; a request line that is not
// "METHOD /TARGET HTTP/1.x" (single spaces) is 400 "malformed request
// line"; anything else goes to `route`. Pure: no I/O.
std::optional<std::string> HttpAnswer(absl::string_view bytes, const HttpRoute& route);

class HttpServer {
 public:
  // Responder returns the response to the bytes received so far on a
  // connection, or nullopt to wait for more (HttpAnswer bound to a route).
  using Responder = std::function<std::optional<std::string>(absl::string_view)>;

  // New listens on `listen` ("ip:port", "[v6]:port"; port 0 picks one).
  // Errors: InvalidArgument (address), AlreadyExists, PermissionDenied.
  static absl::StatusOr<std::unique_ptr<HttpServer>> New(runtime::EventLoop* loop,
                                                         const std::string& listen,
                                                         Responder respond);
  // Closes the listener and every connection at once.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // address is where it listens (with the port picked for port 0).
  const ambient::SocketAddress& address() const { return address_; }

  static constexpr size_t kMaxHead = 8192;
  static constexpr size_t kMaxConnections = 64;

 private:
  struct Conn;
  HttpServer(runtime::EventLoop* loop, int fd, ambient::SocketAddress address, Responder respond);
  void OnAccept();
  void OnConn(Conn* c, uint32_t events);
  void Close(Conn* c);
  bool EvictIdlest();  // closes the oldest connection owing its request

  runtime::EventLoop* loop_;
  int fd_;
  ambient::SocketAddress address_;
  Responder respond_;
  runtime::IoWatch accept_watch_;
  std::map<Conn*, std::unique_ptr<Conn>> conns_;
  uint64_t accepts_ = 0;
};

}  // namespace ambient::examples

#endif  // AMBIENT_EXAMPLES_NODE_PROXY_HTTP_SERVER_H_
