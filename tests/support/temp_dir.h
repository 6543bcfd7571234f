// Test support: a private directory under /tmp for files a test hands to a
// program (certificates, keys, bundles, configs). The directory and all it
// holds go away when the TempDir does, whatever the test's outcome.
#ifndef AMBIENT_TESTS_SUPPORT_TEMP_DIR_H_
#define AMBIENT_TESTS_SUPPORT_TEMP_DIR_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace ambient::test_support {

class TempDir {
 public:
  TempDir() = default;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { Remove(); }

  // Create makes a fresh directory /tmp/<prefix>-XXXXXX; false (with a test
  // failure) when that is impossible. Call it once, e.g. in SetUp.
  bool Create(const std::string& prefix) {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp " << tmpl << " failed";
      return false;
    }
    path_ = tmpl;
    return true;
  }

  // path is the directory itself; Path(name) a file inside it.
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

  // Write stores `data` as file `name` (replacing it) and returns its path.
  std::string Write(const std::string& name, const std::string& data) const {
    std::string file = Path(name);
    std::ofstream(file, std::ios::binary | std::ios::trunc) << data;
    return file;
  }

  // Remove deletes the directory and everything in it; true when it is gone
  // (or was never made). The destructor calls it too.
  bool Remove() {
    if (path_.empty()) return true;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
    if (ec) return false;
    path_.clear();
    return true;
  }

 private:
  std::string path_;
};

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_TEMP_DIR_H_
