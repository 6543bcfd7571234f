// Test support for the xDS tests: the fake istiod (tests/xds/fake_istiod.py)
// reports every request it gets as one JSON object per line on its stdout;
// JsonLineWatch reads them on the test's EventLoop.
#ifndef AMBIENT_TESTS_XDS_JSON_LINE_WATCH_H_
#define AMBIENT_TESTS_XDS_JSON_LINE_WATCH_H_

#include <sys/epoll.h>
#include <unistd.h>

#include <string>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "ambient/runtime/event_loop.h"

namespace ambient::xds::testing {

// JsonLineWatch appends each complete line read from an fd, parsed as JSON,
// to *out (any container with push_back); at EOF or a read error it stops
// watching. Loop thread only; destroy it before closing the fd.
template <typename Container>
class JsonLineWatch {
 public:
  JsonLineWatch(runtime::EventLoop* loop, Container* out)
      : out_(out), watch_(loop, [this](uint32_t) { OnReadable(); }) {}

  absl::Status Start(int fd) {
    fd_ = fd;
    return watch_.Start(fd, EPOLLIN);
  }

 private:
  void OnReadable() {
    char buf[65536];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n <= 0) {
      watch_.Stop();
      return;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buffer_.find('\n')) != std::string::npos) {
      out_->push_back(nlohmann::json::parse(buffer_.substr(0, nl)));
      buffer_.erase(0, nl + 1);
    }
  }

  Container* out_;
  int fd_ = -1;
  std::string buffer_;
  runtime::IoWatch watch_;  // last: stops before the rest goes
};

}  // namespace ambient::xds::testing

#endif  // AMBIENT_TESTS_XDS_JSON_LINE_WATCH_H_
