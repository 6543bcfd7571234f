// Internal to lib/capi: building ambient_error objects from absl::Status and
// keeping C++ failures from crossing into C.
#ifndef AMBIENT_LIB_CAPI_ERROR_H_
#define AMBIENT_LIB_CAPI_ERROR_H_

#include <new>
#include <string>

#include "absl/status/status.h"
#include "ambient/base/log.h"
#include "ambient/c/common.h"

struct ambient_error {
  ambient_code code;
  int detail;
  std::string message;
};

namespace ambient::capi {

// CodeOf maps a canonical absl code to an ambient_code.
ambient_code CodeOf(absl::StatusCode code);

// ToError returns NULL for OK, else a new ambient_error (NULL only if even
// that allocation fails, which callers treat as "out of memory").
ambient_error* ToError(const absl::Status& status);

// ToCode returns 0 for OK, else the negative ambient_code of `status`.
int ToCode(const absl::Status& status);

// Guard runs `fn` (returning absl::Status) and converts both its result and any
// escaping C++ exception (std::bad_alloc above all) into an ambient_error*.
template <typename Fn>
ambient_error* Guard(Fn&& fn) noexcept {
  try {
    return ToError(fn());
  } catch (const std::bad_alloc&) {
    return ToError(absl::ResourceExhaustedError("out of memory"));
  } catch (...) {
    return ToError(absl::InternalError("unexpected C++ exception inside ambient"));
  }
}

// GuardCode is Guard for hot-path calls that return an int: `fn` returns an
// int (>= 0 success, < 0 ambient_code); exceptions become negative codes.
template <typename Fn>
int GuardCode(Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return AMBIENT_ERR_RESOURCE_EXHAUSTED;
  } catch (...) {
    return AMBIENT_ERR_INTERNAL;
  }
}

// NewOrNull returns a new default-constructed T, or nullptr when allocation
// (or T's constructor) throws: what every ambient_<thing>_new returns.
template <typename T>
T* NewOrNull() noexcept {
  try {
    return new T;
  } catch (...) {
    return nullptr;
  }
}

// NullArgument is the error for a required pointer argument that is NULL.
absl::Status NullArgument(const char* name);

// LogSinkOf wraps a host's C log callback as a LogSink (empty when `fn` is
// NULL). The component is passed NUL-terminated, the message with its length.
LogSink LogSinkOf(ambient_log_fn fn, void* user_data);

// SetLogSink stores LogSinkOf(fn, user_data) in `*sink`, or an empty sink when
// even that fails: the setter shims return void.
void SetLogSink(LogSink* sink, ambient_log_fn fn, void* user_data) noexcept;

}  // namespace ambient::capi

#endif  // AMBIENT_LIB_CAPI_ERROR_H_
