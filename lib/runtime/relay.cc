#include "runtime/relay.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ambient::runtime {

namespace {
bool IsSocket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

// ResetFor is how a failed read or write of the relayed fd ends the stream:
// a TCP connection that was reset or broke is reported to the peer as
// CONNECT_ERROR (RFC 9113 section 8.5), so its proxy resets its own TCP side;
// any other failure just cancels the stream.
hbone::ResetCode ResetFor(int err) {
  switch (err) {
    case ECONNRESET:
    case EPIPE:
    case ECONNABORTED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return hbone::ResetCode::kConnectError;
    default:
      return hbone::ResetCode::kCancel;
  }
}
}  // namespace

Relay::Relay(Session* session, hbone::StreamId id, int in_fd, int out_fd, bool owns_fds, Done done)
    : session_(session),
      loop_(session->loop()),
      id_(id),
      in_fd_(in_fd),
      out_fd_(out_fd),
      owns_fds_(owns_fds),
      done_(std::move(done)),
      in_watch_(loop_, [this](uint32_t ev) { OnInIo(ev); }),
      out_watch_(loop_, [this](uint32_t ev) { OnOutIo(ev); }) {
  result_.started = loop_->Now();
  session_->Attach(id_, this);
}

Relay::~Relay() {
  in_watch_.Stop();
  out_watch_.Stop();
}

void Relay::Start() {
  // IoWatch refuses regular files with FailedPrecondition: they are always ready.
  absl::Status st = in_watch_.Start(in_fd_, EPOLLIN);
  if (st.code() == absl::StatusCode::kFailedPrecondition) {
    in_always_ready_ = true;  // a regular file
  } else if (!st.ok()) {
    session_->conn()->StreamReset(id_).IgnoreError();
    session_->Kick();
    return;
  }
  if (out_fd_ != in_fd_) {
    absl::Status ost = out_watch_.Start(out_fd_, 0);
    if (ost.code() == absl::StatusCode::kFailedPrecondition) out_always_ready_ = true;
  }
  if (in_always_ready_) PumpIn();
}

void Relay::OnResponse(int http_status, const std::vector<hbone::Header>& headers) {
  result_.http_status = http_status;
  for (const hbone::Header& h : headers) {
    if (h.name == "baggage") result_.response_baggage = h.value;  // the last one wins
  }
  if (on_response_) on_response_(http_status);
}

void Relay::OnInIo(uint32_t events) {
  if (finished_) return;
  if (in_fd_ == out_fd_ && (events & EPOLLOUT)) {
    out_blocked_ = false;
    OnReadable();
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) PumpIn();
  UpdateWatches();
}

void Relay::OnOutIo(uint32_t events) {
  if (finished_) return;
  if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
    out_blocked_ = false;
    OnReadable();
  }
  UpdateWatches();
}

void Relay::PumpIn() {
  if (finished_ || in_eof_ || stream_closed_) return;
  hbone::Connection* conn = session_->conn();
  absl::Span<uint8_t> scratch = loop_->Scratch();
  for (int i = 0; i < 4; ++i) {
    // Read no more than the stream can take now: what is read is never
    // buffered here.
    absl::StatusOr<size_t> room_or = conn->StreamWriteRoom(id_);
    if (!room_or.ok()) {
      in_eof_ = true;
      break;
    }
    size_t room = *room_or;
    if (room == 0) {
      in_paused_ = true;
      break;
    }
    // Read straight into the stream's send buffer (no copy here), several
    // of its chunks per readv once the stream moves bulk data.
    size_t want = std::min(room, scratch.size());
    size_t lent = 0;
    int read_errno = 0;
    absl::StatusOr<ssize_t> got = conn->StreamWriteFromSpans(
        id_, want, [&](absl::Span<const absl::Span<uint8_t>> runs) -> ssize_t {
          constexpr size_t kMaxRuns = 8;  // what StreamWriteFromSpans lends at most
          iovec iov[kMaxRuns];
          size_t n = std::min(runs.size(), kMaxRuns);
          for (size_t i = 0; i < n; ++i) {
            iov[i].iov_base = runs[i].data();
            iov[i].iov_len = runs[i].size();
            lent += runs[i].size();
          }
          ssize_t r = n == 1 ? read(in_fd_, iov[0].iov_base, iov[0].iov_len)
                             : readv(in_fd_, iov, static_cast<int>(n));
          if (r < 0) read_errno = errno;
          return r;
        });
    if (!got.ok()) {
      in_eof_ = true;
      break;
    }
    ssize_t n = *got;
    errno = read_errno;
    if (n > 0) {
      result_.fd_to_stream += static_cast<uint64_t>(n);
      session_->Kick();
      if (static_cast<size_t>(n) < lent) break;
      continue;
    }
    if (n == 0) {
      in_eof_ = true;
      conn->StreamShutdownWrite(id_).IgnoreError();
      session_->Kick();
      break;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    if (errno == EINTR) continue;
    // Read error (e.g. ECONNRESET): the stream is broken.
    in_eof_ = true;
    conn->StreamReset(id_, ResetFor(errno)).IgnoreError();
    session_->Kick();
    break;
  }
  if (in_always_ready_ && !in_eof_ && !in_paused_ && !in_pump_scheduled_) {
    in_pump_scheduled_ = true;
    loop_->Defer([this] {
      in_pump_scheduled_ = false;
      PumpIn();
    });
  }
  UpdateWatches();
}

void Relay::OnWritable() {
  if (finished_) return;
  in_paused_ = false;
  PumpIn();
}

void Relay::OnReadable() {
  if (finished_ || out_blocked_) return;
  hbone::Connection* conn = session_->conn();
  bool consumed = false;
  for (;;) {
    // Everything received so far in one gathered write (the queue holds it
    // in chunks of up to 64 KiB).
    constexpr size_t kMaxIov = 16;
    absl::Span<const uint8_t> spans[kMaxIov];
    size_t n_spans = conn->StreamPeekSpans(id_, spans, kMaxIov);
    if (n_spans == 0) break;
    iovec iov[kMaxIov];
    size_t total = 0;
    for (size_t i = 0; i < n_spans; ++i) {
      iov[i].iov_base = const_cast<uint8_t*>(spans[i].data());
      iov[i].iov_len = spans[i].size();
      total += spans[i].size();
    }
    ssize_t n;
    if (out_fd_ == in_fd_) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n_spans;
      n = sendmsg(out_fd_, &msg, MSG_NOSIGNAL);
    } else {
      n = writev(out_fd_, iov, static_cast<int>(n_spans));
    }
    if (n > 0) {
      conn->StreamConsume(id_, static_cast<size_t>(n));
      result_.stream_to_fd += static_cast<uint64_t>(n);
      consumed = true;
      if (static_cast<size_t>(n) < total) {
        // The fd took less: it is full (or a pipe near full); wait for it.
        out_blocked_ = true;
        break;
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      out_blocked_ = true;
      break;
    }
    if (n < 0 && errno == EINTR) continue;
    // The fd cannot take data any more (e.g. EPIPE, ECONNRESET): reset the stream.
    conn->StreamReset(id_, ResetFor(n < 0 ? errno : 0)).IgnoreError();
    session_->Kick();
    out_blocked_ = true;
    break;
  }
  if (!out_blocked_ && !out_shut_ && conn->StreamAtEof(id_)) {
    out_shut_ = true;
    // A socket gets our FIN; anything else (a pipe, a terminal) says
    // ENOTSOCK, which is fine: it is closed when the relay ends.
    shutdown(out_fd_, SHUT_WR);
  }
  if (consumed) session_->Kick();
  UpdateWatches();
}

void Relay::UpdateWatches() {
  if (finished_) return;
  if (out_blocked_ && out_always_ready_) {
    out_blocked_ = false;
    loop_->Defer([this] { OnReadable(); });
  }
  // The epoll interest is applied once, at the end of the loop iteration:
  // a relay that reads EOF and finishes in the same iteration then skips
  // the change altogether, and several changes cost one epoll_ctl.
  if (watches_scheduled_) return;
  watches_scheduled_ = true;
  loop_->Defer([this] {
    watches_scheduled_ = false;
    ApplyWatches();
  });
}

void Relay::ApplyWatches() {
  if (finished_) return;
  bool want_in = !in_eof_ && !in_paused_ && !in_always_ready_;
  bool want_out = out_blocked_ && !out_always_ready_;
  if (in_fd_ == out_fd_) {
    uint32_t ev = (want_in ? uint32_t{EPOLLIN} : 0u) | (want_out ? uint32_t{EPOLLOUT} : 0u);
    if (in_watch_.fd() >= 0) (void)in_watch_.SetEvents(ev);
  } else {
    if (in_watch_.fd() >= 0) (void)in_watch_.SetEvents(want_in ? uint32_t{EPOLLIN} : 0u);
    if (out_watch_.fd() >= 0) (void)out_watch_.SetEvents(want_out ? uint32_t{EPOLLOUT} : 0u);
  }
}

void Relay::OnClosed(const absl::Status& status) {
  stream_closed_ = true;
  Finish(status);
}

void Relay::Finish(absl::Status status) {
  if (finished_) return;
  finished_ = true;
  in_watch_.Stop();
  out_watch_.Stop();
  result_.status = std::move(status);
  result_.ended = loop_->Now();
  if (owns_fds_) {
    if (result_.status.ok()) {
      close(in_fd_);
    } else if (IsSocket(in_fd_)) {
      AbortClose(in_fd_);
    } else {
      close(in_fd_);
    }
    if (out_fd_ != in_fd_) close(out_fd_);
  }
  Done done = std::move(done_);
  RelayResult result = result_;
  loop_->DeleteSoon(this);
  if (done) done(result);
}

}  // namespace ambient::runtime
