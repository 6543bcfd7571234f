//! Safe binding of libambient. Errors come back as [`Error`] values carrying
//! the C ABI's code, detail and message; handles are freed on `Drop`.
use std::ffi::CStr;
use std::fmt;

use ambient_sys as sys;

pub mod address;
pub mod authz;
pub mod hbone;
pub mod identity;
pub mod netns;
pub mod redirect;
pub mod runtime;
pub mod xds;

/// A failure reported by libambient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The `ambient_code` (negative).
    pub code: i32,
    /// Layer-specific detail code, 0 when none.
    pub detail: i32,
    /// What went wrong, and where.
    pub message: String,
}

impl Error {
    /// Takes ownership of an `ambient_error*`; `None` for NULL (success).
    ///
    /// # Safety
    /// `err` must be NULL or an owned pointer returned by libambient.
    pub(crate) unsafe fn take(err: *mut sys::ambient_error) -> Option<Error> {
        if err.is_null() {
            return None;
        }
        let out = Error {
            code: sys::ambient_error_code(err),
            detail: sys::ambient_error_detail(err),
            message: CStr::from_ptr(sys::ambient_error_message(err))
                .to_string_lossy()
                .into_owned(),
        };
        sys::ambient_error_free(err);
        Some(out)
    }

    /// `AMBIENT_ERR_RESOURCE_EXHAUSTED` for a `_new` call that returned NULL.
    pub(crate) fn out_of_memory() -> Error {
        Error {
            code: sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
            detail: 0,
            message: "out of memory".to_string(),
        }
    }

    /// The name of this error's code, as `ambient_strerror` gives it.
    pub fn code_name(&self) -> &'static str {
        strerror(self.code)
    }

    /// This error's code as an [`ErrorCode`].
    pub fn kind(&self) -> ErrorCode {
        ErrorCode::from_raw(self.code)
    }
}

/// A string the C ABI copies into the caller's buffer, snprintf-style
/// (ambient/c/common.h): `call(buf, cap)` writes at most `cap - 1` bytes and
/// a NUL and returns the full length. Asks for the length first and calls
/// again until the text fits (it may grow in between, e.g. counters).
pub(crate) fn copied_string(
    mut call: impl FnMut(*mut std::os::raw::c_char, usize) -> usize,
) -> String {
    let mut n = call(std::ptr::null_mut(), 0);
    loop {
        if n == 0 {
            return String::new();
        }
        let mut buf = vec![0u8; n + 1];
        let m = call(buf.as_mut_ptr().cast(), buf.len());
        if m < buf.len() {
            buf.truncate(m);
            return String::from_utf8_lossy(&buf).into_owned();
        }
        n = m;
    }
}

/// `"<code name>: <message>"`, or the code name alone when there is no message.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.kind())
        } else {
            write!(f, "{}: {}", self.kind(), self.message)
        }
    }
}

impl std::error::Error for Error {}

/// The category of an [`Error`]: `ambient_code` of the C ABI as an enum.
/// Displays as `ambient_strerror` names it ("invalid argument").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `AMBIENT_ERR_INVALID_ARGUMENT`
    InvalidArgument,
    /// `AMBIENT_ERR_NOT_FOUND`
    NotFound,
    /// `AMBIENT_ERR_ALREADY_EXISTS`
    AlreadyExists,
    /// `AMBIENT_ERR_PERMISSION_DENIED`
    PermissionDenied,
    /// `AMBIENT_ERR_UNAUTHENTICATED`
    Unauthenticated,
    /// `AMBIENT_ERR_FAILED_PRECONDITION`
    FailedPrecondition,
    /// `AMBIENT_ERR_OUT_OF_RANGE`
    OutOfRange,
    /// `AMBIENT_ERR_UNAVAILABLE`
    Unavailable,
    /// `AMBIENT_ERR_DEADLINE_EXCEEDED`
    DeadlineExceeded,
    /// `AMBIENT_ERR_RESOURCE_EXHAUSTED`
    ResourceExhausted,
    /// `AMBIENT_ERR_CANCELLED`
    Cancelled,
    /// `AMBIENT_ERR_UNIMPLEMENTED`
    Unimplemented,
    /// `AMBIENT_ERR_INTERNAL`
    Internal,
    /// `AMBIENT_ERR_ABORTED`
    Aborted,
    /// `AMBIENT_ERR_DATA_LOSS`
    DataLoss,
    /// `AMBIENT_ERR_WOULD_BLOCK`
    WouldBlock,
    /// `AMBIENT_ERR_UNKNOWN`, or a code this binding does not know.
    Unknown,
}

impl ErrorCode {
    /// The enum value of a raw `ambient_code` (any unknown value: `Unknown`).
    pub fn from_raw(code: i32) -> ErrorCode {
        match code {
            sys::AMBIENT_ERR_INVALID_ARGUMENT => ErrorCode::InvalidArgument,
            sys::AMBIENT_ERR_NOT_FOUND => ErrorCode::NotFound,
            sys::AMBIENT_ERR_ALREADY_EXISTS => ErrorCode::AlreadyExists,
            sys::AMBIENT_ERR_PERMISSION_DENIED => ErrorCode::PermissionDenied,
            sys::AMBIENT_ERR_UNAUTHENTICATED => ErrorCode::Unauthenticated,
            sys::AMBIENT_ERR_FAILED_PRECONDITION => ErrorCode::FailedPrecondition,
            sys::AMBIENT_ERR_OUT_OF_RANGE => ErrorCode::OutOfRange,
            sys::AMBIENT_ERR_UNAVAILABLE => ErrorCode::Unavailable,
            sys::AMBIENT_ERR_DEADLINE_EXCEEDED => ErrorCode::DeadlineExceeded,
            sys::AMBIENT_ERR_RESOURCE_EXHAUSTED => ErrorCode::ResourceExhausted,
            sys::AMBIENT_ERR_CANCELLED => ErrorCode::Cancelled,
            sys::AMBIENT_ERR_UNIMPLEMENTED => ErrorCode::Unimplemented,
            sys::AMBIENT_ERR_INTERNAL => ErrorCode::Internal,
            sys::AMBIENT_ERR_ABORTED => ErrorCode::Aborted,
            sys::AMBIENT_ERR_DATA_LOSS => ErrorCode::DataLoss,
            sys::AMBIENT_ERR_WOULD_BLOCK => ErrorCode::WouldBlock,
            _ => ErrorCode::Unknown,
        }
    }

    /// The raw `ambient_code` value.
    pub fn raw(self) -> i32 {
        match self {
            ErrorCode::InvalidArgument => sys::AMBIENT_ERR_INVALID_ARGUMENT,
            ErrorCode::NotFound => sys::AMBIENT_ERR_NOT_FOUND,
            ErrorCode::AlreadyExists => sys::AMBIENT_ERR_ALREADY_EXISTS,
            ErrorCode::PermissionDenied => sys::AMBIENT_ERR_PERMISSION_DENIED,
            ErrorCode::Unauthenticated => sys::AMBIENT_ERR_UNAUTHENTICATED,
            ErrorCode::FailedPrecondition => sys::AMBIENT_ERR_FAILED_PRECONDITION,
            ErrorCode::OutOfRange => sys::AMBIENT_ERR_OUT_OF_RANGE,
            ErrorCode::Unavailable => sys::AMBIENT_ERR_UNAVAILABLE,
            ErrorCode::DeadlineExceeded => sys::AMBIENT_ERR_DEADLINE_EXCEEDED,
            ErrorCode::ResourceExhausted => sys::AMBIENT_ERR_RESOURCE_EXHAUSTED,
            ErrorCode::Cancelled => sys::AMBIENT_ERR_CANCELLED,
            ErrorCode::Unimplemented => sys::AMBIENT_ERR_UNIMPLEMENTED,
            ErrorCode::Internal => sys::AMBIENT_ERR_INTERNAL,
            ErrorCode::Aborted => sys::AMBIENT_ERR_ABORTED,
            ErrorCode::DataLoss => sys::AMBIENT_ERR_DATA_LOSS,
            ErrorCode::WouldBlock => sys::AMBIENT_ERR_WOULD_BLOCK,
            ErrorCode::Unknown => sys::AMBIENT_ERR_UNKNOWN,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(strerror(self.raw()))
    }
}

/// The level of a log line from libambient (`ambient_log_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Details for debugging.
    Debug,
    /// Normal events (a pod added, a connection made, waiting for a peer).
    Info,
    /// Something went wrong and was handled.
    Warn,
    /// Something failed.
    Error,
}

impl LogLevel {
    /// The enum value of a raw `ambient_log_level` (above error: `Error`).
    pub fn from_raw(level: i32) -> LogLevel {
        match level {
            sys::AMBIENT_LOG_INFO => LogLevel::Info,
            sys::AMBIENT_LOG_WARN => LogLevel::Warn,
            l if l <= sys::AMBIENT_LOG_DEBUG => LogLevel::Debug,
            _ => LogLevel::Error,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        })
    }
}

/// The name of an `ambient_code`.
pub fn strerror(code: i32) -> &'static str {
    // SAFETY: ambient_strerror returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::ambient_strerror(code)) }
        .to_str()
        .unwrap_or("?")
}

/// The version of the loaded libambient, such as "0.1.0".
pub fn version() -> &'static str {
    // SAFETY: ambient_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::ambient_version()) }
        .to_str()
        .unwrap_or("?")
}

/// The TLS library the loaded libambient was built with: "boringssl" or
/// "openssl".
pub fn tls_backend() -> &'static str {
    // SAFETY: ambient_tls_backend returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(sys::ambient_tls_backend()) }
        .to_str()
        .unwrap_or("?")
}

/// Fails when the TLS library bound to libambient is not the one it was
/// built with (`tls_backend`).
pub fn check_runtime() -> Result<(), Error> {
    // SAFETY: the call has no preconditions; it returns NULL or an owned error.
    match unsafe { Error::take(sys::ambient_check_runtime()) } {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_backend_is_one_of_the_two() {
        assert!(
            matches!(tls_backend(), "boringssl" | "openssl"),
            "{}",
            tls_backend()
        );
        if let Ok(want) = std::env::var("AMBIENT_EXPECT_TLS_BACKEND") {
            assert_eq!(tls_backend(), want);
        }
    }

    #[test]
    fn version_is_semver_and_matches_packed_number() {
        let v: Vec<u32> = version().split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(v.len(), 3);
        let packed = unsafe { sys::ambient_version_num() };
        assert_eq!(packed, (v[0] << 16) | (v[1] << 8) | v[2]);
    }

    #[test]
    fn runtime_is_boringssl() {
        check_runtime().unwrap();
    }

    #[test]
    fn codes_and_levels_are_enums_that_display() {
        for raw in -17..=-1 {
            let k = ErrorCode::from_raw(raw);
            assert_eq!(k.raw(), raw);
            assert_eq!(k.to_string(), strerror(raw));
        }
        assert_eq!(ErrorCode::from_raw(-999), ErrorCode::Unknown);
        let e = Error {
            code: sys::AMBIENT_ERR_NOT_FOUND,
            detail: 0,
            message: "no such netns".into(),
        };
        assert_eq!(e.kind(), ErrorCode::NotFound);
        assert_eq!(e.to_string(), "not found: no such netns");
        assert_eq!(LogLevel::from_raw(1), LogLevel::Info);
        assert_eq!(LogLevel::from_raw(3).to_string(), "error");
        assert!(LogLevel::Debug < LogLevel::Warn);
    }

    #[test]
    fn code_names() {
        assert_eq!(
            strerror(sys::AMBIENT_ERR_INVALID_ARGUMENT),
            "invalid argument"
        );
        assert_eq!(strerror(12345), "unknown error code");
        let e = Error {
            code: sys::AMBIENT_ERR_UNAVAILABLE,
            detail: 0,
            message: String::new(),
        };
        assert_eq!(e.to_string(), "unavailable");
    }

    #[test]
    fn null_error_is_success() {
        assert!(unsafe { Error::take(std::ptr::null_mut()) }.is_none());
    }
}
