#include "runtime/acceptor.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

bool ConnectionBudget::Take() {
  if (max_ != 0 && used_ >= max_) return false;
  ++used_;
  return true;
}

void ConnectionBudget::Give(size_t n) {
  bool was_full = max_ != 0 && used_ >= max_;
  used_ -= std::min(n, used_);
  if (was_full) {
    // Copy: an acceptor's Update may hand out a connection whose owner
    // destroys another acceptor.
    std::vector<Acceptor*> all = acceptors_;
    for (Acceptor* a : all) {
      if (std::find(acceptors_.begin(), acceptors_.end(), a) != acceptors_.end()) a->Update();
    }
  }
}

Acceptor::Acceptor(EventLoop* loop, int listen_fd, AcceptorOptions options,
                   OnConnection on_connection)
    : loop_(loop),
      fd_(listen_fd),
      opts_(std::move(options)),
      on_connection_(std::move(on_connection)),
      watch_(loop, [this](uint32_t) { OnReadable(); }),
      backoff_(loop, [this] {
        resting_ = false;
        Update();
      }) {
  if (opts_.budget) opts_.budget->acceptors_.push_back(this);
}

Acceptor::~Acceptor() {
  Stop();
  if (opts_.budget) {
    auto& v = opts_.budget->acceptors_;
    v.erase(std::remove(v.begin(), v.end(), this), v.end());
    opts_.budget->Give(live_);
  }
}

absl::Status Acceptor::Start() {
  if (fd_ < 0) return absl::FailedPreconditionError("acceptor is stopped");
  absl::Status st = watch_.Start(fd_, EPOLLIN);
  if (!st.ok()) return st;
  started_ = true;
  watching_ = true;
  Update();
  return absl::OkStatus();
}

void Acceptor::Stop() {
  watch_.Stop();
  backoff_.Disarm();
  watching_ = false;
  started_ = false;
  if (fd_ >= 0 && opts_.owns_fd) close(fd_);
  fd_ = -1;
}

void Acceptor::Release() {
  if (live_ > 0) --live_;
  if (opts_.budget) opts_.budget->Give(1);  // resumes every acceptor it held
  Update();
}

void Acceptor::SetHeld(bool held) {
  if (held_ == held) return;
  held_ = held;
  Update();
}

void Acceptor::SetMaxConnections(size_t max) {
  opts_.max_connections = max;
  Update();
}

bool Acceptor::AtCap() const {
  if (opts_.max_connections != 0 && live_ >= opts_.max_connections) return true;
  if (opts_.budget && opts_.budget->max() != 0 && opts_.budget->used() >= opts_.budget->max()) {
    return true;
  }
  return false;
}

void Acceptor::Update() {
  if (!started_ || fd_ < 0) return;
  bool want = !held_ && !resting_ && !AtCap();
  if (want == watching_) return;
  if (watch_.SetEvents(want ? uint32_t{EPOLLIN} : 0u).ok()) watching_ = want;
}

void Acceptor::ResourceError(int err) {
  ++stats_.resource_errors;
  ++stats_.backoffs;
  ++unlogged_errors_;
  resting_ = true;
  Update();
  backoff_.Arm(loop_->Now() + opts_.backoff);
  absl::Time now = loop_->Now();
  if (opts_.log && now - last_log_ >= opts_.log_interval) {
    opts_.log(LogLevel::kWarn, opts_.component,
              absl::StrCat("accept on ", opts_.name, ": ", std::strerror(err), " (",
                           unlogged_errors_, " failed accepts since the last report); pausing ",
                           absl::FormatDuration(opts_.backoff)));
    unlogged_errors_ = 0;
    last_log_ = now;
  }
}

std::unique_ptr<Acceptor> Acceptor::Pulling(EventLoop* loop, int listen_fd, AcceptorOptions options,
                                            std::function<void()> on_readable) {
  auto a = std::make_unique<Acceptor>(loop, listen_fd, std::move(options), nullptr);
  a->on_readable_ = std::move(on_readable);
  return a;
}

absl::StatusOr<int> Acceptor::Next() {
  for (;;) {
    if (!watching_ || fd_ < 0) return absl::UnavailableError("not accepting now");
    if (AtCap()) {
      ++stats_.cap_pauses;
      Update();
      return absl::UnavailableError("at the connection cap");
    }
    int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK) return absl::UnavailableError("no connection");
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        ResourceError(err);
        return absl::UnavailableError(std::strerror(err));
      }
      // ECONNABORTED, EPERM (a firewall), EINTR, ...: that one connection is
      // gone, the next may be fine.
      if (err != ECONNABORTED && err != EINTR && opts_.log) {
        opts_.log(LogLevel::kDebug, opts_.component,
                  absl::StrCat("accept on ", opts_.name, ": ", std::strerror(err)));
      }
      continue;
    }
    if (opts_.budget && !opts_.budget->Take()) {
      AbortClose(fd);
      Update();
      return absl::UnavailableError("at the connection cap");
    }
    TuneTcp(fd);
    ++live_;
    ++stats_.accepted;
    return fd;
  }
}

void Acceptor::OnReadable() {
  if (on_readable_) {
    on_readable_();
    return;
  }
  // A bounded batch per wake-up, so one busy listener cannot starve the loop.
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<int> fd = Next();
    if (!fd.ok()) return;
    on_connection_(*fd);  // may Release, Stop or SetHeld
  }
}

}  // namespace ambient::runtime
