// Internal to lib/grpc: the bytes a sans-IO channel has for the host to
// write (PendingOutput) until it says they are written (ConsumeOutput).
#ifndef AMBIENT_LIB_GRPC_OUTPUT_BUFFER_H_
#define AMBIENT_LIB_GRPC_OUTPUT_BUFFER_H_

#include <algorithm>
#include <string>

#include "absl/strings/string_view.h"

namespace ambient::grpc {

class OutputBuffer {
 public:
  void Append(const char* data, size_t n) { bytes_.append(data, n); }
  absl::string_view Pending() const { return absl::string_view(bytes_).substr(off_); }
  void Consume(size_t n) {
    off_ += std::min(n, bytes_.size() - off_);
    if (off_ == bytes_.size()) {
      bytes_.clear();
      off_ = 0;
    }
  }

 private:
  std::string bytes_;
  size_t off_ = 0;
};

}  // namespace ambient::grpc

#endif  // AMBIENT_LIB_GRPC_OUTPUT_BUFFER_H_
