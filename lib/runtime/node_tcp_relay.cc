#include "runtime/node_tcp_relay.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

namespace {

constexpr size_t kBufferSize = 64 * 1024;

class TcpRelay {
 public:
  TcpRelay(EventLoop* loop, int a, int b, std::function<void(const TcpRelayResult&)> done)
      : loop_(loop),
        done_(std::move(done)),
        a_(a),
        b_(b),
        watch_a_(loop, [this](uint32_t ev) { OnIo(a_, ev); }),
        watch_b_(loop, [this](uint32_t ev) { OnIo(b_, ev); }) {
    dirs_[0].src = a;
    dirs_[0].dst = b;
    dirs_[1].src = b;
    dirs_[1].dst = a;
  }

  void Start() {
    absl::Status st = watch_a_.Start(a_, EPOLLIN);
    if (st.ok()) st = watch_b_.Start(b_, EPOLLIN);
    if (!st.ok()) {
      loop_->Defer([this, st] { Finish(st); });
      return;
    }
  }

 private:
  struct Direction {
    int src = -1;
    int dst = -1;
    std::unique_ptr<char[]> buf;
    size_t off = 0;
    size_t len = 0;
    bool eof = false;
    bool done = false;  // EOF seen and everything written, dst shut down
    uint64_t bytes = 0;
  };

  void OnIo(int fd, uint32_t events) {
    if (finished_) return;
    if (events & EPOLLERR) {
      absl::Status st = FinishConnect(fd);  // reads SO_ERROR
      Finish(st.ok() ? absl::UnavailableError("socket error") : st);
      return;
    }
    for (Direction& d : dirs_) {
      absl::Status st = Pump(d);
      if (!st.ok()) {
        Finish(st);
        return;
      }
    }
    if (dirs_[0].done && dirs_[1].done) {
      Finish(absl::OkStatus());
      return;
    }
    UpdateWatches();
  }

  // Pump moves what it can in direction `d` without blocking.
  absl::Status Pump(Direction& d) {
    for (int round = 0; round < 16 && !d.done; ++round) {
      if (d.len == 0 && !d.eof) {
        if (!d.buf) d.buf.reset(new char[kBufferSize]);
        ssize_t n = recv(d.src, d.buf.get(), kBufferSize, 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          return absl::UnavailableError(absl::StrCat("read: ", std::strerror(errno)));
        }
        if (n == 0) {
          d.eof = true;
        } else {
          d.off = 0;
          d.len = static_cast<size_t>(n);
        }
      }
      if (d.len > 0) {
        ssize_t n = send(d.dst, d.buf.get() + d.off, d.len, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          return absl::UnavailableError(absl::StrCat("write: ", std::strerror(errno)));
        }
        d.off += static_cast<size_t>(n);
        d.len -= static_cast<size_t>(n);
        d.bytes += static_cast<uint64_t>(n);
        if (d.len > 0) break;
      }
      if (d.eof && d.len == 0) {
        shutdown(d.dst, SHUT_WR);
        d.done = true;
        d.buf.reset();
      }
    }
    return absl::OkStatus();
  }

  void UpdateWatches() {
    uint32_t ev_a = 0;
    uint32_t ev_b = 0;
    // dirs_[0]: a -> b; dirs_[1]: b -> a.
    if (!dirs_[0].done) {
      if (dirs_[0].len > 0)
        ev_b |= EPOLLOUT;
      else if (!dirs_[0].eof)
        ev_a |= EPOLLIN;
    }
    if (!dirs_[1].done) {
      if (dirs_[1].len > 0)
        ev_a |= EPOLLOUT;
      else if (!dirs_[1].eof)
        ev_b |= EPOLLIN;
    }
    // Errors and hangups are reported whatever the interest set.
    absl::Status st = watch_a_.SetEvents(ev_a);
    if (st.ok()) st = watch_b_.SetEvents(ev_b);
    if (!st.ok()) Finish(st);
  }

  void Finish(absl::Status st) {
    if (finished_) return;
    finished_ = true;
    watch_a_.Stop();
    watch_b_.Stop();
    if (st.ok()) {
      close(a_);
      close(b_);
    } else {
      AbortClose(a_);
      AbortClose(b_);
    }
    TcpRelayResult r;
    r.status = std::move(st);
    r.a_to_b = dirs_[0].bytes;
    r.b_to_a = dirs_[1].bytes;
    r.ended = loop_->Now();
    auto done = std::move(done_);
    if (done) done(r);
    loop_->DeleteSoon(this);
  }

  EventLoop* loop_;
  std::function<void(const TcpRelayResult&)> done_;
  int a_;
  int b_;
  IoWatch watch_a_;
  IoWatch watch_b_;
  Direction dirs_[2];
  bool finished_ = false;
};

}  // namespace

void StartTcpRelay(EventLoop* loop, int a, int b, std::function<void(const TcpRelayResult&)> done) {
  auto* relay = new TcpRelay(loop, a, b, std::move(done));
  relay->Start();
}

}  // namespace ambient::runtime
