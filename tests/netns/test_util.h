// Test helpers for the netns layer: counting open descriptors (and failing a
// test that leaks one), asking which netns a socket lives in, and making
// uniquely named network namespaces that are always removed again.
#ifndef AMBIENT_TESTS_NETNS_TEST_UTIL_H_
#define AMBIENT_TESTS_NETNS_TEST_UTIL_H_

#include <dirent.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "ambient/netns/netns.h"

namespace ambient::netns::testing {

// OpenFdCount returns how many descriptors this process has open.
inline int OpenFdCount() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(dir);
  return n - 1;  // the directory stream's own descriptor
}

// FdLeakCheck fails the running test if, when it is destroyed, a different
// number of descriptors is open than when it was made. Declare it first in a
// test (right after the root check), so that everything the test opens after
// it is closed again before it checks.
class FdLeakCheck {
 public:
  FdLeakCheck() : before_(OpenFdCount()) {}
  ~FdLeakCheck() { EXPECT_EQ(OpenFdCount(), before_) << "open descriptors changed"; }
  FdLeakCheck(const FdLeakCheck&) = delete;
  FdLeakCheck& operator=(const FdLeakCheck&) = delete;

 private:
  const int before_;
};

// NetnsOfSocket asks the kernel which netns a socket lives in (SIOCGSKNS).
inline NetnsId NetnsOfSocket(int sock) {
  int nsfd = ioctl(sock, SIOCGSKNS);
  if (nsfd < 0) return NetnsId{};
  absl::StatusOr<Netns> ns = Netns::FromFd(nsfd);
  return ns.ok() ? ns->id() : NetnsId{};
}

// NamedNetns creates /var/run/netns/<unique name> with `ip netns add` and
// deletes it in its destructor, whatever happened in between.
class NamedNetns {
 public:
  NamedNetns() {
    static std::atomic<int> counter{0};
    name_ = absl::StrCat("ambient-test-", getpid(), "-", counter++);
    ok_ = std::system(absl::StrCat("ip netns add ", name_).c_str()) == 0;
  }
  ~NamedNetns() {
    if (ok_) (void)!std::system(absl::StrCat("ip netns del ", name_).c_str());
  }
  NamedNetns(const NamedNetns&) = delete;
  NamedNetns& operator=(const NamedNetns&) = delete;
  bool ok() const { return ok_; }
  const std::string& name() const { return name_; }
  std::string path() const { return "/var/run/netns/" + name_; }

 private:
  std::string name_;
  bool ok_ = false;
};

}  // namespace ambient::netns::testing

#endif  // AMBIENT_TESTS_NETNS_TEST_UTIL_H_
