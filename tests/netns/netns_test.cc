#include "ambient/netns/netns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "netns/test_util.h"
#include "support/privileged.h"

namespace ambient::netns {
namespace {

using testing::FdLeakCheck;
using testing::NamedNetns;
using testing::NetnsOfSocket;

NetnsId CurrentId() {
  absl::StatusOr<Netns> ns = Netns::Current();
  return ns.ok() ? ns->id() : NetnsId{};
}

TEST(Netns, OpenByNameAndPathAgreeAndDifferFromHost) {
  AMBIENT_REQUIRE_ROOT();
  NamedNetns named;
  ASSERT_TRUE(named.ok()) << "ip netns add failed";
  absl::StatusOr<Netns> by_name = Netns::OpenByName(named.name());
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  absl::StatusOr<Netns> by_path = Netns::OpenPath(named.path());
  ASSERT_TRUE(by_path.ok()) << by_path.status();
  absl::StatusOr<Netns> by_either = Netns::Open(named.name());
  ASSERT_TRUE(by_either.ok()) << by_either.status();
  absl::StatusOr<Netns> host = Netns::Current();
  ASSERT_TRUE(host.ok()) << host.status();

  EXPECT_TRUE(*by_name == *by_path);
  EXPECT_TRUE(*by_name == *by_either);
  EXPECT_TRUE(*by_name != *host);
  EXPECT_NE(by_name->fd(), by_path->fd());
  EXPECT_NE(by_name->id().ino, 0u);
}

TEST(Netns, OpenPidIsTheProcessNetns) {
  AMBIENT_REQUIRE_ROOT();
  absl::StatusOr<Netns> mine = Netns::OpenPid(getpid());
  ASSERT_TRUE(mine.ok()) << mine.status();
  EXPECT_EQ(mine->id(), CurrentId());
  EXPECT_EQ(Netns::OpenPid(0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Netns::OpenPid(-5).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Netns, RejectsBadNamesAndPaths) {
  for (const char* bad : {"", ".", "..", "a/b", "../etc"}) {
    EXPECT_EQ(Netns::OpenByName(bad).status().code(), absl::StatusCode::kInvalidArgument)
        << "name '" << bad << "'";
  }
  EXPECT_EQ(Netns::OpenByName(std::string(256, 'x')).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Netns::OpenByName(std::string("a\0b", 3)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Netns::OpenPath("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Netns::OpenByName("ambient-no-such-netns-xyz").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Netns::OpenPath("/nonexistent/ns").status().code(), absl::StatusCode::kNotFound);
}

TEST(Netns, RejectsFilesThatAreNotNetworkNamespaces) {
  FdLeakCheck leak_check;
  absl::Status regular = Netns::OpenPath("/proc/self/status").status();
  EXPECT_EQ(regular.code(), absl::StatusCode::kInvalidArgument) << regular;
  EXPECT_NE(regular.message().find("not a namespace"), std::string::npos) << regular;
  absl::Status uts = Netns::OpenPath("/proc/self/ns/uts").status();
  EXPECT_EQ(uts.code(), absl::StatusCode::kInvalidArgument) << uts;
  EXPECT_NE(uts.message().find("not a network namespace"), std::string::npos) << uts;
}

TEST(Netns, FromFdClosesWhatItRejectsAndOwnsWhatItAccepts) {
  FdLeakCheck leak_check;
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
  EXPECT_EQ(Netns::FromFd(sock).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fcntl(sock, F_GETFD), -1) << "rejected fd was not closed";
  EXPECT_EQ(Netns::FromFd(-1).status().code(), absl::StatusCode::kInvalidArgument);

  int nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(nsfd, 0);
  {
    absl::StatusOr<Netns> ns = Netns::FromFd(nsfd);
    ASSERT_TRUE(ns.ok()) << ns.status();
    EXPECT_EQ(ns->fd(), nsfd);
    EXPECT_EQ(ns->id(), CurrentId());
    absl::StatusOr<Netns> copy = ns->Dup();
    ASSERT_TRUE(copy.ok());
    EXPECT_TRUE(*copy == *ns);
    EXPECT_NE(copy->fd(), ns->fd());
  }
  EXPECT_EQ(fcntl(nsfd, F_GETFD), -1) << "handle did not close its fd";
}

TEST(Netns, DupFdLeavesTheOriginalToTheCaller) {
  int nsfd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(nsfd, 0);
  {
    absl::StatusOr<Netns> ns = Netns::DupFd(nsfd);
    ASSERT_TRUE(ns.ok()) << ns.status();
    EXPECT_NE(ns->fd(), nsfd);
  }
  EXPECT_EQ(fcntl(nsfd, F_GETFD), FD_CLOEXEC);
  close(nsfd);
}

TEST(Netns, EmptyHandlesAndMoves) {
  Netns empty;
  EXPECT_FALSE(empty.valid());
  EXPECT_EQ(empty.fd(), -1);
  EXPECT_TRUE(empty == Netns());
  EXPECT_EQ(empty.Dup().status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(RunIn(empty, [] { return absl::OkStatus(); }).code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Netns> ns = Netns::Current();
  ASSERT_TRUE(ns.ok());
  Netns moved = std::move(*ns);
  EXPECT_TRUE(moved.valid());
  EXPECT_FALSE(ns->valid());  // NOLINT(bugprone-use-after-move): documented state
  int fd = moved.Release();
  EXPECT_FALSE(moved.valid());
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC);
  close(fd);
}

TEST(Netns, RunInMovesOnlyTheCallingThreadAndComesBack) {
  AMBIENT_REQUIRE_ROOT();
  absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
  ASSERT_TRUE(pod.ok()) << pod.status();
  const NetnsId home = CurrentId();
  ASSERT_NE(pod->id(), home);

  NetnsId inside, other_thread;
  absl::Status s = RunIn(*pod, [&] {
    inside = CurrentId();
    std::thread t([&] { other_thread = CurrentId(); });
    t.join();
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(inside, pod->id());
  EXPECT_EQ(CurrentId(), home);
  // A thread started inside inherits the netns; the process's other threads do not move.
  EXPECT_EQ(other_thread, pod->id());

  // The function's error comes back, and the thread still returns home.
  s = RunIn(*pod, [] { return absl::AbortedError("from fn"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(CurrentId(), home);

  // An exception unwinding out of fn also brings the thread home.
  EXPECT_THROW((void)RunIn(*pod, []() -> absl::Status { throw std::runtime_error("x"); }),
               std::runtime_error);
  EXPECT_EQ(CurrentId(), home);
}

TEST(Netns, SocketInStaysInThePodNetns) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
  ASSERT_TRUE(pod.ok()) << pod.status();
  ASSERT_TRUE(BringUpLoopback(*pod).ok());
  absl::StatusOr<UniqueFd> listener = SocketIn(*pod, AF_INET, SOCK_STREAM, 0);
  ASSERT_TRUE(listener.ok()) << listener.status();
  EXPECT_EQ(NetnsOfSocket(listener->get()), pod->id());
  EXPECT_EQ(fcntl(listener->get(), F_GETFD), FD_CLOEXEC);

  // Bound and listening from the host thread: still the pod's loopback.
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener->get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener->get(), 8), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener->get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);

  NetnsSocketFactory factory(std::move(*pod));
  absl::StatusOr<UniqueFd> inside = factory.Socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_TRUE(inside.ok());
  EXPECT_EQ(connect(inside->get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << "connect from inside the pod: " << strerror(errno);

  LocalSocketFactory local;
  absl::StatusOr<UniqueFd> outside = local.Socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_TRUE(outside.ok());
  EXPECT_EQ(NetnsOfSocket(outside->get()), CurrentId());
  EXPECT_NE(connect(outside->get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << "the pod's listener must not be reachable from the host netns";

  EXPECT_EQ(factory.Socket(12345, SOCK_STREAM, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Netns, CreateUnnamedGivesDistinctNamespacesWithoutLeaks) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  const NetnsId home = CurrentId();
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Netns> a = Netns::CreateUnnamed();
    absl::StatusOr<Netns> b = Netns::CreateUnnamed();
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_TRUE(*a != *b);
    EXPECT_EQ(CurrentId(), home);
    absl::StatusOr<UniqueFd> s = SocketIn(*a, AF_INET6, SOCK_DGRAM, 0);
    ASSERT_TRUE(s.ok());
  }
}

}  // namespace
}  // namespace ambient::netns
