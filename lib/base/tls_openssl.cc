// The run-time check of the OpenSSL 3 build.
#include <openssl/crypto.h>
#include <openssl/opensslv.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"

#if defined(OPENSSL_IS_BORINGSSL)
#error "tls_openssl.cc must be compiled against OpenSSL 3's headers, not BoringSSL's"
#endif
#if OPENSSL_VERSION_MAJOR < 3
#error "the OpenSSL build of ambient needs OpenSSL 3"
#endif

namespace ambient {

absl::Status EnsureTlsBackend() {
  absl::string_view bound = BoundTlsLibrary();
  // BoringSSL answers "BoringSSL" and has no OpenSSL_version_major; OpenSSL 3
  // answers "OpenSSL 3.x.y <date>".
  if (absl::StartsWith(bound, "OpenSSL 3.")) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the TLS library bound to ambient is \"", bound,
      "\", not OpenSSL 3: another TLS library (BoringSSL?) was loaded into this process "
      "before ambient and took over its symbols; use a libambient built with BoringSSL "
      "(the default), load ambient with dlopen(RTLD_DEEPBIND), or keep the other library "
      "out of the process"));
}

}  // namespace ambient
