//! Raw declarations of the libambient C ABI (`include/ambient/ambient.h`).
//! Every function here is `unsafe`; the `ambient` crate wraps them safely.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int};

/// `ambient_code`: 0 is success, failures are negative.
pub type ambient_code = c_int;

pub const AMBIENT_OK: ambient_code = 0;
pub const AMBIENT_ERR_INVALID_ARGUMENT: ambient_code = -1;
pub const AMBIENT_ERR_NOT_FOUND: ambient_code = -2;
pub const AMBIENT_ERR_ALREADY_EXISTS: ambient_code = -3;
pub const AMBIENT_ERR_PERMISSION_DENIED: ambient_code = -4;
pub const AMBIENT_ERR_UNAUTHENTICATED: ambient_code = -5;
pub const AMBIENT_ERR_FAILED_PRECONDITION: ambient_code = -6;
pub const AMBIENT_ERR_OUT_OF_RANGE: ambient_code = -7;
pub const AMBIENT_ERR_UNAVAILABLE: ambient_code = -8;
pub const AMBIENT_ERR_DEADLINE_EXCEEDED: ambient_code = -9;
pub const AMBIENT_ERR_RESOURCE_EXHAUSTED: ambient_code = -10;
pub const AMBIENT_ERR_CANCELLED: ambient_code = -11;
pub const AMBIENT_ERR_UNIMPLEMENTED: ambient_code = -12;
pub const AMBIENT_ERR_INTERNAL: ambient_code = -13;
pub const AMBIENT_ERR_ABORTED: ambient_code = -14;
pub const AMBIENT_ERR_DATA_LOSS: ambient_code = -15;
pub const AMBIENT_ERR_UNKNOWN: ambient_code = -16;
pub const AMBIENT_ERR_WOULD_BLOCK: ambient_code = -17;

/// Opaque `ambient_error`.
#[repr(C)]
pub struct ambient_error {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_error_code(err: *const ambient_error) -> ambient_code;
    pub fn ambient_error_detail(err: *const ambient_error) -> c_int;
    pub fn ambient_error_message(err: *const ambient_error) -> *const c_char;
    pub fn ambient_error_free(err: *mut ambient_error);
    pub fn ambient_strerror(code: c_int) -> *const c_char;
    pub fn ambient_version() -> *const c_char;
    pub fn ambient_version_num() -> u32;
    pub fn ambient_check_runtime() -> *mut ambient_error;
}

/// Opaque `ambient_authz_store`.
#[repr(C)]
pub struct ambient_authz_store {
    _private: [u8; 0],
}

/// Opaque `ambient_authz_decision`.
#[repr(C)]
pub struct ambient_authz_decision {
    _private: [u8; 0],
}

/// `struct sockaddr` (only ever passed by pointer).
#[repr(C)]
pub struct sockaddr {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_authz_store_new() -> *mut ambient_authz_store;
    pub fn ambient_authz_store_free(store: *mut ambient_authz_store);
    pub fn ambient_authz_store_replace_json(
        store: *mut ambient_authz_store,
        json: *const c_char,
        json_len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_authz_store_upsert_proto(
        store: *mut ambient_authz_store,
        bytes: *const u8,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_authz_store_upsert_json(
        store: *mut ambient_authz_store,
        json: *const c_char,
        json_len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_authz_store_remove(
        store: *mut ambient_authz_store,
        ns: *const c_char,
        name: *const c_char,
    ) -> c_int;
    pub fn ambient_authz_store_size(store: *const ambient_authz_store) -> usize;
    pub fn ambient_authz_decision_new() -> *mut ambient_authz_decision;
    pub fn ambient_authz_decision_free(decision: *mut ambient_authz_decision);
    pub fn ambient_authz_decision_get0_reason(
        decision: *const ambient_authz_decision,
    ) -> *const c_char;
    pub fn ambient_authz_decision_get0_policy(
        decision: *const ambient_authz_decision,
    ) -> *const c_char;
    pub fn ambient_authz_decision_num_dry_run_hits(
        decision: *const ambient_authz_decision,
    ) -> usize;
    pub fn ambient_authz_decision_get0_dry_run_hit(
        decision: *const ambient_authz_decision,
        i: usize,
    ) -> *const c_char;
    pub fn ambient_authz_check(
        store: *const ambient_authz_store,
        workload_namespace: *const c_char,
        workload_policies: *const *const c_char,
        num_workload_policies: usize,
        src: *const sockaddr,
        dst: *const sockaddr,
        src_identity: *const c_char,
        out_decision: *mut ambient_authz_decision,
    ) -> c_int;
}
