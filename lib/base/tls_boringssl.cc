// The run-time check of the BoringSSL build.
#include <openssl/crypto.h>

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"

#if !defined(OPENSSL_IS_BORINGSSL)
#error "tls_boringssl.cc must be compiled against BoringSSL's headers, not OpenSSL's"
#endif

namespace ambient {

absl::Status EnsureTlsBackend() {
  absl::string_view bound = BoundTlsLibrary();
  if (bound == "BoringSSL") return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the TLS library bound to ambient is \"", bound,
      "\", not BoringSSL: OpenSSL was loaded into this process before ambient and "
      "took over its symbols; use a libambient built with OpenSSL 3 (-DAMBIENT_TLS=openssl), "
      "load ambient with dlopen(RTLD_DEEPBIND), or keep OpenSSL out of the process"));
}

}  // namespace ambient
