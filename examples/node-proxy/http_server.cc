#include "http_server.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ambient::examples {

std::optional<absl::string_view> HttpQueryParam(absl::string_view query, absl::string_view name) {
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    absl::string_view key = pair.substr(0, pair.find('='));
    if (key != name) continue;
    if (key.size() == pair.size()) return absl::string_view();
    return pair.substr(key.size() + 1);
  }
  return std::nullopt;
}

std::string HttpResponse(int code, absl::string_view reason, absl::string_view content_type,
                         absl::string_view body, bool head_only) {
  return absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", content_type,
                      "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n",
                      head_only ? absl::string_view() : body);
}

std::string HttpText(int code, absl::string_view reason, absl::string_view body, bool head_only) {
  return HttpResponse(code, reason, "text/plain; charset=utf-8", body, head_only);
}

std::optional<std::string> HttpAnswer(absl::string_view bytes, const HttpRoute& route) {
  size_t end = bytes.find("\r\n\r\n");
  if (end == absl::string_view::npos) end = bytes.find("\n\n");
  if (end == absl::string_view::npos) {
    if (bytes.size() >= HttpServer::kMaxHead) {
      return HttpText(431, "Request Header Fields Too Large", "request head too large\n");
    }
    return std::nullopt;
  }
  if (end > HttpServer::kMaxHead) {
    return HttpText(431, "Request Header Fields Too Large", "request head too large\n");
  }
  absl::string_view line = bytes.substr(0, bytes.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
  if (parts.size() != 3 || parts[0].empty() || parts[1].empty() || parts[1][0] != '/' ||
      !absl::StartsWith(parts[2], "HTTP/1.")) {
    return HttpText(400, "Bad Request", "malformed request line\n");
  }
  HttpRequest req;
  req.method = parts[0];
  req.target = parts[1];
  size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != absl::string_view::npos) req.query = req.target.substr(q + 1);
  return route(req);
}

struct HttpServer::Conn {
  Conn(HttpServer* server, int fd)
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

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::New(runtime::EventLoop* loop,
                                                            const std::string& listen,
                                                            Responder respond) {
  absl::StatusOr<ambient::SocketAddress> addr = ambient::SocketAddress::Parse(listen);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = runtime::Listen(*addr);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<ambient::SocketAddress> bound = runtime::LocalAddress(*fd);
  if (!bound.ok()) {
    close(*fd);
    return bound.status();
  }
  std::unique_ptr<HttpServer> s(new HttpServer(loop, *fd, *bound, std::move(respond)));
  if (absl::Status st = s->accept_watch_.Start(*fd, EPOLLIN); !st.ok()) return st;
  return s;
}

HttpServer::HttpServer(runtime::EventLoop* loop, int fd, ambient::SocketAddress address,
                       Responder respond)
    : loop_(loop),
      fd_(fd),
      address_(address),
      respond_(std::move(respond)),
      accept_watch_(loop, [this](uint32_t) { OnAccept(); }) {}

HttpServer::~HttpServer() {
  accept_watch_.Stop();
  close(fd_);
  for (auto& [c, owned] : conns_) {
    c->watch.Stop();
    c->timer.Disarm();
    close(c->fd);
  }
}

void HttpServer::OnAccept() {
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

void HttpServer::OnConn(Conn* c, uint32_t events) {
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
    std::optional<std::string> resp = respond_(c->in);
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

bool HttpServer::EvictIdlest() {
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

void HttpServer::Close(Conn* c) {
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
