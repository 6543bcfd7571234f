// ControlPlaneConnection: a grpc::Channel kept connected on an EventLoop.
#include "ambient/xds/control_plane_connection.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/base/read_file.h"
#include "ambient/grpc/tls.h"
#include "ambient/runtime/socket.h"

namespace ambient::xds {
namespace {

constexpr size_t kMaxTokenSize = 64 * 1024;

// SplitHostPort reads "host:port" / "[v6]:port".
absl::Status SplitHostPort(const std::string& address, std::string* host, std::string* port) {
  size_t colon;
  if (!address.empty() && address[0] == '[') {
    size_t close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad control plane address \"", address, "\": want [v6]:port"));
    }
    *host = address.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = address.rfind(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad control plane address \"", address, "\": want host:port"));
    }
    *host = address.substr(0, colon);
  }
  *port = address.substr(colon + 1);
  int n = 0;
  if (host->empty() || !absl::SimpleAtoi(*port, &n) || n < 1 || n > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad control plane address \"", address, "\": want host:port"));
  }
  return absl::OkStatus();
}

}  // namespace

Backoff::Backoff(absl::Duration initial, absl::Duration max, uint64_t seed)
    : initial_(initial), max_(max), current_(initial), rng_(seed) {}

absl::Duration Backoff::Next() {
  absl::Duration base = current_;
  current_ = std::min(current_ * 2, max_);
  // Jitter: up to a quarter of the delay less, so clients spread out.
  int64_t quarter = absl::ToInt64Microseconds(base) / 4;
  if (quarter <= 0) return base;
  std::uniform_int_distribution<int64_t> dist(0, quarter);
  return base - absl::Microseconds(dist(rng_));
}

absl::StatusOr<std::unique_ptr<ControlPlaneConnection>> ControlPlaneConnection::New(
    runtime::EventLoop* loop, ConnectionOptions options) {
  if (loop == nullptr) return absl::InvalidArgumentError("no event loop");
  std::string host, port;
  if (absl::Status s = SplitHostPort(options.address, &host, &port); !s.ok()) return s;
  if (options.backoff_initial <= absl::ZeroDuration() ||
      options.backoff_max < options.backoff_initial || options.max_receive_message == 0) {
    return absl::InvalidArgumentError("control plane backoff and message limit must be positive");
  }
  ssl_ctx_st* ctx = nullptr;
  if (!options.roots_pem_file.empty()) {
    if (options.server_name.empty()) {
      return absl::InvalidArgumentError("TLS to the control plane needs a server name");
    }
    absl::StatusOr<std::string> pem =
        ReadFileBounded(options.roots_pem_file, kMaxFileSize, "control plane root certificate");
    if (!pem.ok()) return pem.status();
    absl::StatusOr<ssl_ctx_st*> made = grpc::NewClientTlsContext(*pem);
    if (!made.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("control plane root certificate file ",
                                                     options.roots_pem_file, ": ",
                                                     made.status().message()));
    }
    ctx = *made;
  }
  std::unique_ptr<ControlPlaneConnection> c(new ControlPlaneConnection(loop, std::move(options)));
  c->host_ = std::move(host);
  c->port_ = std::move(port);
  c->ssl_ctx_ = ctx;
  return c;
}

ControlPlaneConnection::ControlPlaneConnection(runtime::EventLoop* loop, ConnectionOptions options)
    : loop_(loop),
      options_(std::move(options)),
      watch_(loop, [this](uint32_t events) { OnIo(events); }),
      timer_(loop, [this] { OnTimer(); }),
      reconnect_(loop, [this] { Connect(); }),
      unary_deadlines_(
          loop,
          [this] {
            absl::Time now = loop_->Now();
            std::vector<uint64_t> late;
            absl::Time next = absl::InfiniteFuture();
            for (auto& [id, u] : unary_) {
              if (u.call != 0) continue;
              if (u.deadline <= now) {
                late.push_back(id);
              } else {
                next = std::min(next, u.deadline);
              }
            }
            for (uint64_t id : late) {
              FinishUnary(id, absl::DeadlineExceededError("deadline passed while waiting for the "
                                                          "control plane connection"));
            }
            unary_deadlines_.Arm(next);
          }),
      backoff_(options_.backoff_initial, options_.backoff_max,
               static_cast<uint64_t>(absl::ToUnixNanos(absl::Now())) ^
                   reinterpret_cast<uintptr_t>(this)) {}

ControlPlaneConnection::~ControlPlaneConnection() {
  CloseSocket();
  std::map<uint64_t, Unary> left = std::move(unary_);
  unary_.clear();
  for (auto& [id, u] : left) {
    u.done(absl::CancelledError("the control plane connection was closed"));
  }
  if (ssl_ctx_ != nullptr) grpc::FreeTlsContext(ssl_ctx_);
}

void ControlPlaneConnection::Start() {
  if (started_) return;
  started_ = true;
  Connect();
}

void ControlPlaneConnection::Connect() {
  if (fd_ >= 0) return;
  ++stats_.connect_attempts;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    Fail(absl::UnavailableError(
        absl::StrCat("cannot resolve ", host_, ": ", rc != 0 ? gai_strerror(rc) : "no address")));
    return;
  }
  // One address per attempt, in turn: "localhost" may name ::1 first while
  // the server listens on 127.0.0.1 only.
  size_t count = 0;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) ++count;
  addrinfo* pick = res;
  for (size_t i = (stats_.connect_attempts - 1) % count; i > 0; --i) pick = pick->ai_next;
  absl::StatusOr<SocketAddress> addr =
      SocketAddress::FromSockaddr(pick->ai_addr, static_cast<socklen_t>(pick->ai_addrlen));
  freeaddrinfo(res);
  if (!addr.ok()) {
    Fail(addr.status());
    return;
  }
  absl::StatusOr<int> fd = runtime::StartConnect(*addr);
  if (!fd.ok()) {
    Fail(fd.status());
    return;
  }
  fd_ = *fd;
  connecting_ = true;
  connect_deadline_ = loop_->Now() + options_.connect_timeout;
  if (absl::Status s = watch_.Start(fd_, EPOLLOUT); !s.ok()) {
    Fail(s);
    return;
  }
  ArmTimer();
}

void ControlPlaneConnection::OnConnectDone() {
  if (absl::Status s = runtime::FinishConnect(fd_); !s.ok()) {
    Fail(absl::UnavailableError(absl::StrCat("connect to ", options_.address, ": ", s.message())));
    return;
  }
  connecting_ = false;
  connect_deadline_ = absl::InfiniteFuture();
  grpc::ChannelOptions co;
  co.authority = options_.address;
  co.scheme = ssl_ctx_ != nullptr ? "https" : "http";
  co.max_receive_message = options_.max_receive_message;
  co.keepalive_interval = options_.keepalive_interval;
  co.keepalive_timeout = options_.keepalive_timeout;
  absl::StatusOr<std::unique_ptr<grpc::Channel>> ch;
  if (ssl_ctx_ != nullptr) {
    grpc::TlsOptions tls;
    tls.ssl_ctx = ssl_ctx_;
    tls.server_name = options_.server_name;
    ch = grpc::NewTlsChannel(std::move(co), std::move(tls), loop_->Now());
  } else {
    ch = grpc::Channel::New(std::move(co), loop_->Now());
  }
  if (!ch.ok()) {
    Fail(ch.status());
    return;
  }
  channel_ = std::move(*ch);
  ++stats_.connects;
  RefreshMetadata();
  (void)watch_.SetEvents(EPOLLIN);
  if (handlers_.on_connected) handlers_.on_connected();
  if (channel_ == nullptr) return;  // the handler gave up on it
  for (auto& [id, u] : unary_) {
    if (u.call == 0) StartUnary(id);
    if (channel_ == nullptr) return;
  }
  Flush();
  if (channel_ != nullptr) ArmTimer();
}

void ControlPlaneConnection::OnIo(uint32_t events) {
  if (connecting_) {
    OnConnectDone();
    return;
  }
  if (channel_ == nullptr) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    absl::Span<uint8_t> buf = loop_->Scratch();
    for (;;) {
      ssize_t n = read(fd_, buf.data(), buf.size());
      if (n > 0) {
        absl::Time now = loop_->Now();
        if (!channel_
                 ->Receive(
                     absl::string_view(reinterpret_cast<char*>(buf.data()), static_cast<size_t>(n)),
                     now)
                 .ok()) {
          break;
        }
        if (static_cast<size_t>(n) < buf.size()) break;
        continue;
      }
      if (n == 0) {
        channel_->ReceiveEof(loop_->Now());
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        channel_->Abort(ErrnoStatus(errno, "reading from the control plane"));
      }
      break;
    }
  }
  Settle();
}

void ControlPlaneConnection::Settle() {
  Dispatch();
  if (channel_ == nullptr) return;
  if (channel_->broken()) {
    Fail(channel_->error());
    return;
  }
  if (channel_->draining() && channel_->open_calls() == 0) {
    Fail(absl::UnavailableError("the control plane sent GOAWAY"));
    return;
  }
  Flush();
  if (channel_ != nullptr) ArmTimer();
}

void ControlPlaneConnection::Flush() {
  if (channel_ == nullptr || fd_ < 0) return;
  for (;;) {
    absl::string_view out = channel_->PendingOutput();
    if (out.empty()) break;
    ssize_t n = send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
    if (n > 0) {
      channel_->ConsumeOutput(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Fail(ErrnoStatus(errno, "writing to the control plane"));
    return;
  }
  (void)watch_.SetEvents(EPOLLIN | (channel_->PendingOutput().empty() ? 0u : EPOLLOUT));
}

void ControlPlaneConnection::Dispatch() {
  grpc::CallEvent e;
  while (channel_ != nullptr && channel_->PollEvent(&e)) {
    auto it = unary_calls_.find(e.call);
    if (it == unary_calls_.end()) {
      if (handlers_.on_event) handlers_.on_event(e);
      continue;
    }
    uint64_t id = it->second;
    auto u = unary_.find(id);
    if (u == unary_.end()) {
      unary_calls_.erase(it);
      continue;
    }
    if (e.kind == grpc::CallEvent::Kind::kMessage) {
      if (!u->second.got_response) {
        u->second.response = std::move(e.message);
        u->second.got_response = true;
      }
    } else if (e.kind == grpc::CallEvent::Kind::kClosed) {
      unary_calls_.erase(it);
      if (!e.status.ok()) {
        FinishUnary(id, e.status);
      } else if (!u->second.got_response) {
        FinishUnary(id, absl::InternalError(
                            absl::StrCat(u->second.method, ": the server sent no response")));
      } else {
        FinishUnary(id, std::move(u->second.response));
      }
    }
  }
}

void ControlPlaneConnection::ArmTimer() {
  absl::Time t = connecting_           ? connect_deadline_
                 : channel_ != nullptr ? channel_->NextDeadline()
                                       : absl::InfiniteFuture();
  timer_.Arm(t);
}

void ControlPlaneConnection::OnTimer() {
  absl::Time now = loop_->Now();
  if (connecting_) {
    if (now >= connect_deadline_) {
      Fail(absl::DeadlineExceededError(
          absl::StrCat("connect to ", options_.address, " took over ",
                       absl::FormatDuration(options_.connect_timeout))));
    } else {
      ArmTimer();
    }
    return;
  }
  if (channel_ == nullptr) return;
  channel_->OnTimeout(now);
  Settle();
}

void ControlPlaneConnection::CloseSocket() {
  watch_.Stop();
  timer_.Disarm();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  connecting_ = false;
  channel_.reset();
  unary_calls_.clear();
}

void ControlPlaneConnection::Fail(const absl::Status& why) {
  if (failing_) return;
  failing_ = true;
  last_error_ = why;
  ++stats_.failures;
  bool was_up = channel_ != nullptr;
  if (channel_ != nullptr) {
    // Every open call gets its kClosed (Unavailable) before the channel goes.
    channel_->Abort(why);
    Dispatch();
  }
  // Unary calls on the channel that did not get their kClosed: Unavailable.
  std::vector<uint64_t> on_channel;
  for (auto& [id, u] : unary_) {
    if (u.call != 0) on_channel.push_back(id);
  }
  CloseSocket();
  for (uint64_t id : on_channel) {
    FinishUnary(id, absl::UnavailableError(
                        absl::StrCat("control plane connection failed: ", why.message())));
  }
  if (was_up && handlers_.on_disconnected) handlers_.on_disconnected(why);
  failing_ = false;
  if (started_) reconnect_.Arm(loop_->Now() + backoff_.Next());
}

void ControlPlaneConnection::Reconnect(const absl::Status& why) {
  if (fd_ < 0 && channel_ == nullptr) return;  // already waiting to reconnect
  Fail(why);
}

void ControlPlaneConnection::RefreshMetadata() {
  if (!options_.token_file.empty()) {
    struct stat st {};
    if (stat(options_.token_file.c_str(), &st) != 0) {
      token_.clear();  // no token file: no authorization header (ztunnel does the same)
      token_read_ = false;
    } else if (!token_read_ || st.st_mtim.tv_sec != token_mtime_.tv_sec ||
               st.st_mtim.tv_nsec != token_mtime_.tv_nsec || st.st_size != token_size_) {
      absl::StatusOr<std::string> t = ReadFileBounded(options_.token_file, kMaxTokenSize, "token");
      if (t.ok()) {
        token_ = std::string(absl::StripAsciiWhitespace(*t));
        token_mtime_ = st.st_mtim;
        token_size_ = st.st_size;
        token_read_ = true;
      } else {
        token_.clear();
        token_read_ = false;
      }
    }
  }
  if (channel_ == nullptr) return;
  grpc::Metadata md;
  if (!token_.empty()) md.emplace_back("authorization", absl::StrCat("Bearer ", token_));
  if (!options_.cluster_id.empty()) md.emplace_back("clusterid", options_.cluster_id);
  channel_->SetMetadata(std::move(md));
}

absl::StatusOr<grpc::CallId> ControlPlaneConnection::StartCall(absl::string_view method,
                                                               absl::Time deadline) {
  if (!connected()) return absl::FailedPreconditionError("not connected to the control plane");
  RefreshMetadata();
  absl::StatusOr<grpc::CallId> call = channel_->StartCall(method, deadline, {}, loop_->Now());
  Flush();
  return call;
}

absl::Status ControlPlaneConnection::SendMessage(grpc::CallId call, absl::string_view message) {
  if (!connected()) return absl::FailedPreconditionError("not connected to the control plane");
  absl::Status s = channel_->SendMessage(call, message, loop_->Now());
  Flush();
  return s;
}

absl::Status ControlPlaneConnection::CloseSend(grpc::CallId call) {
  if (!connected()) return absl::FailedPreconditionError("not connected to the control plane");
  absl::Status s = channel_->CloseSend(call, loop_->Now());
  Flush();
  return s;
}

void ControlPlaneConnection::Cancel(grpc::CallId call) {
  if (!connected()) return;
  channel_->Cancel(call, loop_->Now());
  Flush();
}

void ControlPlaneConnection::Call(absl::string_view method, std::string request,
                                  absl::Time deadline, CallDone done) {
  uint64_t id = next_unary_++;
  Unary& u = unary_[id];
  u.method = std::string(method);
  u.request = std::move(request);
  u.deadline = deadline;
  u.done = std::move(done);
  if (connected()) {
    StartUnary(id);
    Flush();
  } else if (deadline < absl::InfiniteFuture()) {
    if (!unary_deadlines_.armed() || deadline < unary_deadlines_.deadline()) {
      unary_deadlines_.Arm(deadline);
    }
  }
}

void ControlPlaneConnection::StartUnary(uint64_t id) {
  Unary& u = unary_[id];
  absl::Time now = loop_->Now();
  if (u.deadline <= now) {
    FinishUnary(id, absl::DeadlineExceededError(absl::StrCat(u.method, ": deadline passed")));
    return;
  }
  RefreshMetadata();
  absl::StatusOr<grpc::CallId> call = channel_->StartCall(u.method, u.deadline, {}, now);
  if (!call.ok()) {
    FinishUnary(id, call.status());
    return;
  }
  u.call = *call;
  unary_calls_[*call] = id;
  absl::Status s = channel_->SendMessage(u.call, u.request, now);
  if (s.ok()) s = channel_->CloseSend(u.call, now);
  if (!s.ok()) {
    channel_->Cancel(u.call, now);
    unary_calls_.erase(u.call);
    FinishUnary(id, s);
  }
}

void ControlPlaneConnection::FinishUnary(uint64_t id, absl::StatusOr<std::string> result) {
  auto it = unary_.find(id);
  if (it == unary_.end()) return;
  CallDone done = std::move(it->second.done);
  unary_.erase(it);
  // Never inside Call or inside the channel's event loop: at the end of this
  // loop iteration.
  loop_->Defer(
      [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

}  // namespace ambient::xds
