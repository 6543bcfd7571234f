/* ambient/c/common.h: what every part of the ambient C ABI shares.
 *
 * Object model. Every object is opaque and heap-allocated: it is made by an
 * ambient_<thing>_new (or another function documented as giving an owned
 * object) and released by ambient_<thing>_free, which accepts NULL. Getters
 * named get0 lend a pointer that stays valid while the owner lives; get1
 * gives the caller a new reference or copy to free.
 *
 * Option objects. A call that needs more than a few parameters takes an
 * option object instead, so it can grow without a new symbol. Every option
 * object is made the same way: ambient_<thing>_options_new(void) (or, for a
 * value several calls take, ambient_<value>_new(void)) returns it with
 * documented defaults, or NULL when out of memory; setters named _set_<field>
 * or _add_<item> change it (those that can refuse a value return an owned
 * ambient_error* and leave the object unchanged; the others return void);
 * ambient_<thing>_options_free releases it. The call that takes it copies what
 * it needs, so the object may be freed or reused right after.
 *
 * Strings. Strings an object owns are lent (get0 getters, event fields):
 * NUL-terminated, valid while the object lives unchanged. Strings the library
 * makes for the caller (metrics text, rendered rules) are copied into the
 * caller's buffer the way snprintf does: the call takes `char *buf, size_t
 * cap`, writes at most cap - 1 bytes and a NUL (nothing when `buf` is NULL or
 * `cap` is 0), and reports the full length without the NUL (as its size_t
 * result, or in *out_len when it returns an ambient_error*). A length >= cap
 * means the text was cut: call again with a buffer of length + 1. There is no
 * string the caller must free.
 *
 * Errors. Setup calls (parsing, loading, configuring) return an owned
 * ambient_error* on failure and NULL on success; the caller frees it with
 * ambient_error_free. Hot-path calls return an int: 0 or a positive count on
 * success, a negative ambient_code on failure (ambient_strerror names it).
 * There is no thread-local "last error": everything a failure has to say is in
 * the value returned. No C++ exception and no abort crosses into the host.
 *
 * Threads. Unless a function says otherwise, distinct objects may be used from
 * distinct threads at once, and one object from one thread at a time. Freeing
 * an object races with every other use of it. */
#ifndef AMBIENT_C_COMMON_H_
#define AMBIENT_C_COMMON_H_

#include <stddef.h>
#include <stdint.h>

#include "ambient/version.h"

#if defined(AMBIENT_BUILDING_LIBRARY)
#define AMBIENT_EXPORT __attribute__((visibility("default")))
#else
#define AMBIENT_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ambient_code is the category of a failure. AMBIENT_OK is 0; every failure
 * is negative, so hot-path calls can return counts and codes in one int. */
typedef enum ambient_code {
  AMBIENT_OK = 0,
  AMBIENT_ERR_INVALID_ARGUMENT = -1,    /* malformed input: bytes, flags, PEM, JSON */
  AMBIENT_ERR_NOT_FOUND = -2,           /* a named thing does not exist */
  AMBIENT_ERR_ALREADY_EXISTS = -3,      /* a thing to create is already there */
  AMBIENT_ERR_PERMISSION_DENIED = -4,   /* the peer or caller is not allowed */
  AMBIENT_ERR_UNAUTHENTICATED = -5,     /* a peer could not prove its identity */
  AMBIENT_ERR_FAILED_PRECONDITION = -6, /* the object is not in a state for this */
  AMBIENT_ERR_OUT_OF_RANGE = -7,        /* e.g. a certificate outside its validity */
  AMBIENT_ERR_UNAVAILABLE = -8,         /* a transient condition; retrying may help */
  AMBIENT_ERR_DEADLINE_EXCEEDED = -9,   /* a timeout expired */
  AMBIENT_ERR_RESOURCE_EXHAUSTED = -10, /* a limit was reached (memory, streams, fds) */
  AMBIENT_ERR_CANCELLED = -11,          /* the operation was cancelled */
  AMBIENT_ERR_UNIMPLEMENTED = -12,      /* not supported by this build or platform */
  AMBIENT_ERR_INTERNAL = -13,           /* a bug in ambient or a dependency */
  AMBIENT_ERR_ABORTED = -14,            /* a conflict; the operation did not happen */
  AMBIENT_ERR_DATA_LOSS = -15,          /* unrecoverable corruption */
  AMBIENT_ERR_UNKNOWN = -16,            /* anything else */
  AMBIENT_ERR_WOULD_BLOCK = -17         /* hot path: nothing to do now, call again later */
} ambient_code;

/* ambient_error is an owned failure report: a code, a message and, for some
 * failures, a layer-specific detail code (documented by the function that
 * can produce it). */
typedef struct ambient_error ambient_error;

/* ambient_error_code returns the category of `err`, or AMBIENT_OK when `err`
 * is NULL. Any thread; `err` is not modified. */
AMBIENT_EXPORT ambient_code ambient_error_code(const ambient_error *err);

/* ambient_error_detail returns the layer-specific detail code of `err` (for
 * example an ambient_svid_error from ambient/c/identity.h), or 0 when there is
 * none or `err` is NULL. */
AMBIENT_EXPORT int ambient_error_detail(const ambient_error *err);

/* ambient_error_message returns the NUL-terminated, human-readable message of
 * `err` (never NULL; "" for a NULL `err`). The string is lent: it lives as long
 * as `err`. */
AMBIENT_EXPORT const char *ambient_error_message(const ambient_error *err);

/* ambient_error_free releases `err`. NULL is allowed. */
AMBIENT_EXPORT void ambient_error_free(ambient_error *err);

/* ambient_strerror returns a static, NUL-terminated name for an ambient_code
 * ("invalid argument", ...); for a value that is no code it returns
 * "unknown error code". Any thread. */
AMBIENT_EXPORT const char *ambient_strerror(int code);

/* ambient_version returns the version string of the loaded library, such as
 * "0.1.0". The string is static. Any thread. */
AMBIENT_EXPORT const char *ambient_version(void);

/* ambient_version_num returns the loaded library's version packed as
 * AMBIENT_VERSION_CHECK does, to compare with the headers' AMBIENT_VERSION_NUM. */
AMBIENT_EXPORT uint32_t ambient_version_num(void);

/* ambient_tls_backend names the TLS library the loaded libambient was built
 * with: "boringssl" or "openssl" (OpenSSL 3). The headers' AMBIENT_TLS_BACKEND
 * (ambient/version.h) names the one they were generated for. The string is
 * static. Any thread. */
AMBIENT_EXPORT const char* ambient_tls_backend(void);

/* ambient_check_runtime verifies that the TLS library the process actually
 * bound for ambient is the one it was built with (ambient_tls_backend). The
 * two export the same symbol names: when the other one is loaded into the
 * same process ahead of ambient (for example OpenSSL 3 by a host executable,
 * with a BoringSSL-built ambient), the dynamic loader silently binds
 * ambient's calls to it, which must not be used. Every ambient object that
 * uses TLS or X.509 runs this check when it is first made and fails with
 * AMBIENT_ERR_FAILED_PRECONDITION; this function lets a host run it up front.
 * Returns NULL when all is well, else an owned error explaining the clash and
 * the fixes (use the libambient built for the host's TLS library, load
 * ambient with RTLD_DEEPBIND, or keep the other library out of the process).
 * Any thread. */
AMBIENT_EXPORT ambient_error *ambient_check_runtime(void);

/* ambient_log_level orders log lines by importance. */
typedef enum ambient_log_level {
  AMBIENT_LOG_DEBUG = 0,
  AMBIENT_LOG_INFO = 1,
  AMBIENT_LOG_WARN = 2,
  AMBIENT_LOG_ERROR = 3
} ambient_log_level;

/* ambient_log_fn receives one log line. ambient never writes to stdout or
 * stderr itself: objects that log take an ambient_log_fn and a `user_data`
 * pointer in their options, and call it with the line's level, the component
 * that wrote it ("hbone", "zds", ...) and the message, which is not
 * NUL-terminated and is only valid during the call. The thread that calls it
 * is documented by the object that takes it. */
typedef void (*ambient_log_fn)(void *user_data, ambient_log_level level,
                               const char *component, const char *message,
                               size_t message_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_COMMON_H_ */
