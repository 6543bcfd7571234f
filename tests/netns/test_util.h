// Test helpers for the netns layer: counting open descriptors and making
// uniquely named network namespaces that are always removed again.
#ifndef AMBIENT_TESTS_NETNS_TEST_UTIL_H_
#define AMBIENT_TESTS_NETNS_TEST_UTIL_H_

#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

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

// NamedNetns creates /var/run/netns/<unique name> with `ip netns add` and
// deletes it in its destructor, whatever happened in between.
class NamedNetns {
 public:
  NamedNetns() {
    static std::atomic<int> counter{0};
    name_ = absl::StrCat("ambient-t-", getpid(), "-", counter++);
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
