#include "redirect/exec_in_netns.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/netns/fd.h"

namespace ambient::redirect::internal {
namespace {

using netns::UniqueFd;

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace

absl::StatusOr<std::string> FindProgram(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/", "/usr/local/sbin/"}) {
    std::string path = absl::StrCat(dir, name);
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return absl::NotFoundError(absl::StrCat(name, " is not installed"));
}

absl::StatusOr<ExecResult> ExecIn(const netns::Netns* ns, const std::vector<std::string>& argv,
                                  const std::string& input) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs is prepared before fork: after it, only
  // async-signal-safe calls.
  std::vector<char*> cargv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  static const char* const kEnv[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", nullptr};
  int in_pair[2], out_pipe[2], err_pipe[2];
  // stdin is a socket so a child that exits early gives EPIPE, not SIGPIPE.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) {
    return ErrnoStatus(errno, "socketpair");
  }
  UniqueFd in_parent(in_pair[0]), in_child(in_pair[1]);
  if (pipe2(out_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  UniqueFd out_parent(out_pipe[0]), out_child(out_pipe[1]);
  if (pipe2(err_pipe, O_CLOEXEC) != 0) return ErrnoStatus(errno, "pipe");
  UniqueFd err_parent(err_pipe[0]), err_child(err_pipe[1]);
  const int ns_fd = ns != nullptr && ns->valid() ? ns->fd() : -1;

  pid_t pid = fork();
  if (pid < 0) return ErrnoStatus(errno, "fork");
  if (pid == 0) {
    if (ns_fd >= 0 && setns(ns_fd, CLONE_NEWNET) != 0) _exit(126);
    if (dup2(in_child.get(), 0) < 0 || dup2(out_child.get(), 1) < 0 || dup2(err_child.get(), 2) < 0) {
      _exit(126);
    }
    execve(cargv[0], cargv.data(), const_cast<char* const*>(kEnv));
    _exit(127);
  }
  in_child.reset();
  out_child.reset();
  err_child.reset();
  fcntl(in_parent.get(), F_SETFL, O_NONBLOCK);

  ExecResult result;
  size_t written = 0;
  if (input.empty()) shutdown(in_parent.get(), SHUT_WR);
  const int64_t deadline = NowMs() + 60000;
  bool timed_out = false;
  while (out_parent.valid() || err_parent.valid()) {
    struct pollfd fds[3];
    int n = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (written < input.size() && in_parent.valid()) {
      fds[n] = {in_parent.get(), POLLOUT, 0};
      in_idx = n++;
    }
    if (out_parent.valid()) {
      fds[n] = {out_parent.get(), POLLIN, 0};
      out_idx = n++;
    }
    if (err_parent.valid()) {
      fds[n] = {err_parent.get(), POLLIN, 0};
      err_idx = n++;
    }
    int64_t left = deadline - NowMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int r = poll(fds, n, static_cast<int>(left));
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      ssize_t w = send(in_parent.get(), input.data() + written, input.size() - written, MSG_NOSIGNAL);
      if (w > 0) {
        written += static_cast<size_t>(w);
        if (written == input.size()) shutdown(in_parent.get(), SHUT_WR);
      } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
        in_parent.reset();  // the child stopped reading
      }
    }
    char buf[4096];
    auto drain = [&](int idx, UniqueFd& fd, std::string& into) {
      if (idx < 0 || fds[idx].revents == 0) return;
      ssize_t got = read(fd.get(), buf, sizeof(buf));
      if (got > 0) {
        if (into.size() < (1u << 24)) into.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        fd.reset();
      }
    };
    drain(out_idx, out_parent, result.out);
    drain(err_idx, err_parent, result.err);
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoStatus(errno, "waitpid");
  }
  if (timed_out) return absl::DeadlineExceededError(absl::StrCat(argv[0], " did not finish in 60 s"));
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  if (result.exit_code == 126 && result.err.empty()) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot enter the network namespace to run ", argv[0],
                     geteuid() == 0 ? ""
                                    : " (entering a network namespace needs root: CAP_SYS_ADMIN, "
                                      "and CAP_NET_ADMIN to change its rules)"));
  }
  if (result.exit_code == 127 && result.err.empty()) {
    return absl::NotFoundError(absl::StrCat("cannot execute ", argv[0]));
  }
  return result;
}

}  // namespace ambient::redirect::internal
