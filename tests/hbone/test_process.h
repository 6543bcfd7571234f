// Test-only helpers for tests that run programs: spawn with pipes, read
// lines and output with timeouts, wait with a deadline, a loopback echo
// server.
#ifndef AMBIENT_TESTS_HBONE_TEST_PROCESS_H_
#define AMBIENT_TESTS_HBONE_TEST_PROCESS_H_

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace ambient::hbone::testing {

struct Proc {
  pid_t pid = -1;
  int in = -1;
  int out = -1;
  int err = -1;
};

inline Proc Spawn(const std::vector<std::string>& args) {
  int pin[2], pout[2], perr[2];
  EXPECT_EQ(pipe2(pin, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(pout, O_CLOEXEC), 0);
  EXPECT_EQ(pipe2(perr, O_CLOEXEC), 0);
  Proc p;
  p.pid = fork();
  if (p.pid == 0) {
    dup2(pin[0], 0);
    dup2(pout[1], 1);
    dup2(perr[1], 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pin[0]);
  close(pout[1]);
  close(perr[1]);
  p.in = pin[1];
  p.out = pout[0];
  p.err = perr[0];
  return p;
}

// Reads everything from `fd` until EOF or `timeout_ms`.
inline std::string Drain(int fd, int timeout_ms = 10000) {
  std::string out;
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

inline std::string ReadLine(int fd, int timeout_ms = 10000) {
  std::string line;
  char c;
  while (true) {
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) break;
    if (read(fd, &c, 1) != 1 || c == '\n') break;
    line.push_back(c);
  }
  return line;
}

inline int Wait(pid_t pid, int timeout_ms = 15000) {
  for (int i = 0; i < timeout_ms / 10; ++i) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

class EchoListener {
 public:
  EchoListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 16);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char buf[4096];
        for (;;) {
          ssize_t n = read(c, buf, sizeof(buf));
          if (n <= 0) break;
          if (write(c, buf, static_cast<size_t>(n)) != n) break;
        }
        close(c);
      }
    });
  }
  ~EchoListener() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  const std::string& address() const { return address_; }

 private:
  int fd_;
  std::string address_;
  std::thread thread_;
};

}  // namespace ambient::hbone::testing

#endif  // AMBIENT_TESTS_HBONE_TEST_PROCESS_H_
