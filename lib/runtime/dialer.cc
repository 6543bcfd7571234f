#include "runtime/dialer.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace ambient::runtime {

class Dialing {
 public:
  Dialing(EventLoop* loop, SocketAddress addr, std::function<void(absl::StatusOr<int>)> done)
      : loop_(loop),
        addr_(addr),
        done_(std::move(done)),
        watch_(loop, [this](uint32_t) { Finish(FinishConnect(fd_)); }),
        timer_(loop, [this] {
          Finish(absl::DeadlineExceededError(
              absl::StrCat("connect to ", addr_.ToString(), " timed out")));
        }) {
    // Until Finish, the dial owns itself; a loop destroyed before then
    // (e.g. its client was freed and the loop never ran again) releases it.
    at_destroy_ = loop_->AtDestroy([this] { Release(); });
  }

  void Start(absl::Duration timeout, const SocketMaker& make = nullptr) {
    absl::StatusOr<int> fd = make ? MadeConnect(make) : StartConnect(addr_);
    if (!fd.ok()) {
      absl::Status st = fd.status();
      loop_->Defer([this, st] { Finish(st); });
      return;
    }
    fd_ = *fd;
    absl::Status st = watch_.Start(fd_, EPOLLOUT);
    if (!st.ok()) {
      loop_->Defer([this, st] { Finish(st); });
      return;
    }
    timer_.Arm(loop_->Now() + timeout);
  }

 private:
  absl::StatusOr<int> MadeConnect(const SocketMaker& make) {
    absl::StatusOr<int> fd = make(addr_);
    if (!fd.ok()) return fd;
    if (absl::Status st = StartConnectOn(*fd, addr_); !st.ok()) {
      close(*fd);
      return st;
    }
    return fd;
  }

 public:
  // Cancel ends the dial now without calling `done` (the owner is gone);
  // the object goes at the end of the iteration, after any Finish already
  // deferred (which then does nothing).
  void Cancel() {
    if (finished_) return;
    finished_ = true;
    loop_->CancelAtDestroy(at_destroy_);
    watch_.Stop();
    timer_.Disarm();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    done_ = nullptr;
    loop_->DeleteSoon(this);
  }

 private:
  // Release frees a dial that never finished, without calling `done`.
  void Release() {
    finished_ = true;
    watch_.Stop();
    timer_.Disarm();
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    loop_->DeleteSoon(this);  // ~EventLoop runs its deferred work once more
  }

  void Finish(absl::Status st) {
    if (finished_) return;
    finished_ = true;
    loop_->CancelAtDestroy(at_destroy_);
    watch_.Stop();
    timer_.Disarm();
    auto done = std::move(done_);
    if (!st.ok()) {
      if (fd_ >= 0) close(fd_);
      done(absl::Status(st.code(), absl::StrCat(st.message(), " (", addr_.ToString(), ")")));
    } else {
      done(fd_);
    }
    loop_->DeleteSoon(this);
  }

  EventLoop* loop_;
  SocketAddress addr_;
  std::function<void(absl::StatusOr<int>)> done_;
  IoWatch watch_;
  Timer timer_;
  int fd_ = -1;
  bool finished_ = false;
  uint64_t at_destroy_ = 0;
};

Dialing* Dial(EventLoop* loop, const SocketAddress& addr, absl::Duration timeout,
              std::function<void(absl::StatusOr<int>)> done) {
  auto* d = new Dialing(loop, addr, std::move(done));
  d->Start(timeout);
  return d;
}

Dialing* DialWith(EventLoop* loop, const SocketAddress& addr, absl::Duration timeout,
                  SocketMaker make, std::function<void(absl::StatusOr<int>)> done) {
  auto* d = new Dialing(loop, addr, std::move(done));
  d->Start(timeout, make);
  return d;
}

void CancelDial(Dialing* dial) {
  if (dial != nullptr) dial->Cancel();
}

}  // namespace ambient::runtime
