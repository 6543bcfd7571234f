#include "metrics_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ambient::examples {

namespace {

std::string Response(int code, absl::string_view reason, absl::string_view content_type,
                     absl::string_view body, bool head_only) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      head_only ? absl::string_view() : body);
}

std::string Plain(int code, absl::string_view reason, absl::string_view body,
                  bool head_only = false) {
  return Response(code, reason, "text/plain; charset=utf-8", body, head_only);
}

}  // namespace

std::optional<std::string> HttpRespond(absl::string_view request, const MetricsHandlers& h) {
  size_t end = request.find("\r\n\r\n");
  if (end == absl::string_view::npos) end = request.find("\n\n");
  if (end == absl::string_view::npos) {
    if (request.size() >= MetricsServer::kMaxHead) {
      return Plain(431, "Request Header Fields Too Large", "request head too large\n");
    }
    return std::nullopt;
  }
  if (end > MetricsServer::kMaxHead) {
    return Plain(431, "Request Header Fields Too Large", "request head too large\n");
  }
  absl::string_view line = request.substr(0, request.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[1][0] != '/' ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return Plain(400, "Bad Request", "malformed request line\n");
  }
  bool head = parts[0] == "HEAD";
  if (parts[0] != "GET" && !head) {
    return Plain(405, "Method Not Allowed", "only GET and HEAD\n");
  }
  absl::string_view path = parts[1].substr(0, parts[1].find('?'));
  if (path == "/metrics" || path == "/stats/prometheus") {
    std::string text = h.metrics ? h.metrics() : std::string();
    return Response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", text, head);
  }
  if (path == "/healthz/ready") {
    if (h.ready && h.ready()) return Plain(200, "OK", "ready\n", head);
    return Plain(503, "Service Unavailable", "not ready\n", head);
  }
  return Plain(404, "Not Found", "not found\n", head);
}

struct MetricsServer::Conn {
  Conn(MetricsServer* server, int fd)
      : fd(fd),
        watch(server->loop_, [server, this](uint32_t events) { server->OnConn(this, events); }),
        timer(server->loop_, [server, this] { server->Close(this); }) {}
  int fd;
  runtime::IoWatch watch;
  runtime::Timer timer;
  std::string in;
  std::string out;
  size_t written = 0;
  bool draining = false;  // answered; waiting for the client to close
  uint64_t accepted = 0;  // order of accept
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::New(runtime::EventLoop* loop,
                                                                  const std::string& listen,
                                                                  MetricsHandlers handlers) {
  absl::StatusOr<ambient::SocketAddress> addr = ambient::SocketAddress::Parse(listen);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = runtime::Listen(*addr);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<ambient::SocketAddress> bound = runtime::LocalAddress(*fd);
  if (!bound.ok()) {
    close(*fd);
    return bound.status();
  }
  std::unique_ptr<MetricsServer> s(new MetricsServer(loop, *fd, *bound, std::move(handlers)));
  if (absl::Status st = s->accept_watch_.Start(*fd, EPOLLIN); !st.ok()) return st;
  return s;
}

MetricsServer::MetricsServer(runtime::EventLoop* loop, int fd, ambient::SocketAddress address,
                             MetricsHandlers handlers)
    : loop_(loop),
      fd_(fd),
      address_(address),
      handlers_(std::move(handlers)),
      accept_watch_(loop, [this](uint32_t) { OnAccept(); }) {}

MetricsServer::~MetricsServer() {
  accept_watch_.Stop();
  close(fd_);
  for (auto& [c, owned] : conns_) {
    c->watch.Stop();
    c->timer.Disarm();
    close(c->fd);
  }
}

void MetricsServer::OnAccept() {
  for (int i = 0; i < 16; ++i) {
    absl::StatusOr<int> fd = runtime::Accept(fd_);
    if (!fd.ok()) return;  // none waiting (or a transient error)
    if (conns_.size() >= kMaxConnections && !EvictIdlest()) {
      close(*fd);
      continue;
    }
    auto c = std::make_unique<Conn>(this, *fd);
    c->accepted = ++accepts_;
    Conn* raw = c.get();
    if (!c->watch.Start(*fd, EPOLLIN).ok()) {
      close(*fd);
      continue;
    }
    c->timer.Arm(loop_->Now() + absl::Seconds(5));
    conns_[raw] = std::move(c);
  }
}

void MetricsServer::OnConn(Conn* c, uint32_t events) {
  if (c->draining) {
    // Answered: read what the client still sends until it closes, so the
    // close does not reset the connection before it read the answer.
    char buf[4096];
    for (;;) {
      ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      Close(c);
      return;
    }
  }
  if (c->out.empty()) {
    char buf[4096];
    bool ended = false;  // EOF or error: no more bytes will come
    for (;;) {
      ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
      if (n > 0) {
        c->in.append(buf, static_cast<size_t>(n));
        if (c->in.size() >= kMaxHead) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      ended = true;
      break;
    }
    std::optional<std::string> resp = HttpRespond(c->in, handlers_);
    if (!resp) {
      if (ended) Close(c);  // it went away before a full request
      return;
    }
    c->out = std::move(*resp);
    c->in.clear();
    if (!c->watch.SetEvents(EPOLLOUT).ok()) {
      Close(c);
      return;
    }
    events = EPOLLOUT;
  }
  if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
  while (c->written < c->out.size()) {
    ssize_t n = send(c->fd, c->out.data() + c->written, c->out.size() - c->written, MSG_NOSIGNAL);
    if (n > 0) {
      c->written += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    break;
  }
  if (c->written < c->out.size() || shutdown(c->fd, SHUT_WR) != 0 ||
      !c->watch.SetEvents(EPOLLIN).ok()) {
    Close(c);
    return;
  }
  c->draining = true;
  c->timer.Arm(loop_->Now() + absl::Seconds(2));
}

bool MetricsServer::EvictIdlest() {
  // The oldest connection still owing its request goes: idle connections
  // cannot hold every slot while a readiness probe waits.
  Conn* oldest = nullptr;
  for (auto& [c, owned] : conns_) {
    if (!c->out.empty() || c->draining) continue;
    if (oldest == nullptr || c->accepted < oldest->accepted) oldest = c;
  }
  if (oldest == nullptr) return false;
  Close(oldest);
  return true;
}

void MetricsServer::Close(Conn* c) {
  auto it = conns_.find(c);
  if (it == conns_.end()) return;
  c->watch.Stop();
  c->timer.Disarm();
  close(c->fd);
  // Freed after this iteration: its own callback may be on the stack.
  std::shared_ptr<Conn> owned(std::move(it->second));
  conns_.erase(it);
  loop_->Defer([owned] {});
}

}  // namespace ambient::examples
