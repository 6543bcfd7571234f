//! IP socket addresses as libambient reads and prints them
//! (`ambient/c/address.h`): the one set of address rules every layer of the
//! library, `ambientctl` and both bindings use (`IPv4:PORT` or
//! `[IPv6]:PORT`, no host names, no zone ids).
use std::ffi::CStr;

use ambient_sys as sys;

use crate::Error;

/// An IP address with a port, in the library's canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SocketAddress {
    /// Canonical text: `198.18.0.1:80` or `[2001:db8::1]:80`.
    pub text: String,
    /// The IP alone: `198.18.0.1` or `2001:db8::1`.
    pub ip: String,
    /// The port.
    pub port: u16,
    /// 4 or 6.
    pub ip_version: u8,
    /// An IPv6 `::ffff:a.b.c.d` address (kept as IPv6).
    pub is_v4_mapped: bool,
}

impl std::fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl SocketAddress {
    /// Reads `IPv4:PORT` or `[IPv6]:PORT` (port 0-65535). The error is
    /// `AMBIENT_ERR_INVALID_ARGUMENT` with the library's message, e.g.
    /// `invalid IP address "localhost"`; a NUL byte inside is refused too.
    pub fn parse(text: &str) -> Result<SocketAddress, Error> {
        let mut out: *mut sys::ambient_socket_address = std::ptr::null_mut();
        // SAFETY: `text` is valid for its length; `out` is written only on
        // success, with an object we own.
        unsafe {
            crate::identity::check(sys::ambient_socket_address_parse(
                text.as_ptr().cast(),
                text.len(),
                &mut out,
            ))?;
            Ok(Self::take(out))
        }
    }

    /// Reads a bare IPv4 or IPv6 address (no brackets, zone or port) and
    /// gives it `port`.
    pub fn parse_ip(ip: &str, port: u16) -> Result<SocketAddress, Error> {
        let mut out: *mut sys::ambient_socket_address = std::ptr::null_mut();
        // SAFETY: as in `parse`.
        unsafe {
            crate::identity::check(sys::ambient_socket_address_parse_ip(
                ip.as_ptr().cast(),
                ip.len(),
                port,
                &mut out,
            ))?;
            Ok(Self::take(out))
        }
    }

    /// Copies and frees `a`.
    ///
    /// # Safety
    /// `a` must be a live object returned by a parse call; it is freed.
    unsafe fn take(a: *mut sys::ambient_socket_address) -> SocketAddress {
        let lent =
            |p: *const std::os::raw::c_char| CStr::from_ptr(p).to_string_lossy().into_owned();
        let out = SocketAddress {
            text: lent(sys::ambient_socket_address_get0_text(a)),
            ip: lent(sys::ambient_socket_address_get0_ip(a)),
            port: sys::ambient_socket_address_port(a),
            ip_version: sys::ambient_socket_address_ip_version(a) as u8,
            is_v4_mapped: sys::ambient_socket_address_is_v4_mapped(a) != 0,
        };
        sys::ambient_socket_address_free(a);
        out
    }
}

/// Checks that `text` is a CONNECT :authority the library accepts
/// (`IPv4:PORT`, `[IPv6]:PORT` or `host:PORT`, port 1-65535); the error says
/// why not.
pub fn check_authority(text: &str) -> Result<(), Error> {
    // SAFETY: `text` is valid for its length; the result is NULL or owned.
    unsafe {
        crate::identity::check(sys::ambient_hbone_authority_check(
            text.as_ptr().cast(),
            text.len(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_with_the_library_rules() {
        let a = SocketAddress::parse("[2001:DB8:0::1]:8080").unwrap();
        assert_eq!(a.text, "[2001:db8::1]:8080");
        assert_eq!(
            (a.ip.as_str(), a.port, a.ip_version),
            ("2001:db8::1", 8080, 6)
        );
        let m = SocketAddress::parse("[::ffff:198.18.0.1]:0").unwrap();
        assert!(m.is_v4_mapped && m.ip_version == 6 && m.port == 0);
        for (bad, says) in [
            ("198.18.0.1:65536", "want 0-65535"),
            ("198.18.0.1", "want IPv4:PORT or [IPv6]:PORT"),
            ("[198.18.0.1]:80", "brackets need IPv6"),
            ("[fe80::1%eth0]:80", "invalid IP address \"fe80::1%eth0\""),
            ("localhost:80", "invalid IP address \"localhost\""),
            ("198.18\0.0.1:80", "invalid IP address \"198.18\\x00.0.1\""),
            ("", "want IPv4:PORT"),
        ] {
            let e = SocketAddress::parse(bad).unwrap_err();
            assert_eq!(e.code, sys::AMBIENT_ERR_INVALID_ARGUMENT, "{bad}");
            assert!(e.message.contains(says), "{bad}: {}", e.message);
        }
        assert_eq!(
            SocketAddress::parse_ip("198.18.0.9", 15008).unwrap().text,
            "198.18.0.9:15008"
        );
        assert!(SocketAddress::parse_ip("[::1]", 1).is_err());
        check_authority("echo.default.svc.cluster.local:80").unwrap();
        let e = check_authority("198.18.0.1:0").unwrap_err();
        assert!(
            e.message.contains("bad port (want 1-65535)"),
            "{}",
            e.message
        );
    }
}
