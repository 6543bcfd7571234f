// ambient/base/runtime_check.h: is the TLS library bound to us BoringSSL?
//
// ambient is built against BoringSSL, whose symbols share their names with
// OpenSSL's. If OpenSSL 3 is loaded into the process ahead of ambient, the
// dynamic loader binds ambient's calls to OpenSSL without any warning, and
// nothing works as it should. Layers that use TLS or X.509 call
// EnsureBoringSsl() when their first object is made.
#ifndef AMBIENT_BASE_RUNTIME_CHECK_H_
#define AMBIENT_BASE_RUNTIME_CHECK_H_

#include "absl/status/status.h"

namespace ambient {

// EnsureBoringSsl returns OK when the libcrypto bound to this library reports
// itself as BoringSSL, else FailedPrecondition with a message naming what was
// bound instead and how to fix it. The answer is computed once per process.
// Thread-safe.
absl::Status EnsureBoringSsl();

}  // namespace ambient

#endif  // AMBIENT_BASE_RUNTIME_CHECK_H_
