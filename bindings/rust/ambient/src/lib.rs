//! Safe binding of libambient. Errors come back as [`Error`] values carrying
//! the C ABI's code, detail and message; handles are freed on `Drop`.
use std::ffi::CStr;
use std::fmt;

use ambient_sys as sys;

pub mod authz;
pub mod hbone;
pub mod identity;
pub mod netns;
pub mod redirect;
pub mod runtime;

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

    /// The name of this error's code, as `ambient_strerror` gives it.
    pub fn code_name(&self) -> &'static str {
        strerror(self.code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            f.write_str(self.code_name())
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for Error {}

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

/// Fails when the TLS library bound to libambient is not BoringSSL.
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
