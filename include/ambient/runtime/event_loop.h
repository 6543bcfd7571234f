// ambient/runtime/event_loop.h: a single-threaded epoll event loop with timers.
//
// Object model. An EventLoop owns an epoll instance, a set of timers and a
// queue of deferred tasks. File descriptors are watched through IoWatch
// objects and timers are Timer objects; both are owned by the code that uses
// them and unregister themselves when destroyed. Each Run() iteration waits
// for I/O or the earliest timer, dispatches I/O callbacks, then expired
// timers, then the deferred tasks (which is where objects that closed during
// the iteration are destroyed, so no callback ever runs on freed memory).
//
// Time is CLOCK_MONOTONIC expressed as absl::Time (only differences mean
// anything). The loop never touches stdout/stderr.
//
// Memory. After a burst (at least kTrimAfterEvents I/O events) followed by
// a quiet one-second window (at most kQuietEvents I/O events: health checks
// and keepalive PINGs of a few connections do not count as traffic; Post()
// wake-ups never do), the loop gives the process's free heap pages back to
// the kernel (glibc's malloc_trim): otherwise the memory of 10,000 closed
// connections stays resident forever, because freed chunks between live ones
// are never returned. It costs about one wake-up per second after a burst,
// until the quiet window comes.
//
// Threads: everything runs on the thread calling Run(); only Stop() and
// Post() may be called from other threads (Stop() also from a signal
// handler).
#ifndef AMBIENT_RUNTIME_EVENT_LOOP_H_
#define AMBIENT_RUNTIME_EVENT_LOOP_H_

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace ambient::runtime {

class EventLoop;

// IoWatch calls `callback(events)` (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits)
// while `fd` is ready for the events of interest (level-triggered).
class IoWatch {
 public:
  using Callback = std::function<void(uint32_t events)>;
  IoWatch(EventLoop* loop, Callback callback) : loop_(loop), callback_(std::move(callback)) {}
  ~IoWatch() { Stop(); }
  IoWatch(const IoWatch&) = delete;
  IoWatch& operator=(const IoWatch&) = delete;

  // Start watches `fd` for `events` (EPOLLIN and/or EPOLLOUT). The fd stays
  // owned by the caller. Errors: FailedPrecondition for an fd epoll cannot
  // watch (EPERM: regular files, which are always ready); otherwise
  // ErrnoStatus of epoll_ctl's errno (ambient/base/errno_status.h).
  absl::Status Start(int fd, uint32_t events);
  // SetEvents changes the events of interest (no syscall if unchanged).
  absl::Status SetEvents(uint32_t events);
  // Stop forgets the fd (call before closing it).
  void Stop();
  uint32_t events() const { return events_; }
  int fd() const { return fd_; }

 private:
  friend class EventLoop;
  EventLoop* loop_;
  Callback callback_;
  int fd_ = -1;
  uint32_t events_ = 0;
};

// Timer calls `callback()` once when the loop's time reaches the armed
// deadline.
class Timer {
 public:
  Timer(EventLoop* loop, std::function<void()> callback)
      : loop_(loop), callback_(std::move(callback)) {}
  ~Timer() { Disarm(); }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Arm (re)sets the deadline; InfiniteFuture disarms.
  void Arm(absl::Time when);
  void Disarm();
  bool armed() const { return armed_; }
  absl::Time deadline() const { return when_; }

 private:
  friend class EventLoop;
  EventLoop* loop_;
  std::function<void()> callback_;
  absl::Time when_ = absl::InfiniteFuture();
  bool armed_ = false;
};

class EventLoop {
 public:
  // New makes a loop. Errors: Internal with errno text (epoll/eventfd).
  static absl::StatusOr<std::unique_ptr<EventLoop>> New();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Now is the loop's monotonic clock.
  absl::Time Now() const;

  // Run dispatches until Stop(). RunFor runs at most `d` (for tests).
  void Run();
  void RunFor(absl::Duration d);
  // RunUntil runs until `done()` is true or `timeout` passes; returns done().
  bool RunUntil(const std::function<bool()>& done, absl::Duration timeout);

  // Stop makes Run return after the current iteration. Any thread;
  // async-signal-safe.
  void Stop();
  // Post queues `task` to run on the loop thread. Any thread. A task still
  // queued when the loop is destroyed is dropped without running.
  void Post(std::function<void()> task) { Queue(std::move(task), false); }
  // PostMustRun is Post for tasks that must run exactly once, e.g. because
  // they release what their caller handed over: when the loop is destroyed
  // before it ran, ~EventLoop runs it on the destroying thread, last (after
  // the deferred tasks and AtDestroy releases), in the order the tasks were
  // posted. Such a task must not post to or run the loop. Any thread, but
  // not concurrently with ~EventLoop. Throws std::bad_alloc like Post.
  void PostMustRun(std::function<void()> task) { Queue(std::move(task), true); }
  // Defer runs `task` at the end of the current iteration (loop thread).
  void Defer(std::function<void()> task) { deferred_.push_back(std::move(task)); }
  // DeleteSoon takes ownership of `object` (made with new) and destroys it
  // at the end of the current iteration, in order with the deferred tasks;
  // if the loop never iterates again, ~EventLoop does. This is how objects
  // that own themselves while they wait on the loop (a dial, a relay, a
  // session) end, instead of `delete this` while one of their callbacks may
  // still be on the stack. Loop thread.
  template <typename T>
  void DeleteSoon(T* object) {
    Defer([owned = std::make_shared<std::unique_ptr<T>>(object)] { owned->reset(); });
  }

  // AtDestroy registers `release` for objects that own themselves while they
  // wait on the loop (a dial in flight): if the loop is destroyed before
  // the id is given to CancelAtDestroy, ~EventLoop runs `release` (after
  // the deferred tasks, while IoWatch/Timer may still unregister) so the
  // object can close its fds and free itself. Loop thread.
  uint64_t AtDestroy(std::function<void()> release);
  void CancelAtDestroy(uint64_t id) { at_destroy_.erase(id); }

  // Scratch lends a buffer shared by everything on this loop, for reads
  // that are consumed before returning to the loop (one copy per loop, not
  // per connection).
  absl::Span<uint8_t> Scratch() { return absl::MakeSpan(scratch_.get(), kScratchSize); }

  static constexpr size_t kScratchSize = 256 * 1024;

  // Idle trimming (see the file comment).
  static constexpr uint64_t kTrimAfterEvents = 256;
  static constexpr uint64_t kQuietEvents = 16;
  static constexpr absl::Duration kTrimWindow = absl::Seconds(1);
  // memory_trims counts the times this loop returned free memory.
  uint64_t memory_trims() const { return memory_trims_; }

 private:
  friend class IoWatch;
  friend class Timer;
  EventLoop(int epfd, int evfd);
  void Iterate(absl::Duration max_wait);
  void RunTimers();
  void RunDeferred();

  int epfd_;
  int evfd_;
  std::atomic<bool> stop_{false};
  std::set<std::pair<absl::Time, Timer*>> timers_;
  std::vector<std::function<void()>> deferred_;
  std::mutex post_mu_;
  struct Posted {
    std::function<void()> task;
    bool must_run;  // PostMustRun: ~EventLoop runs it when the loop did not
  };
  void Queue(std::function<void()> task, bool must_run);
  std::vector<Posted> posted_;
  std::unique_ptr<uint8_t[]> scratch_;
  uint64_t next_at_destroy_ = 1;
  std::map<uint64_t, std::function<void()>> at_destroy_;
  void AccountForTrim(const epoll_event* events, int n);
  // The epoll batch being dispatched (a chain when a callback runs the loop
  // again): IoWatch::Stop marks its own events still to come as dead, so a
  // watch stopped, restarted or destroyed by an earlier callback of the
  // batch is neither called for stale readiness nor touched after it is gone.
  struct Batch {
    epoll_event* events;
    int next;  // the index after the event being dispatched
    int n;
    Batch* outer;
  };
  Batch* batch_ = nullptr;
  void ForgetPendingEvents(const IoWatch* watch);
  uint64_t events_since_trim_ = 0;
  uint64_t trim_window_events_ = 0;
  absl::Time trim_window_start_ = absl::InfinitePast();
  uint64_t memory_trims_ = 0;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_EVENT_LOOP_H_
