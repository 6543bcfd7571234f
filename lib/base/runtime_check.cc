// The parts of the run-time check both TLS libraries share; the verdict is in
// tls_<library>.cc.
#include <openssl/crypto.h>

#include <string>

#include "ambient/base/runtime_check.h"
#include "ambient/version.h"

namespace ambient {

absl::string_view TlsBackend() { return AMBIENT_TLS_BACKEND; }

absl::string_view BoundTlsLibrary() {
  // Function-local static: computed once, never destroyed.
  static const std::string* const bound = [] {
    const char* name = OpenSSL_version(OPENSSL_VERSION);
    return new std::string(name != nullptr ? name : "(null)");
  }();
  return *bound;
}

}  // namespace ambient
