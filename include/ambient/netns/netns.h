// ambient/netns/netns.h: network namespace handles, running code inside a
// namespace, and making sockets that live in one.
//
// Object model. A Netns owns one open file descriptor that refers to a Linux
// network namespace (an nsfs file such as /var/run/netns/NAME or
// /proc/PID/ns/net). Holding it keeps the namespace alive even after its name
// is removed or its processes exit. Every way of making a Netns checks, with
// the NS_GET_NSTYPE ioctl, that the descriptor really is a *network*
// namespace; a Netns is therefore never "almost valid". Two handles are equal
// when they refer to the same namespace, which is decided by the identity of
// the nsfs inode: NetnsId = (st_dev, st_ino) of the descriptor.
//
// Entering. A thread's network namespace is per thread. RunIn moves the
// *calling* thread into a namespace with setns(2), runs a function and moves it
// back, as ztunnel does for every socket it opens in a pod. Sockets keep the
// namespace they were created in for their whole life, so a proxy's event loop
// never needs to live in a foreign namespace: it creates its sockets through a
// SocketFactory and keeps running where it was. The process needs
// CAP_SYS_ADMIN for setns(2).
//
// Threads. Netns handles are values: distinct handles may be used from any
// threads at once; one handle is not modified by RunIn/SocketIn, so those may
// run concurrently on the same handle from several threads (each thread moves
// only itself).
#ifndef AMBIENT_NETNS_NETNS_H_
#define AMBIENT_NETNS_NETNS_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/netns/fd.h"

namespace ambient::netns {

// NetnsId identifies a network namespace: the device and inode numbers of
// its nsfs file. Two descriptors refer to the same namespace exactly when
// their NetnsIds are equal.
struct NetnsId {
  uint64_t dev = 0;
  uint64_t ino = 0;

  // ToString renders "dev:ino" in decimal, e.g. "4:4026532281".
  std::string ToString() const;

  friend bool operator==(const NetnsId& a, const NetnsId& b) {
    return a.dev == b.dev && a.ino == b.ino;
  }
  friend bool operator!=(const NetnsId& a, const NetnsId& b) { return !(a == b); }
  friend bool operator<(const NetnsId& a, const NetnsId& b) {
    return a.dev != b.dev ? a.dev < b.dev : a.ino < b.ino;
  }
  template <typename H>
  friend H AbslHashValue(H h, const NetnsId& id) {
    return H::combine(std::move(h), id.dev, id.ino);
  }
};

// Netns is an open handle on a network namespace (see the header comment).
// Move-only; the destructor closes the descriptor. A default-constructed
// Netns is empty (valid() == false) and may only be assigned or destroyed.
class Netns {
 public:
  Netns() = default;
  Netns(Netns&&) noexcept = default;
  Netns& operator=(Netns&&) noexcept = default;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  // OpenByName opens /var/run/netns/NAME (the names `ip netns add` makes).
  // Errors: InvalidArgument when `name` is empty, ".", "..", longer than 255
  // bytes or contains '/' or NUL; NotFound when no such namespace exists;
  // PermissionDenied; InvalidArgument when the file is not a network
  // namespace.
  static absl::StatusOr<Netns> OpenByName(absl::string_view name);

  // OpenPath opens any nsfs path, e.g. /proc/1234/ns/net or a bind mount.
  // Errors: InvalidArgument for an empty path or one with a NUL byte, or a
  // file that is not a network namespace (a regular file, /proc/self/ns/uts);
  // NotFound; PermissionDenied.
  static absl::StatusOr<Netns> OpenPath(absl::string_view path);

  // Open treats `name_or_path` as a path when it contains '/', else as a
  // name under /var/run/netns. Errors as OpenByName / OpenPath.
  static absl::StatusOr<Netns> Open(absl::string_view name_or_path);

  // OpenPid opens /proc/PID/ns/net. Errors: InvalidArgument for pid <= 0;
  // NotFound when the process does not exist; PermissionDenied.
  static absl::StatusOr<Netns> OpenPid(pid_t pid);

  // Current opens the network namespace of the calling thread.
  static absl::StatusOr<Netns> Current();

  // FromFd takes ownership of `fd` and checks it is a network namespace. On
  // failure `fd` is closed before returning (so a caller never leaks it).
  // Errors: InvalidArgument for a negative fd or one that is not a network
  // namespace (a socket, a file, another kind of namespace).
  static absl::StatusOr<Netns> FromFd(int fd);

  // DupFd is FromFd on a close-on-exec duplicate of `fd`; `fd` itself stays
  // the caller's. Errors: as FromFd; ResourceExhausted when out of fds.
  static absl::StatusOr<Netns> DupFd(int fd);

  // CreateUnnamed makes a brand new, empty network namespace (only a loopback
  // device, which is down) without a name: it lives as long as some handle,
  // socket or process refers to it, and the kernel removes it afterwards, so
  // nothing needs cleaning up. Used by tests and benchmarks for throwaway
  // pods. The calling thread is back in its own namespace on return.
  // Errors: PermissionDenied without CAP_SYS_ADMIN.
  static absl::StatusOr<Netns> CreateUnnamed();

  // Dup returns a second handle on the same namespace (a new descriptor).
  // Errors: FailedPrecondition on an empty handle; ResourceExhausted.
  absl::StatusOr<Netns> Dup() const;

  bool valid() const { return fd_.valid(); }
  // fd returns the descriptor (still owned by this handle), or -1 when empty.
  int fd() const { return fd_.get(); }
  // id returns the namespace identity captured when the handle was made.
  const NetnsId& id() const { return id_; }
  // Release gives up ownership of the descriptor and returns it; the handle
  // becomes empty.
  int Release() { id_ = NetnsId{}; return fd_.release(); }

  // Handles are equal when both are empty or both refer to one namespace.
  friend bool operator==(const Netns& a, const Netns& b) {
    if (!a.valid() || !b.valid()) return a.valid() == b.valid();
    return a.id_ == b.id_;
  }
  friend bool operator!=(const Netns& a, const Netns& b) { return !(a == b); }

 private:
  Netns(UniqueFd fd, NetnsId id) : fd_(std::move(fd)), id_(id) {}
  static absl::StatusOr<Netns> Adopt(UniqueFd fd, absl::string_view what);

  UniqueFd fd_;
  NetnsId id_;
};

// RunIn runs `fn` on the calling thread while the thread is inside `ns`, then
// returns the thread to the namespace it was in, also when `fn` throws.
// Returns fn's status, or an error if entering failed (then `fn` did not
// run): FailedPrecondition for an empty handle, PermissionDenied without
// CAP_SYS_ADMIN. If the thread is already in `ns`, `fn` simply runs. Should
// the kernel refuse to move the thread back (it never does in practice), the
// result is an Internal error whose message says the thread is stranded.
absl::Status RunIn(const Netns& ns, absl::FunctionRef<absl::Status()> fn);

// SocketIn creates socket(domain, type | SOCK_CLOEXEC, protocol) inside `ns`
// from the calling thread (enter, create, return). The socket stays in `ns`
// for its whole life. Errors: as RunIn, plus socket(2)'s errno as
// ErrnoStatus maps it (ambient/base/errno_status.h: InvalidArgument for an
// unknown family or a bad type, ResourceExhausted at the fd or memory limit).
absl::StatusOr<UniqueFd> SocketIn(const Netns& ns, int domain, int type, int protocol);

// SocketFactory makes sockets in some network namespace; proxies take one so
// tests (and hosts) can swap it. Run lets a caller batch several socket
// calls (socket, setsockopt, bind, listen) in one entry.
class SocketFactory {
 public:
  virtual ~SocketFactory() = default;
  // Socket creates a close-on-exec socket in the factory's namespace.
  virtual absl::StatusOr<UniqueFd> Socket(int domain, int type, int protocol) = 0;
  // Run runs `fn` on the calling thread inside the factory's namespace.
  virtual absl::Status Run(absl::FunctionRef<absl::Status()> fn) = 0;
};

// NetnsSocketFactory makes sockets inside the namespace it holds, from the
// calling thread. Thread-safe (every call moves only its own thread).
class NetnsSocketFactory final : public SocketFactory {
 public:
  explicit NetnsSocketFactory(Netns ns) : ns_(std::move(ns)) {}
  absl::StatusOr<UniqueFd> Socket(int domain, int type, int protocol) override;
  absl::Status Run(absl::FunctionRef<absl::Status()> fn) override;
  const Netns& netns() const { return ns_; }

 private:
  Netns ns_;
};

// LocalSocketFactory makes sockets in the calling thread's own namespace.
class LocalSocketFactory final : public SocketFactory {
 public:
  absl::StatusOr<UniqueFd> Socket(int domain, int type, int protocol) override;
  absl::Status Run(absl::FunctionRef<absl::Status()> fn) override { return fn(); }
};

// BringUpLoopback sets the loopback device of `ns` up (a fresh namespace
// starts with it down), which makes 127.0.0.1 and ::1 usable inside.
absl::Status BringUpLoopback(const Netns& ns);

}  // namespace ambient::netns

#endif  // AMBIENT_NETNS_NETNS_H_
