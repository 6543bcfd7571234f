#include "ambient/netns/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient::netns {
namespace {

constexpr char kThreadNetns[] = "/proc/thread-self/ns/net";
constexpr uint64_t kNsfsMagic = 0x6e736673;  // NSFS_MAGIC, linux/magic.h

absl::StatusOr<NetnsId> IdOf(int fd, absl::string_view what) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, absl::StrCat("fstat ", what));
  return NetnsId{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
}

absl::StatusOr<UniqueFd> OpenReadOnly(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("netns path is empty");
  if (absl::StrContains(path, '\0')) {
    return absl::InvalidArgumentError("netns path contains a NUL byte");
  }
  std::string p(path);
  int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open netns ", p));
  return UniqueFd(fd);
}

// ThreadHome is the calling thread's current netns, opened so the thread can
// go back to it.
absl::StatusOr<UniqueFd> OpenThreadNetns() {
  int fd = open(kThreadNetns, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open the calling thread's netns");
  return UniqueFd(fd);
}

// Returner moves the thread back home when it goes out of scope (also while
// an exception unwinds) and remembers whether that worked.
class Returner {
 public:
  explicit Returner(int home_fd) : home_fd_(home_fd) {}
  Returner(const Returner&) = delete;
  Returner& operator=(const Returner&) = delete;
  ~Returner() { (void)Return(); }
  absl::Status Return() {
    if (done_) return status_;
    done_ = true;
    if (setns(home_fd_, CLONE_NEWNET) == 0) return status_;
    if (setns(home_fd_, CLONE_NEWNET) == 0) return status_;  // once more, then give up
    status_ = absl::InternalError(
        absl::StrCat("could not move the thread back to its own netns (thread is stranded): ",
                     std::strerror(errno)));
    return status_;
  }

 private:
  int home_fd_;
  bool done_ = false;
  absl::Status status_;
};

}  // namespace

std::string NetnsId::ToString() const { return absl::StrCat(dev, ":", ino); }

absl::StatusOr<Netns> Netns::Adopt(UniqueFd fd, absl::string_view what) {
  int type = ioctl(fd.get(), NS_GET_NSTYPE);
  if (type < 0) {
    if (errno != ENOTTY && errno != EINVAL) {
      return ErrnoStatus(errno, absl::StrCat("NS_GET_NSTYPE on ", what));
    }
    // Kernels before 4.11 lack NS_GET_NSTYPE: there an nsfs file is accepted
    // as it is (the kind of namespace cannot be told), as ztunnel does.
    struct statfs fs;
    if (fstatfs(fd.get(), &fs) != 0 || static_cast<uint64_t>(fs.f_type) != kNsfsMagic) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is not a namespace"));
    }
    type = CLONE_NEWNET;
  }
  if (type != CLONE_NEWNET) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is a namespace, but not a network namespace"));
  }
  absl::StatusOr<NetnsId> id = IdOf(fd.get(), what);
  if (!id.ok()) return id.status();
  return Netns(std::move(fd), *id);
}

absl::StatusOr<Netns> Netns::OpenByName(absl::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.size() > 255 ||
      absl::StrContains(name, '/') || absl::StrContains(name, '\0')) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid netns name \"", absl::CHexEscape(name),
        "\": want 1-255 bytes, no '/' or NUL, not \".\" or \"..\""));
  }
  return OpenPath(absl::StrCat("/var/run/netns/", name));
}

absl::StatusOr<Netns> Netns::OpenPath(absl::string_view path) {
  absl::StatusOr<UniqueFd> fd = OpenReadOnly(path);
  if (!fd.ok()) return fd.status();
  return Adopt(std::move(*fd), path);
}

absl::StatusOr<Netns> Netns::Open(absl::string_view name_or_path) {
  if (absl::StrContains(name_or_path, '/')) return OpenPath(name_or_path);
  return OpenByName(name_or_path);
}

absl::StatusOr<Netns> Netns::OpenPid(pid_t pid) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("invalid pid ", pid));
  return OpenPath(absl::StrCat("/proc/", pid, "/ns/net"));
}

absl::StatusOr<Netns> Netns::Current() { return OpenPath(kThreadNetns); }

absl::StatusOr<Netns> Netns::FromFd(int fd) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("invalid netns fd ", fd));
  return Adopt(UniqueFd(fd), absl::StrCat("fd ", fd));
}

absl::StatusOr<Netns> Netns::DupFd(int fd) {
  if (fd < 0) return absl::InvalidArgumentError(absl::StrCat("invalid netns fd ", fd));
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus(errno, absl::StrCat("dup netns fd ", fd));
  return Adopt(UniqueFd(copy), absl::StrCat("fd ", fd));
}

absl::StatusOr<Netns> Netns::CreateUnnamed() {
  absl::StatusOr<UniqueFd> home = OpenThreadNetns();
  if (!home.ok()) return home.status();
  if (unshare(CLONE_NEWNET) != 0) return ErrnoStatus(errno, "unshare(CLONE_NEWNET)");
  Returner back(home->get());
  absl::StatusOr<Netns> made = Current();
  absl::Status returned = back.Return();
  if (!returned.ok()) return returned;
  return made;
}

absl::StatusOr<Netns> Netns::Dup() const {
  if (!valid()) return absl::FailedPreconditionError("Dup on an empty netns handle");
  int copy = fcntl(fd(), F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return ErrnoStatus(errno, "dup netns fd");
  return Netns(UniqueFd(copy), id_);
}

absl::Status RunIn(const Netns& ns, absl::FunctionRef<absl::Status()> fn) {
  if (!ns.valid()) return absl::FailedPreconditionError("RunIn on an empty netns handle");
  absl::StatusOr<UniqueFd> home = OpenThreadNetns();
  if (!home.ok()) return home.status();
  absl::StatusOr<NetnsId> home_id = IdOf(home->get(), kThreadNetns);
  if (!home_id.ok()) return home_id.status();
  if (*home_id == ns.id()) return fn();
  if (setns(ns.fd(), CLONE_NEWNET) != 0) {
    const int err = errno;
    return ErrnoStatus(err, absl::StrCat("setns into netns ", ns.id().ToString(),
                                         err == EPERM ? " (entering a network namespace needs "
                                                        "root: CAP_SYS_ADMIN, and CAP_NET_ADMIN "
                                                        "to change its rules)"
                                                      : ""));
  }
  Returner back(home->get());
  absl::Status result = fn();
  absl::Status returned = back.Return();
  if (!returned.ok()) return returned;
  return result;
}

absl::StatusOr<UniqueFd> SocketIn(const Netns& ns, int domain, int type, int protocol) {
  UniqueFd sock;
  absl::Status status = RunIn(ns, [&]() -> absl::Status {
    int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) return ErrnoStatus(errno, "socket");
    sock.reset(fd);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return sock;
}

absl::StatusOr<UniqueFd> NetnsSocketFactory::Socket(int domain, int type, int protocol) {
  return SocketIn(ns_, domain, type, protocol);
}

absl::Status NetnsSocketFactory::Run(absl::FunctionRef<absl::Status()> fn) {
  return RunIn(ns_, fn);
}

absl::StatusOr<UniqueFd> LocalSocketFactory::Socket(int domain, int type, int protocol) {
  int fd = socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return ErrnoStatus(errno, "socket");
  return UniqueFd(fd);
}

absl::Status BringUpLoopback(const Netns& ns) {
  return RunIn(ns, []() -> absl::Status {
    UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!sock) return ErrnoStatus(errno, "socket for SIOCSIFFLAGS");
    struct ifreq ifr;
    std::memset(&ifr, 0, sizeof(ifr));
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    if (ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) return ErrnoStatus(errno, "SIOCGIFFLAGS lo");
    if ((ifr.ifr_flags & IFF_UP) != 0) return absl::OkStatus();
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) return ErrnoStatus(errno, "SIOCSIFFLAGS lo up");
    return absl::OkStatus();
  });
}

}  // namespace ambient::netns
