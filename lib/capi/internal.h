// Internal to lib/capi: the private declarations the shim files share. Every
// shim file includes this header and nothing else from lib/capi.
//
// Strings reach C in the two shapes ambient/c/common.h documents:
//   lent    - `_get0_` calls and event fields return a pointer into a
//             std::string the handle owns (valid until the handle changes or
//             is freed): return the member's c_str() directly;
//   copied  - every string the library makes for the caller goes into the
//             caller's buffer, snprintf-style: CopyToBuffer.
#ifndef AMBIENT_LIB_CAPI_INTERNAL_H_
#define AMBIENT_LIB_CAPI_INTERNAL_H_

#include "ambient/base/tls.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ambient/c/hbone.h"
#include "ambient/c/identity.h"
#include "ambient/c/netns.h"
#include "ambient/c/runtime.h"
#include "ambient/c/workload.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/trust_bundle.h"
#include "ambient/netns/netns.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/xds/control_plane_connection.h"
#include "ambient/xds/delta_ads.h"
#include "capi/error.h"  // ambient_error, Guard, GuardCode, NewOrNull, NullArgument, LogSinkOf

// ambient_netns (ambient/c/netns.h) is shared: the redirect shims borrow it.
struct ambient_netns {
  ambient::netns::Netns ns;
};

// ambient_workload_info (ambient/c/workload.h) is read by the runtime and
// netns shims.
struct ambient_workload_info {
  // The text fields, indexed by ambient_workload_field.
  std::array<std::string, AMBIENT_WORKLOAD_ZONE + 1> fields;
  std::vector<std::string> addresses;
  bool hbone = true;
  const std::string& at(ambient_workload_field f) const { return fields[f]; }
};

// ambient_xds_options (ambient/c/xds.h) is filled by the xds shims and read by
// the node proxy's (runtime.cc).
struct ambient_xds_options {
  ambient::xds::ConnectionOptions connection;
  std::string ca_address;  // empty: istiod is the CA
  ambient::xds::NodeIdentity node;
};

namespace ambient::capi {

// CopyToBuffer writes `text` into buf[cap] NUL-terminated, cut to cap - 1
// bytes when it does not fit (nothing written when `buf` is NULL or `cap`
// is 0), and returns text.size() so the caller can tell.
size_t CopyToBuffer(absl::string_view text, char* buf, size_t cap) noexcept;

// CopyStrings appends the `n` C strings of `in` to `*out`. Errors:
// NullArgument(array) when `in` is NULL with n > 0, NullArgument(element)
// when one of them is NULL.
absl::Status CopyStrings(const char* const* in, size_t n, const char* array, const char* element,
                         std::vector<std::string>* out);

// The parts of an ambient_hbone_tls (defined in hbone.cc) runtime.cc hands
// to the runtime layer.
SSL_CTX* HboneTlsContext(const ambient_hbone_tls* tls);
bool HboneTlsIsServer(const ambient_hbone_tls* tls);
std::shared_ptr<identity::TrustBundleSource> HboneTlsBundles(const ambient_hbone_tls* tls);
const std::string& HboneTlsIdentity(const ambient_hbone_tls* tls);

// LoopOf is the event loop of an ambient_runtime_loop (runtime.cc), for the
// shims of objects hosted on it (xds.cc).
runtime::EventLoop* LoopOf(ambient_runtime_loop* loop);

// NewCredentials wraps `holder` as an owned ambient_credentials (identity.cc),
// for the shims that hand out a holder another layer keeps current (xds.cc).
ambient_credentials* NewCredentials(std::shared_ptr<identity::CredentialHolder> holder);

}  // namespace ambient::capi

#endif  // AMBIENT_LIB_CAPI_INTERNAL_H_
