#include "runtime/session.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ambient::runtime {

namespace {

class OrphanOwner final : public SessionOwner {
 public:
  void OnStreamRequest(Session* s, hbone::StreamId id, const hbone::ConnectRequest&) override {
    s->conn()->RejectStream(id, 503).IgnoreError();
  }
  void OnSessionClosed(Session*, const absl::Status&) override {}
};

}  // namespace

SessionOwner* OrphanSessionOwner() {
  static OrphanOwner* const orphan = new OrphanOwner;
  return orphan;
}

Session::Session(EventLoop* loop, int fd, std::unique_ptr<hbone::Connection> conn,
                 SessionOwner* owner)
    : loop_(loop),
      fd_(fd),
      conn_(std::move(conn)),
      owner_(owner),
      watch_(loop, [this](uint32_t ev) { OnIo(ev); }),
      timer_(loop, [this] {
        if (conn_->IsClosed()) {
          // The peer did not take our last bytes (GOAWAY, alert) in time.
          hbone::Event ev;
          while (conn_->PollEvent(&ev)) Dispatch(ev);
          Close(close_status_.ok() ? absl::DeadlineExceededError("peer stopped reading")
                                   : close_status_);
          return;
        }
        conn_->OnTimeout(loop_->Now());
        Process();
      }),
      silent_timer_(loop, [this] {
        Abort(absl::DeadlineExceededError(absl::StrCat(
            "the peer sent nothing within ", absl::FormatDuration(silent_after_))));
      }) {
  if (auto p = PeerAddress(fd); p.ok()) peer_ = *p;
  if (auto l = LocalAddress(fd); l.ok()) local_ = *l;
}

Session::~Session() {
  watch_.Stop();
  if (fd_ >= 0) close(fd_);
}

void Session::ExpectBytesWithin(absl::Duration d) {
  silent_after_ = d;
  silent_timer_.Arm(loop_->Now() + d);
}

void Session::Start() {
  absl::Status st = watch_.Start(fd_, EPOLLIN);
  if (!st.ok()) {
    conn_->Abort(st);
  } else {
    conn_->Start(loop_->Now());
  }
  Process();
}

void Session::Kick() {
  if (kicked_ || closed_) return;
  kicked_ = true;
  loop_->Defer([this] {
    kicked_ = false;
    Process();
  });
}

void Session::Abort(absl::Status status) {
  if (closed_) return;
  conn_->Abort(std::move(status));
  Kick();
}

void Session::OnIo(uint32_t events) {
  if (closed_) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
    absl::Span<uint8_t> buf = loop_->Scratch();
    for (int i = 0; i < 8 && !conn_->IsClosed(); ++i) {
      ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
      if (n > 0) {
        silent_timer_.Disarm();
        (void)conn_->Receive(absl::MakeConstSpan(buf.data(), static_cast<size_t>(n)), loop_->Now());
        if (static_cast<size_t>(n) < buf.size()) break;
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n < 0 && errno == EINTR) continue;
      conn_->ReceiveEof(loop_->Now());
      // Nothing more will come; stop asking.
      (void)watch_.SetEvents(watch_.events() & ~EPOLLIN);
      break;
    }
  }
  Process();
}

bool Session::Flush() {
  constexpr size_t kMaxIov = 16;
  for (;;) {
    absl::Span<const uint8_t> spans[kMaxIov];
    size_t n_spans = conn_->PendingOutputSpans(spans, kMaxIov);
    if (n_spans == 0) {
      if (watch_.events() & EPOLLOUT) (void)watch_.SetEvents(watch_.events() & ~EPOLLOUT);
      return true;
    }
    iovec iov[kMaxIov];
    size_t total = 0;
    for (size_t i = 0; i < n_spans; ++i) {
      iov[i].iov_base = const_cast<uint8_t*>(spans[i].data());
      iov[i].iov_len = spans[i].size();
      total += spans[i].size();
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = n_spans;
    ssize_t n = sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      conn_->ConsumeOutput(static_cast<size_t>(n));
      if (static_cast<size_t>(n) < total) {
        (void)watch_.SetEvents(watch_.events() | EPOLLOUT);
        return true;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      (void)watch_.SetEvents(watch_.events() | EPOLLOUT);
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    conn_->Abort(absl::UnavailableError(absl::StrCat("send: ", std::strerror(errno))));
    // Drop whatever is left: the socket is gone.
    for (auto o = conn_->PendingOutput(); !o.empty(); o = conn_->PendingOutput()) {
      conn_->ConsumeOutput(o.size());
    }
    return false;
  }
}

void Session::Process() {
  if (closed_ || in_process_) return;
  in_process_ = true;
  // Flush, then dispatch what happened; dispatching may produce more output
  // (stream writes, window updates), so go round until a flush leaves no
  // event behind.
  for (int round = 0; round < 64 && !closed_; ++round) {
    Flush();
    bool any = false;
    hbone::Event ev;
    while (!closed_ && conn_->PollEvent(&ev)) {
      any = true;
      Dispatch(ev);
    }
    if (!any) break;
  }
  in_process_ = false;
  if (closed_) return;
  if (conn_->IsClosed()) {
    if (conn_->PendingOutput().empty()) {
      hbone::Event ev;
      while (conn_->PollEvent(&ev)) Dispatch(ev);
      Close(close_status_);
    } else if (!linger_armed_) {
      // Give the last bytes a bounded time to leave, then drop the socket.
      linger_armed_ = true;
      timer_.Arm(loop_->Now() + absl::Seconds(5));
    }
    return;
  }
  timer_.Arm(conn_->NextDeadline());
}

void Session::Dispatch(hbone::Event& ev) {
  using T = hbone::Event::Type;
  auto listener = [&]() -> StreamListener* {
    auto it = listeners_.find(ev.stream);
    return it == listeners_.end() ? nullptr : it->second;
  };
  switch (ev.type) {
    case T::kHandshakeDone:
      owner_->OnEstablished(this);
      break;
    case T::kStreamRequest:
      owner_->OnStreamRequest(this, ev.stream, ev.request);
      break;
    case T::kStreamResponse:
      if (StreamListener* l = listener()) l->OnResponse(ev.http_status, ev.headers);
      break;
    case T::kStreamReadable:
      if (StreamListener* l = listener()) l->OnReadable();
      break;
    case T::kStreamWritable:
      if (StreamListener* l = listener()) l->OnWritable();
      break;
    case T::kStreamClosed: {
      StreamListener* l = listener();
      listeners_.erase(ev.stream);
      if (l != nullptr) l->OnClosed(ev.status);
      if (conn_->ActiveStreams() == 0 && !conn_->IsClosed()) owner_->OnIdle(this);
      break;
    }
    case T::kGoaway:
      owner_->OnGoaway(this);
      break;
    case T::kConnectionClosed:
      close_status_ = ev.status;
      break;
  }
}

void Session::Close(const absl::Status& status) {
  if (closed_) return;
  closed_ = true;
  timer_.Disarm();
  silent_timer_.Disarm();
  watch_.Stop();
  // Listeners left (none should be: stream closes come first) are told.
  auto left = std::move(listeners_);
  for (auto& [id, l] : left) l->OnClosed(status.ok() ? absl::UnavailableError("connection closed") : status);
  if (status.ok()) {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
  } else {
    AbortClose(fd_);
  }
  fd_ = -1;
  owner_->OnSessionClosed(this, status);
  loop_->DeleteSoon(this);
}

}  // namespace ambient::runtime
