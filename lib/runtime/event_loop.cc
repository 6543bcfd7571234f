#include "ambient/runtime/event_loop.h"

#include <malloc.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient::runtime {

absl::Status IoWatch::Start(int fd, uint32_t events) {
  Stop();
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = this;
  if (epoll_ctl(loop_->epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int err = errno;
    absl::Status st = ErrnoStatus(err, "epoll_ctl(ADD)");
    // EPERM: epoll cannot watch this kind of fd (a regular file, always
    // ready). A precondition on the fd, not a permission: callers (the relay)
    // treat it as "read and write it without waiting".
    if (err == EPERM) return absl::FailedPreconditionError(st.message());
    return st;
  }
  fd_ = fd;
  events_ = events;
  return absl::OkStatus();
}

absl::Status IoWatch::SetEvents(uint32_t events) {
  if (fd_ < 0) return absl::FailedPreconditionError("not watching");
  if (events == events_) return absl::OkStatus();
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = this;
  if (epoll_ctl(loop_->epfd_, EPOLL_CTL_MOD, fd_, &ev) != 0) {
    return ErrnoStatus(errno, "epoll_ctl(MOD)");
  }
  events_ = events;
  return absl::OkStatus();
}

void IoWatch::Stop() {
  if (fd_ < 0) return;
  epoll_ctl(loop_->epfd_, EPOLL_CTL_DEL, fd_, nullptr);
  loop_->ForgetPendingEvents(this);
  fd_ = -1;
  events_ = 0;
}

void Timer::Arm(absl::Time when) {
  if (armed_ && when == when_) return;  // unchanged (Session re-arms after every event)
  Disarm();
  if (when == absl::InfiniteFuture()) return;
  when_ = when;
  armed_ = true;
  loop_->timers_.insert({when_, this});
}

void Timer::Disarm() {
  if (!armed_) return;
  loop_->timers_.erase({when_, this});
  armed_ = false;
  when_ = absl::InfiniteFuture();
}

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::New() {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return ErrnoStatus(errno, "epoll_create1");
  int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (evfd < 0) {
    int err = errno;
    close(epfd);
    return ErrnoStatus(err, "eventfd");
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // the wake-up fd
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev) != 0) {
    int err = errno;
    close(epfd);
    close(evfd);
    return ErrnoStatus(err, "epoll_ctl");
  }
  return std::unique_ptr<EventLoop>(new EventLoop(epfd, evfd));
}

EventLoop::EventLoop(int epfd, int evfd)
    : epfd_(epfd), evfd_(evfd), scratch_(new uint8_t[kScratchSize]) {}

EventLoop::~EventLoop() {
  RunDeferred();
  while (!at_destroy_.empty()) {
    std::function<void()> release = std::move(at_destroy_.begin()->second);
    at_destroy_.erase(at_destroy_.begin());
    release();
  }
  RunDeferred();
  // Tasks posted but never run: the must-run ones run now, in order; the
  // others are dropped (their captures released) with the vector.
  std::vector<Posted> left;
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    left.swap(posted_);
  }
  for (Posted& t : left) {
    if (t.must_run) t.task();
  }
  close(evfd_);
  close(epfd_);
}

absl::Time EventLoop::Now() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

void EventLoop::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  uint64_t one = 1;
  ssize_t r = write(evfd_, &one, sizeof(one));
  (void)r;
}

void EventLoop::Queue(std::function<void()> task, bool must_run) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(Posted{std::move(task), must_run});
  }
  uint64_t one = 1;
  ssize_t r = write(evfd_, &one, sizeof(one));
  (void)r;
}

uint64_t EventLoop::AtDestroy(std::function<void()> release) {
  uint64_t id = next_at_destroy_++;
  at_destroy_.emplace(id, std::move(release));
  return id;
}

void EventLoop::Run() {
  stop_.store(false, std::memory_order_relaxed);
  while (!stop_.load(std::memory_order_relaxed)) Iterate(absl::InfiniteDuration());
}

void EventLoop::RunFor(absl::Duration d) {
  absl::Time end = Now() + d;
  stop_.store(false, std::memory_order_relaxed);
  while (!stop_.load(std::memory_order_relaxed)) {
    absl::Time now = Now();
    if (now >= end) break;
    Iterate(end - now);
  }
}

bool EventLoop::RunUntil(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time end = Now() + timeout;
  stop_.store(false, std::memory_order_relaxed);
  while (!done()) {
    absl::Time now = Now();
    if (now >= end || stop_.load(std::memory_order_relaxed)) break;
    Iterate(std::min(end - now, absl::Milliseconds(50)));
  }
  return done();
}

void EventLoop::Iterate(absl::Duration max_wait) {
  absl::Duration wait = max_wait;
  if (!timers_.empty()) wait = std::min(wait, timers_.begin()->first - Now());
  if (!deferred_.empty()) wait = absl::ZeroDuration();
  // After a burst, wake at the end of the current one-second window so a
  // quiet window can be noticed even when nothing else happens.
  bool trim_due = events_since_trim_ >= kTrimAfterEvents;
  if (trim_due) wait = std::min(wait, trim_window_start_ + kTrimWindow - Now());
  int timeout_ms;
  if (wait == absl::InfiniteDuration()) {
    timeout_ms = -1;
  } else if (wait <= absl::ZeroDuration()) {
    timeout_ms = 0;
  } else {
    // Round up so a timer is never polled early in a busy loop.
    timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(wait + absl::Microseconds(999)));
  }
  epoll_event events[64];
  int n = epoll_wait(epfd_, events, 64, timeout_ms);
  AccountForTrim(events, n);
  Batch batch{events, 0, n, batch_};
  batch_ = &batch;
  struct Restore {
    EventLoop* loop;
    Batch* outer;
    ~Restore() { loop->batch_ = outer; }
  } restore{this, batch.outer};
  for (int i = 0; i < n; ++i) {
    batch.next = i + 1;
    void* ptr = events[i].data.ptr;
    if (ptr == &batch_) continue;  // its watch stopped earlier in this batch
    auto* watch = static_cast<IoWatch*>(ptr);
    if (watch == nullptr) {
      uint64_t v;
      while (read(evfd_, &v, sizeof(v)) > 0) {
      }
      std::vector<Posted> tasks;
      {
        std::lock_guard<std::mutex> lock(post_mu_);
        tasks.swap(posted_);
      }
      for (Posted& t : tasks) t.task();
      continue;
    }
    watch->callback_(events[i].events);
  }
  RunTimers();
  RunDeferred();
}

void EventLoop::ForgetPendingEvents(const IoWatch* watch) {
  for (Batch* b = batch_; b != nullptr; b = b->outer) {
    for (int i = b->next; i < b->n; ++i) {
      if (b->events[i].data.ptr == watch) b->events[i].data.ptr = &batch_;  // dead
    }
  }
}

void EventLoop::AccountForTrim(const epoll_event* events, int n) {
  uint64_t io = 0;  // I/O readiness; wake-ups by Post() are not traffic
  for (int i = 0; i < n; ++i) io += events[i].data.ptr != nullptr;
  events_since_trim_ += io;
  trim_window_events_ += io;
  if (events_since_trim_ < kTrimAfterEvents && trim_window_events_ < kTrimAfterEvents) return;
  absl::Time now = Now();
  if (trim_window_start_ == absl::InfinitePast()) trim_window_start_ = now;
  if (now - trim_window_start_ < kTrimWindow) return;
  if (events_since_trim_ >= kTrimAfterEvents && trim_window_events_ <= kQuietEvents) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
    events_since_trim_ = 0;
    ++memory_trims_;
  }
  trim_window_start_ = now;
  trim_window_events_ = 0;
}

void EventLoop::RunTimers() {
  absl::Time now = Now();
  while (!timers_.empty() && timers_.begin()->first <= now) {
    Timer* t = timers_.begin()->second;
    timers_.erase(timers_.begin());
    t->armed_ = false;
    t->when_ = absl::InfiniteFuture();
    t->callback_();
  }
}

void EventLoop::RunDeferred() {
  while (!deferred_.empty()) {
    std::vector<std::function<void()>> tasks;
    tasks.swap(deferred_);
    for (auto& t : tasks) t();
  }
}

}  // namespace ambient::runtime
