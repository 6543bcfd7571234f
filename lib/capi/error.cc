#include "capi/error.h"

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"

namespace ambient::capi {

ambient_code CodeOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk: return AMBIENT_OK;
    case absl::StatusCode::kInvalidArgument: return AMBIENT_ERR_INVALID_ARGUMENT;
    case absl::StatusCode::kNotFound: return AMBIENT_ERR_NOT_FOUND;
    case absl::StatusCode::kAlreadyExists: return AMBIENT_ERR_ALREADY_EXISTS;
    case absl::StatusCode::kPermissionDenied: return AMBIENT_ERR_PERMISSION_DENIED;
    case absl::StatusCode::kUnauthenticated: return AMBIENT_ERR_UNAUTHENTICATED;
    case absl::StatusCode::kFailedPrecondition: return AMBIENT_ERR_FAILED_PRECONDITION;
    case absl::StatusCode::kOutOfRange: return AMBIENT_ERR_OUT_OF_RANGE;
    case absl::StatusCode::kUnavailable: return AMBIENT_ERR_UNAVAILABLE;
    case absl::StatusCode::kDeadlineExceeded: return AMBIENT_ERR_DEADLINE_EXCEEDED;
    case absl::StatusCode::kResourceExhausted: return AMBIENT_ERR_RESOURCE_EXHAUSTED;
    case absl::StatusCode::kCancelled: return AMBIENT_ERR_CANCELLED;
    case absl::StatusCode::kUnimplemented: return AMBIENT_ERR_UNIMPLEMENTED;
    case absl::StatusCode::kInternal: return AMBIENT_ERR_INTERNAL;
    case absl::StatusCode::kAborted: return AMBIENT_ERR_ABORTED;
    case absl::StatusCode::kDataLoss: return AMBIENT_ERR_DATA_LOSS;
    default: return AMBIENT_ERR_UNKNOWN;
  }
}

ambient_error* ToError(const absl::Status& status) {
  if (status.ok()) return nullptr;
  auto* err = new (std::nothrow) ambient_error;
  if (err == nullptr) return nullptr;
  err->code = CodeOf(status.code());
  err->detail = DetailOf(status);
  try {
    err->message = std::string(status.message());
  } catch (...) {
    // Keep the code even if the message cannot be copied.
  }
  return err;
}

int ToCode(const absl::Status& status) { return static_cast<int>(CodeOf(status.code())); }

absl::Status NullArgument(const char* name) {
  return absl::InvalidArgumentError(absl::StrCat(name, " must not be NULL"));
}

LogSink LogSinkOf(ambient_log_fn fn, void* user_data) {
  if (fn == nullptr) return nullptr;
  return [fn, user_data](LogLevel level, absl::string_view component, absl::string_view message) {
    std::string c(component);
    fn(user_data, static_cast<ambient_log_level>(level), c.c_str(), message.data(),
       message.size());
  };
}

void SetLogSink(LogSink* sink, ambient_log_fn fn, void* user_data) noexcept {
  try {
    *sink = LogSinkOf(fn, user_data);
  } catch (...) {
    *sink = nullptr;
  }
}

}  // namespace ambient::capi

using ambient::capi::Guard;

extern "C" {

ambient_code ambient_error_code(const ambient_error* err) {
  return err == nullptr ? AMBIENT_OK : err->code;
}

int ambient_error_detail(const ambient_error* err) { return err == nullptr ? 0 : err->detail; }

const char* ambient_error_message(const ambient_error* err) {
  return err == nullptr ? "" : err->message.c_str();
}

void ambient_error_free(ambient_error* err) { delete err; }

const char* ambient_strerror(int code) {
  switch (code) {
    case AMBIENT_OK: return "ok";
    case AMBIENT_ERR_INVALID_ARGUMENT: return "invalid argument";
    case AMBIENT_ERR_NOT_FOUND: return "not found";
    case AMBIENT_ERR_ALREADY_EXISTS: return "already exists";
    case AMBIENT_ERR_PERMISSION_DENIED: return "permission denied";
    case AMBIENT_ERR_UNAUTHENTICATED: return "unauthenticated";
    case AMBIENT_ERR_FAILED_PRECONDITION: return "failed precondition";
    case AMBIENT_ERR_OUT_OF_RANGE: return "out of range";
    case AMBIENT_ERR_UNAVAILABLE: return "unavailable";
    case AMBIENT_ERR_DEADLINE_EXCEEDED: return "deadline exceeded";
    case AMBIENT_ERR_RESOURCE_EXHAUSTED: return "resource exhausted";
    case AMBIENT_ERR_CANCELLED: return "cancelled";
    case AMBIENT_ERR_UNIMPLEMENTED: return "unimplemented";
    case AMBIENT_ERR_INTERNAL: return "internal error";
    case AMBIENT_ERR_ABORTED: return "aborted";
    case AMBIENT_ERR_DATA_LOSS: return "data loss";
    case AMBIENT_ERR_UNKNOWN: return "unknown error";
    case AMBIENT_ERR_WOULD_BLOCK: return "would block";
    default: return "unknown error code";
  }
}

const char* ambient_version(void) { return AMBIENT_VERSION_STRING; }

uint32_t ambient_version_num(void) { return AMBIENT_VERSION_NUM; }

const char* ambient_tls_backend(void) { return AMBIENT_TLS_BACKEND; }

ambient_error* ambient_check_runtime(void) {
  return Guard([] { return ambient::EnsureTlsBackend(); });
}

}  // extern "C"
