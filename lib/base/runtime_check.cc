#include "ambient/base/runtime_check.h"

#include <openssl/crypto.h>

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

#if !defined(OPENSSL_IS_BORINGSSL)
#error "ambient must be compiled against BoringSSL headers, not OpenSSL's"
#endif

namespace ambient {

absl::Status EnsureBoringSsl() {
  // Function-local static: computed once, trivially destructible contents.
  static const std::string* const bound = [] {
    const char* name = OpenSSL_version(OPENSSL_VERSION);
    return new std::string(name != nullptr ? name : "(null)");
  }();
  if (*bound == "BoringSSL") return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the TLS library bound to ambient is \"", *bound,
      "\", not BoringSSL: OpenSSL was loaded into this process before ambient and "
      "took over its symbols; load ambient with dlopen(RTLD_DEEPBIND) or keep OpenSSL "
      "out of the process"));
}

}  // namespace ambient
