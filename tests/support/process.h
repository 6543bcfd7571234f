// Test support: running a program the way a user would and looking at what
// it did. A Child is a spawned program with pipes on its stdin, stdout and
// stderr; it owns the process, so a Child that goes out of scope (a finished
// test, a failed ASSERT, a fixture torn down) kills and reaps the process if
// it still runs and closes the pipes: no test leaves a program behind. Run is
// the one-shot form: feed stdin, collect stdout and stderr, get the exit code.
//
// Exit codes follow the shell: the program's status, 128 + signal when a
// signal ended it, -1 when it did not end in time (it is then killed) or
// never started. A program that cannot be started is a test failure.
#ifndef AMBIENT_TESTS_SUPPORT_PROCESS_H_
#define AMBIENT_TESTS_SUPPORT_PROCESS_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

extern char** environ;

namespace ambient::test_support {

// Drain reads `fd` until EOF, or until nothing arrives for `timeout_ms`.
inline std::string Drain(int fd, int timeout_ms = 10000) {
  std::string out;
  if (fd < 0) return out;
  char buf[4096];
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) break;
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// ReadLine reads one line from `fd` without its '\n' (what arrived so far on
// EOF, or when nothing arrives for `timeout_ms`).
inline std::string ReadLine(int fd, int timeout_ms = 10000) {
  std::string line;
  if (fd < 0) return line;
  char c;
  for (;;) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) break;
    if (read(fd, &c, 1) != 1 || c == '\n') break;
    line.push_back(c);
  }
  return line;
}

class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  Child(Child&& other) noexcept { *this = std::move(other); }
  Child& operator=(Child&& other) noexcept {
    if (this != &other) {
      Reset();
      pid_ = std::exchange(other.pid_, -1);
      running_ = std::exchange(other.running_, false);
      in_ = std::exchange(other.in_, -1);
      out_ = std::exchange(other.out_, -1);
      err_ = std::exchange(other.err_, -1);
    }
    return *this;
  }
  ~Child() { Reset(); }

  // Spawn starts args[0] (a path, not searched in PATH) with `args` as its
  // argv and this process's environment.
  static Child Spawn(const std::vector<std::string>& args) {
    Child c;
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (args.empty() || pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "cannot make pipes for a child process";
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) {
        if (fd >= 0) close(fd);
      }
      return c;
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
      ADD_FAILURE() << "cannot run " << args[0] << ": " << std::strerror(rc);
      close(in[1]);
      close(out[0]);
      close(err[0]);
      return c;
    }
    c.pid_ = pid;
    c.running_ = true;
    c.in_ = in[1];
    c.out_ = out[0];
    c.err_ = err[0];
    return c;
  }

  // started is true when the program was started (even if it has ended).
  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The parent's ends of the pipes (-1 once closed or when not started).
  int in() const { return in_; }
  int out() const { return out_; }
  int err() const { return err_; }

  // CloseIn closes the program's stdin (it reads EOF).
  void CloseIn() { CloseFd(in_); }

  // Signal sends `sig` if the program has not been reaped yet.
  void Signal(int sig) {
    if (running_) kill(pid_, sig);
  }

  // Exited reports, without waiting, whether the program has ended (and
  // reaps it then).
  bool Exited() {
    if (!running_) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    running_ = false;
    return true;
  }

  // Wait reaps the program and returns its exit code (see the top of this
  // file); after `timeout_ms` it kills the program and returns -1.
  int Wait(int timeout_ms = 15000) {
    if (!running_) return -1;
    for (int i = 0; i < timeout_ms / 10; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        running_ = false;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      usleep(10000);
    }
    Kill();
    return -1;
  }

  // Kill ends the program with SIGKILL and reaps it, if it still runs.
  void Kill() {
    if (!running_) return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    running_ = false;
  }

 private:
  static void CloseFd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  void Reset() {
    Kill();
    CloseFd(in_);
    CloseFd(out_);
    CloseFd(err_);
    pid_ = -1;
  }

  pid_t pid_ = -1;
  bool running_ = false;
  int in_ = -1;
  int out_ = -1;
  int err_ = -1;
};

struct RunResult {
  int code = -1;             // exit code, as Child::Wait gives it
  std::string out;           // everything the program wrote to stdout
  std::string err;           // ... and to stderr
  size_t input_written = 0;  // how much of the input the program's stdin took
};

// Run starts `args`, writes `input` to its stdin and closes it, collects
// stdout and stderr until both close, and waits for the exit code (killing
// the program after `timeout_ms`).
inline RunResult Run(const std::vector<std::string>& args, const std::string& input = "",
                     int timeout_ms = 15000) {
  RunResult r;
  Child c = Child::Spawn(args);
  if (!c.started()) return r;
  std::thread writer([&] {
    // A program that exits without reading its stdin must fail the test,
    // not kill it with SIGPIPE (which would skip every cleanup): this thread
    // blocks SIGPIPE, so such a write returns EPIPE. A blocked SIGPIPE aimed
    // at this thread is dropped when the thread ends.
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    while (r.input_written < input.size()) {
      ssize_t n = write(c.in(), input.data() + r.input_written, input.size() - r.input_written);
      if (n <= 0) break;
      r.input_written += static_cast<size_t>(n);
    }
    c.CloseIn();
  });
  std::thread err_reader([&] { r.err = Drain(c.err()); });
  r.out = Drain(c.out());
  writer.join();
  err_reader.join();
  r.code = c.Wait(timeout_ms);
  return r;
}

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_PROCESS_H_
