// ambient/netns/fd.h: an owned file descriptor.
//
// UniqueFd owns one descriptor and closes it when it goes away, like
// std::unique_ptr owns memory. Everything in the netns layer that hands out a
// descriptor hands out a UniqueFd, so a failure path can never leak one.
#ifndef AMBIENT_NETNS_FD_H_
#define AMBIENT_NETNS_FD_H_

#include <unistd.h>

#include <utility>

namespace ambient::netns {

class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd` (a negative value means "none").
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // get returns the descriptor (still owned), or -1.
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // release gives up ownership and returns the descriptor (or -1).
  int release() { return std::exchange(fd_, -1); }

  // reset closes the owned descriptor, if any, and takes `fd` instead.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace ambient::netns

#endif  // AMBIENT_NETNS_FD_H_
