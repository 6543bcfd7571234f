//! Raw declarations of the libambient C ABI (`include/ambient/ambient.h`).
//! Every function here is `unsafe`; the `ambient` crate wraps them safely.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

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
    pub fn ambient_tls_backend() -> *const c_char;
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

/// Opaque `ambient_authz_request`.
#[repr(C)]
pub struct ambient_authz_request {
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
    pub fn ambient_authz_request_new() -> *mut ambient_authz_request;
    pub fn ambient_authz_request_free(req: *mut ambient_authz_request);
    pub fn ambient_authz_request_set_workload_namespace(
        req: *mut ambient_authz_request,
        ns: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_authz_request_set_workload_policies(
        req: *mut ambient_authz_request,
        keys: *const *const c_char,
        n: usize,
    ) -> *mut ambient_error;
    pub fn ambient_authz_request_set_source(
        req: *mut ambient_authz_request,
        src: *const sockaddr,
    ) -> *mut ambient_error;
    pub fn ambient_authz_request_set_destination(
        req: *mut ambient_authz_request,
        dst: *const sockaddr,
    ) -> *mut ambient_error;
    pub fn ambient_authz_request_set_source_identity(
        req: *mut ambient_authz_request,
        spiffe_id: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_authz_check(
        store: *const ambient_authz_store,
        req: *const ambient_authz_request,
        out_decision: *mut ambient_authz_decision,
    ) -> c_int;
}

// ---- address.h ---------------------------------------------------------

/// Opaque `ambient_socket_address`.
#[repr(C)]
pub struct ambient_socket_address {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_socket_address_parse(
        text: *const c_char,
        len: usize,
        out: *mut *mut ambient_socket_address,
    ) -> *mut ambient_error;
    pub fn ambient_socket_address_parse_ip(
        ip: *const c_char,
        len: usize,
        port: u16,
        out: *mut *mut ambient_socket_address,
    ) -> *mut ambient_error;
    pub fn ambient_socket_address_free(addr: *mut ambient_socket_address);
    pub fn ambient_socket_address_get0_text(addr: *const ambient_socket_address) -> *const c_char;
    pub fn ambient_socket_address_get0_ip(addr: *const ambient_socket_address) -> *const c_char;
    pub fn ambient_socket_address_port(addr: *const ambient_socket_address) -> u16;
    pub fn ambient_socket_address_ip_version(addr: *const ambient_socket_address) -> c_int;
    pub fn ambient_socket_address_is_v4_mapped(addr: *const ambient_socket_address) -> c_int;
    pub fn ambient_socket_address_get0_sockaddr(
        addr: *const ambient_socket_address,
        len: *mut usize,
    ) -> *const sockaddr;
}

// ---- identity.h --------------------------------------------------------

/// Opaque `ambient_spiffe_id`.
#[repr(C)]
pub struct ambient_spiffe_id {
    _private: [u8; 0],
}

/// Opaque `ambient_istio_identity`.
#[repr(C)]
pub struct ambient_istio_identity {
    _private: [u8; 0],
}

/// Opaque `ambient_trust_bundles`.
#[repr(C)]
pub struct ambient_trust_bundles {
    _private: [u8; 0],
}

/// Opaque `ambient_verify_options`.
#[repr(C)]
pub struct ambient_verify_options {
    _private: [u8; 0],
}

/// Opaque `ambient_svid_verifier`.
#[repr(C)]
pub struct ambient_svid_verifier {
    _private: [u8; 0],
}

/// Opaque `ambient_credentials`.
#[repr(C)]
pub struct ambient_credentials {
    _private: [u8; 0],
}

/// `ambient_spiffe_id_error`: detail of a SPIFFE ID parse failure.
pub type ambient_spiffe_id_error = c_int;
pub const AMBIENT_SPIFFE_ID_OK: c_int = 0;
pub const AMBIENT_SPIFFE_ID_EMPTY: c_int = 1;
pub const AMBIENT_SPIFFE_ID_BAD_SCHEME: c_int = 2;
pub const AMBIENT_SPIFFE_ID_MISSING_TRUST_DOMAIN: c_int = 3;
pub const AMBIENT_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR: c_int = 4;
pub const AMBIENT_SPIFFE_ID_BAD_PATH_CHAR: c_int = 5;
pub const AMBIENT_SPIFFE_ID_EMPTY_SEGMENT: c_int = 6;
pub const AMBIENT_SPIFFE_ID_DOT_SEGMENT: c_int = 7;
pub const AMBIENT_SPIFFE_ID_TRAILING_SLASH: c_int = 8;
pub const AMBIENT_SPIFFE_ID_TOO_LONG: c_int = 9;
pub const AMBIENT_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG: c_int = 10;

/// `ambient_svid_error`: detail of an X509-SVID verification failure.
pub type ambient_svid_error = c_int;
pub const AMBIENT_SVID_OK: c_int = 0;
pub const AMBIENT_SVID_EMPTY_CHAIN: c_int = 1;
pub const AMBIENT_SVID_MALFORMED_CERTIFICATE: c_int = 2;
pub const AMBIENT_SVID_NO_URI_SAN: c_int = 3;
pub const AMBIENT_SVID_MULTIPLE_URI_SANS: c_int = 4;
pub const AMBIENT_SVID_INVALID_SPIFFE_ID: c_int = 5;
pub const AMBIENT_SVID_LEAF_ID_WITHOUT_PATH: c_int = 6;
pub const AMBIENT_SVID_LEAF_IS_CA: c_int = 7;
pub const AMBIENT_SVID_NO_KEY_USAGE: c_int = 8;
pub const AMBIENT_SVID_LEAF_KEY_CERT_SIGN: c_int = 9;
pub const AMBIENT_SVID_LEAF_CRL_SIGN: c_int = 10;
pub const AMBIENT_SVID_NO_DIGITAL_SIGNATURE: c_int = 11;
pub const AMBIENT_SVID_TRUST_DOMAIN_NOT_ALLOWED: c_int = 12;
pub const AMBIENT_SVID_NO_BUNDLE: c_int = 13;
pub const AMBIENT_SVID_EXPIRED: c_int = 14;
pub const AMBIENT_SVID_NOT_YET_VALID: c_int = 15;
pub const AMBIENT_SVID_UNTRUSTED: c_int = 16;
pub const AMBIENT_SVID_BAD_SIGNATURE: c_int = 17;
pub const AMBIENT_SVID_CHAIN_INVALID: c_int = 18;
pub const AMBIENT_SVID_UNEXPECTED_IDENTITY: c_int = 19;

/// `ambient_clock_fn`.
pub type ambient_clock_fn = Option<unsafe extern "C" fn(user_data: *mut c_void) -> i64>;

extern "C" {
    pub fn ambient_spiffe_id_parse(
        id: *const c_char,
        len: usize,
        out: *mut *mut ambient_spiffe_id,
    ) -> *mut ambient_error;
    pub fn ambient_spiffe_id_validate(
        id: *const c_char,
        len: usize,
        out_reason: *mut ambient_spiffe_id_error,
    ) -> c_int;
    pub fn ambient_spiffe_id_free(id: *mut ambient_spiffe_id);
    pub fn ambient_spiffe_id_get0_string(id: *const ambient_spiffe_id) -> *const c_char;
    pub fn ambient_spiffe_id_get0_trust_domain(id: *const ambient_spiffe_id) -> *const c_char;
    pub fn ambient_spiffe_id_get0_path(id: *const ambient_spiffe_id) -> *const c_char;

    pub fn ambient_istio_identity_parse(
        uri: *const c_char,
        len: usize,
        out: *mut *mut ambient_istio_identity,
    ) -> *mut ambient_error;
    pub fn ambient_istio_identity_free(id: *mut ambient_istio_identity);
    pub fn ambient_istio_identity_get0_trust_domain(
        id: *const ambient_istio_identity,
    ) -> *const c_char;
    pub fn ambient_istio_identity_get0_namespace(
        id: *const ambient_istio_identity,
    ) -> *const c_char;
    pub fn ambient_istio_identity_get0_service_account(
        id: *const ambient_istio_identity,
    ) -> *const c_char;

    pub fn ambient_trust_bundles_new(out: *mut *mut ambient_trust_bundles) -> *mut ambient_error;
    pub fn ambient_trust_bundles_free(b: *mut ambient_trust_bundles);
    pub fn ambient_trust_bundles_set_pem(
        b: *mut ambient_trust_bundles,
        trust_domain: *const c_char,
        pem: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_trust_bundles_set_spiffe_json(
        b: *mut ambient_trust_bundles,
        trust_domain: *const c_char,
        json: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_trust_bundles_set_bundle_map_json(
        b: *mut ambient_trust_bundles,
        json: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_trust_bundles_remove(
        b: *mut ambient_trust_bundles,
        trust_domain: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_trust_bundles_count(b: *const ambient_trust_bundles) -> usize;

    pub fn ambient_verify_options_new() -> *mut ambient_verify_options;
    pub fn ambient_verify_options_free(o: *mut ambient_verify_options);
    pub fn ambient_verify_options_add_expected_id(
        o: *mut ambient_verify_options,
        id: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_verify_options_add_trust_domain(
        o: *mut ambient_verify_options,
        trust_domain: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_verify_options_set_time(o: *mut ambient_verify_options, unix_seconds: i64);
    pub fn ambient_verify_options_set_clock(
        o: *mut ambient_verify_options,
        f: ambient_clock_fn,
        user_data: *mut c_void,
    );
    pub fn ambient_verify_options_set_clock_owned(
        o: *mut ambient_verify_options,
        f: ambient_clock_fn,
        user_data: *mut c_void,
        free_user_data: Option<unsafe extern "C" fn(user_data: *mut c_void)>,
    );

    pub fn ambient_svid_verifier_new(
        bundles: *mut ambient_trust_bundles,
        options: *const ambient_verify_options,
        out: *mut *mut ambient_svid_verifier,
    ) -> *mut ambient_error;
    pub fn ambient_svid_verifier_free(v: *mut ambient_svid_verifier);
    pub fn ambient_svid_verifier_verify_pem(
        v: *const ambient_svid_verifier,
        pem: *const c_char,
        len: usize,
        out_id: *mut *mut ambient_spiffe_id,
    ) -> *mut ambient_error;
    pub fn ambient_svid_verifier_verify_der(
        v: *const ambient_svid_verifier,
        certs: *const *const u8,
        lens: *const usize,
        n: usize,
        out_id: *mut *mut ambient_spiffe_id,
    ) -> *mut ambient_error;

    pub fn ambient_credentials_new_pem(
        chain_pem: *const c_char,
        chain_len: usize,
        key_pem: *const c_char,
        key_len: usize,
        out: *mut *mut ambient_credentials,
    ) -> *mut ambient_error;
    pub fn ambient_credentials_free(c: *mut ambient_credentials);
    pub fn ambient_credentials_rotate_pem(
        c: *mut ambient_credentials,
        chain_pem: *const c_char,
        chain_len: usize,
        key_pem: *const c_char,
        key_len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_credentials_get1_id(
        c: *const ambient_credentials,
        out: *mut *mut ambient_spiffe_id,
    ) -> *mut ambient_error;
    pub fn ambient_credentials_not_before(c: *const ambient_credentials) -> i64;
    pub fn ambient_credentials_not_after(c: *const ambient_credentials) -> i64;
    pub fn ambient_credentials_refresh_at(c: *const ambient_credentials) -> i64;

    pub fn ambient_ssl_ctx_set_verifier(
        ssl_ctx: *mut c_void,
        v: *const ambient_svid_verifier,
    ) -> *mut ambient_error;
    pub fn ambient_ssl_set_verifier(
        ssl: *mut c_void,
        v: *const ambient_svid_verifier,
    ) -> *mut ambient_error;
    pub fn ambient_ssl_ctx_use_credentials(
        ssl_ctx: *mut c_void,
        c: *mut ambient_credentials,
    ) -> *mut ambient_error;
    pub fn ambient_ssl_get1_peer_id(
        ssl: *const c_void,
        out: *mut *mut ambient_spiffe_id,
    ) -> *mut ambient_error;
    pub fn ambient_ssl_get1_verify_error(ssl: *const c_void) -> *mut ambient_error;
}

// ---- redirect.h --------------------------------------------------------

/// `ambient_redirect_backend`.
pub type ambient_redirect_backend = c_int;
pub const AMBIENT_REDIRECT_IPTABLES: ambient_redirect_backend = 0;
pub const AMBIENT_REDIRECT_NFTABLES: ambient_redirect_backend = 1;

/// Opaque `ambient_redirect_config`.
#[repr(C)]
pub struct ambient_redirect_config {
    _private: [u8; 0],
}

/// Opaque `ambient_redirect_drift`.
#[repr(C)]
pub struct ambient_redirect_drift {
    _private: [u8; 0],
}

/// Opaque `ambient_redirect_probes`.
#[repr(C)]
pub struct ambient_redirect_probes {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_redirect_config_new() -> *mut ambient_redirect_config;
    pub fn ambient_redirect_config_free(config: *mut ambient_redirect_config);
    pub fn ambient_redirect_config_parse_flags(
        config: *mut ambient_redirect_config,
        argc: c_int,
        argv: *const *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_backend(
        config: *mut ambient_redirect_config,
        backend: ambient_redirect_backend,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_host(
        config: *mut ambient_redirect_config,
        on: c_int,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_ipv6(
        config: *mut ambient_redirect_config,
        on: c_int,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_dns_capture(
        config: *mut ambient_redirect_config,
        on: c_int,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_pod_dns_capture(
        config: *mut ambient_redirect_config,
        value: c_int,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_bypass_inbound(
        config: *mut ambient_redirect_config,
        on: c_int,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_add_reroute_interface(
        config: *mut ambient_redirect_config,
        name: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_probe_snat_v4(
        config: *mut ambient_redirect_config,
        address: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_probe_snat_v6(
        config: *mut ambient_redirect_config,
        address: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_config_set_kubelet_uid(
        config: *mut ambient_redirect_config,
        uid: u32,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_render(
        config: *const ambient_redirect_config,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_render_family(
        config: *const ambient_redirect_config,
        family: c_int,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_apply(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_check(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
        out_drift: *mut *mut ambient_redirect_drift,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_drift_count(drift: *const ambient_redirect_drift) -> usize;
    pub fn ambient_redirect_drift_get0(
        drift: *const ambient_redirect_drift,
        i: usize,
    ) -> *const c_char;
    pub fn ambient_redirect_drift_free(drift: *mut ambient_redirect_drift);
    pub fn ambient_redirect_delete(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_probe_add(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
        address: *const c_char,
        pod_uid: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_probe_remove(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
        address: *const c_char,
        pod_uid: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_probe_list(
        config: *const ambient_redirect_config,
        ns: *const ambient_netns,
        out_probes: *mut *mut ambient_redirect_probes,
    ) -> *mut ambient_error;
    pub fn ambient_redirect_probes_count(probes: *const ambient_redirect_probes) -> usize;
    pub fn ambient_redirect_probes_get0_address(
        probes: *const ambient_redirect_probes,
        i: usize,
    ) -> *const c_char;
    pub fn ambient_redirect_probes_get0_pod_uid(
        probes: *const ambient_redirect_probes,
        i: usize,
    ) -> *const c_char;
    pub fn ambient_redirect_probes_free(probes: *mut ambient_redirect_probes);
}

// ---- netns.h -----------------------------------------------------------

/// Opaque `ambient_netns`.
#[repr(C)]
pub struct ambient_netns {
    _private: [u8; 0],
}

/// Opaque `ambient_pod_listener_options`.
#[repr(C)]
pub struct ambient_pod_listener_options {
    _private: [u8; 0],
}

/// Opaque `ambient_pod_listeners`.
#[repr(C)]
pub struct ambient_pod_listeners {
    _private: [u8; 0],
}

/// Opaque `ambient_zds_workload`.
#[repr(C)]
pub struct ambient_zds_workload {
    _private: [u8; 0],
}

/// Opaque `ambient_zds_proxy_options`.
#[repr(C)]
pub struct ambient_zds_proxy_options {
    _private: [u8; 0],
}

/// Opaque `ambient_zds_proxy`.
#[repr(C)]
pub struct ambient_zds_proxy {
    _private: [u8; 0],
}

/// Opaque `ambient_zds_agent_options`.
#[repr(C)]
pub struct ambient_zds_agent_options {
    _private: [u8; 0],
}

/// Opaque `ambient_zds_agent`.
#[repr(C)]
pub struct ambient_zds_agent {
    _private: [u8; 0],
}

/// `ambient_listener_kind`: which of a pod's listeners.
pub type ambient_listener_kind = c_int;
pub const AMBIENT_LISTENER_OUTBOUND: c_int = 0;
pub const AMBIENT_LISTENER_INBOUND_PLAINTEXT: c_int = 1;
pub const AMBIENT_LISTENER_INBOUND_HBONE: c_int = 2;
pub const AMBIENT_LISTENER_DNS_UDP: c_int = 3;
pub const AMBIENT_LISTENER_DNS_TCP: c_int = 4;

/// `ambient_transparency`.
pub type ambient_transparency = c_int;
pub const AMBIENT_TRANSPARENT_BEST_EFFORT: ambient_transparency = 0;
pub const AMBIENT_TRANSPARENT_REQUIRED: ambient_transparency = 1;
pub const AMBIENT_TRANSPARENT_OFF: ambient_transparency = 2;

/// `ambient_zds_event`.
pub type ambient_zds_event = c_int;
pub const AMBIENT_ZDS_SNAPSHOT_COMPLETE: ambient_zds_event = 0;
pub const AMBIENT_ZDS_DISCONNECTED: ambient_zds_event = 1;

/// `ambient_log_level`.
pub type ambient_log_level = c_int;
pub const AMBIENT_LOG_DEBUG: ambient_log_level = 0;
pub const AMBIENT_LOG_INFO: ambient_log_level = 1;
pub const AMBIENT_LOG_WARN: ambient_log_level = 2;
pub const AMBIENT_LOG_ERROR: ambient_log_level = 3;

/// `ambient_log_fn`.
pub type ambient_log_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        level: ambient_log_level,
        component: *const c_char,
        message: *const c_char,
        message_len: usize,
    ),
>;

/// `ambient_zds_add_fn`.
pub type ambient_zds_add_fn = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        uid: *const c_char,
        workload: *const ambient_zds_workload,
        netns: *mut ambient_netns,
        reason: *mut c_char,
        reason_cap: usize,
    ) -> c_int,
>;

/// `ambient_zds_remove_fn`.
pub type ambient_zds_remove_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, uid: *const c_char)>;

/// `ambient_zds_event_fn`.
pub type ambient_zds_event_fn = Option<
    unsafe extern "C" fn(user_data: *mut c_void, event: ambient_zds_event, detail: *const c_char),
>;

extern "C" {
    pub fn ambient_netns_open(
        name_or_path: *const c_char,
        out: *mut *mut ambient_netns,
    ) -> *mut ambient_error;
    pub fn ambient_netns_open_pid(pid: c_int, out: *mut *mut ambient_netns) -> *mut ambient_error;
    pub fn ambient_netns_open_fd(fd: c_int, out: *mut *mut ambient_netns) -> *mut ambient_error;
    pub fn ambient_netns_open_current(out: *mut *mut ambient_netns) -> *mut ambient_error;
    pub fn ambient_netns_new_unnamed(out: *mut *mut ambient_netns) -> *mut ambient_error;
    pub fn ambient_netns_free(ns: *mut ambient_netns);
    pub fn ambient_netns_fd(ns: *const ambient_netns) -> c_int;
    pub fn ambient_netns_id(ns: *const ambient_netns, dev: *mut u64, ino: *mut u64);
    pub fn ambient_netns_equal(a: *const ambient_netns, b: *const ambient_netns) -> c_int;
    pub fn ambient_netns_run(
        ns: *const ambient_netns,
        f: Option<unsafe extern "C" fn(user_data: *mut c_void) -> c_int>,
        user_data: *mut c_void,
        fn_result: *mut c_int,
    ) -> *mut ambient_error;
    pub fn ambient_netns_socket(
        ns: *const ambient_netns,
        domain: c_int,
        ty: c_int,
        protocol: c_int,
    ) -> c_int;
    pub fn ambient_netns_loopback_up(ns: *const ambient_netns) -> *mut ambient_error;

    pub fn ambient_listener_kind_name(kind: c_int) -> *const c_char;
    pub fn ambient_pod_listener_options_new() -> *mut ambient_pod_listener_options;
    pub fn ambient_pod_listener_options_free(opts: *mut ambient_pod_listener_options);
    pub fn ambient_pod_listener_options_set_mark(
        opts: *mut ambient_pod_listener_options,
        mark: u32,
    );
    pub fn ambient_pod_listener_options_set_dns(
        opts: *mut ambient_pod_listener_options,
        enabled: c_int,
    );
    pub fn ambient_pod_listener_options_set_reuse_port(
        opts: *mut ambient_pod_listener_options,
        enabled: c_int,
    );
    pub fn ambient_pod_listener_options_set_transparency(
        opts: *mut ambient_pod_listener_options,
        mode: ambient_transparency,
    );
    pub fn ambient_pod_listener_options_set_ports(
        opts: *mut ambient_pod_listener_options,
        outbound: u16,
        inbound_plaintext: u16,
        inbound_hbone: u16,
        dns: u16,
    );
    pub fn ambient_pod_listeners_open(
        ns: *const ambient_netns,
        opts: *const ambient_pod_listener_options,
        out: *mut *mut ambient_pod_listeners,
    ) -> *mut ambient_error;
    pub fn ambient_pod_listeners_free(set: *mut ambient_pod_listeners);
    pub fn ambient_pod_listeners_count(set: *const ambient_pod_listeners) -> usize;
    pub fn ambient_pod_listeners_fd(set: *const ambient_pod_listeners, index: usize) -> c_int;
    pub fn ambient_pod_listeners_kind(set: *const ambient_pod_listeners, index: usize) -> c_int;
    pub fn ambient_pod_listeners_address(
        set: *const ambient_pod_listeners,
        index: usize,
        buf: *mut c_char,
        cap: usize,
    ) -> c_int;
    pub fn ambient_original_destination(fd: c_int, addr: *mut c_void, cap: usize) -> c_int;
    pub fn ambient_netns_outbound_socket(
        ns: *const ambient_netns,
        family: c_int,
        mark: u32,
    ) -> c_int;
    pub fn ambient_netns_inbound_socket(
        ns: *const ambient_netns,
        client: *const c_void,
        client_len: usize,
        destination: *const c_void,
        destination_len: usize,
        mark: u32,
    ) -> c_int;

    pub fn ambient_zds_workload_name(w: *const ambient_zds_workload) -> *const c_char;
    pub fn ambient_zds_workload_namespace(w: *const ambient_zds_workload) -> *const c_char;
    pub fn ambient_zds_workload_service_account(w: *const ambient_zds_workload) -> *const c_char;

    pub fn ambient_zds_proxy_options_new() -> *mut ambient_zds_proxy_options;
    pub fn ambient_zds_proxy_options_free(opts: *mut ambient_zds_proxy_options);
    pub fn ambient_zds_proxy_options_set_socket_path(
        opts: *mut ambient_zds_proxy_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_zds_proxy_options_set_backoff(
        opts: *mut ambient_zds_proxy_options,
        initial_ms: u32,
        max_ms: u32,
    ) -> *mut ambient_error;
    pub fn ambient_zds_proxy_options_set_retry_interval(
        opts: *mut ambient_zds_proxy_options,
        interval_ms: u32,
    );
    pub fn ambient_zds_proxy_options_set_callbacks(
        opts: *mut ambient_zds_proxy_options,
        add: ambient_zds_add_fn,
        remove: ambient_zds_remove_fn,
        event: ambient_zds_event_fn,
        user_data: *mut c_void,
    );
    pub fn ambient_zds_proxy_options_set_log(
        opts: *mut ambient_zds_proxy_options,
        f: ambient_log_fn,
        user_data: *mut c_void,
    );
    pub fn ambient_zds_proxy_new(
        opts: *const ambient_zds_proxy_options,
        out: *mut *mut ambient_zds_proxy,
    ) -> *mut ambient_error;
    pub fn ambient_zds_proxy_start(proxy: *mut ambient_zds_proxy) -> *mut ambient_error;
    pub fn ambient_zds_proxy_stop(proxy: *mut ambient_zds_proxy);
    pub fn ambient_zds_proxy_free(proxy: *mut ambient_zds_proxy);
    pub fn ambient_zds_proxy_ready(proxy: *const ambient_zds_proxy) -> c_int;
    pub fn ambient_zds_proxy_workload_count(proxy: *const ambient_zds_proxy) -> usize;

    pub fn ambient_zds_agent_options_new() -> *mut ambient_zds_agent_options;
    pub fn ambient_zds_agent_options_free(opts: *mut ambient_zds_agent_options);
    pub fn ambient_zds_agent_options_set_socket_path(
        opts: *mut ambient_zds_agent_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_options_set_timeout(
        opts: *mut ambient_zds_agent_options,
        timeout_ms: u32,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_options_set_log(
        opts: *mut ambient_zds_agent_options,
        f: ambient_log_fn,
        user_data: *mut c_void,
    );
    pub fn ambient_zds_agent_new(
        opts: *const ambient_zds_agent_options,
        out: *mut *mut ambient_zds_agent,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_free(agent: *mut ambient_zds_agent);
    pub fn ambient_zds_agent_add(
        agent: *mut ambient_zds_agent,
        pod: *const ambient_workload_info,
        netns: *const ambient_netns,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_keep(
        agent: *mut ambient_zds_agent,
        uid: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_del(
        agent: *mut ambient_zds_agent,
        uid: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_zds_agent_proxy_count(agent: *const ambient_zds_agent) -> usize;
    pub fn ambient_zds_agent_wait_for_proxies(
        agent: *const ambient_zds_agent,
        n: usize,
        timeout_ms: u32,
    ) -> *mut ambient_error;
}

// ---- hbone.h -----------------------------------------------------------

/// `ambient_hbone_role`.
pub type ambient_hbone_role = c_int;
pub const AMBIENT_HBONE_CLIENT: ambient_hbone_role = 0;
pub const AMBIENT_HBONE_SERVER: ambient_hbone_role = 1;

/// `ambient_hbone_reset_code`: the HTTP/2 error code of a stream reset.
pub type ambient_hbone_reset_code = c_int;
pub const AMBIENT_HBONE_RESET_CANCEL: ambient_hbone_reset_code = 8;
pub const AMBIENT_HBONE_RESET_CONNECT_ERROR: ambient_hbone_reset_code = 10;

/// Opaque `ambient_hbone_tls`.
#[repr(C)]
pub struct ambient_hbone_tls {
    _private: [u8; 0],
}

/// Opaque `ambient_hbone_conn`.
#[repr(C)]
pub struct ambient_hbone_conn {
    _private: [u8; 0],
}

/// `ambient_hbone_header`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ambient_hbone_header {
    pub name: *const c_char,
    pub name_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// `ambient_hbone_event_type`.
pub type ambient_hbone_event_type = c_int;
pub const AMBIENT_HBONE_EVENT_HANDSHAKE_DONE: ambient_hbone_event_type = 0;
pub const AMBIENT_HBONE_EVENT_STREAM_REQUEST: ambient_hbone_event_type = 1;
pub const AMBIENT_HBONE_EVENT_STREAM_RESPONSE: ambient_hbone_event_type = 2;
pub const AMBIENT_HBONE_EVENT_STREAM_READABLE: ambient_hbone_event_type = 3;
pub const AMBIENT_HBONE_EVENT_STREAM_WRITABLE: ambient_hbone_event_type = 4;
pub const AMBIENT_HBONE_EVENT_STREAM_CLOSED: ambient_hbone_event_type = 5;
pub const AMBIENT_HBONE_EVENT_GOAWAY: ambient_hbone_event_type = 6;
pub const AMBIENT_HBONE_EVENT_CONNECTION_CLOSED: ambient_hbone_event_type = 7;

/// `ambient_hbone_event`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ambient_hbone_event {
    pub type_: ambient_hbone_event_type,
    pub stream: i32,
    pub http_status: c_int,
    pub code: c_int,
    pub message: *const c_char,
    pub message_len: usize,
    pub authority: *const c_char,
    pub authority_len: usize,
    pub n_headers: usize,
}

/// Opaque `ambient_hbone_tls_options`.
#[repr(C)]
pub struct ambient_hbone_tls_options {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_hbone_tls_options_new() -> *mut ambient_hbone_tls_options;
    pub fn ambient_hbone_tls_options_free(opts: *mut ambient_hbone_tls_options);
    pub fn ambient_hbone_tls_options_set_cert_chain_pem(
        opts: *mut ambient_hbone_tls_options,
        pem: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_options_set_private_key_pem(
        opts: *mut ambient_hbone_tls_options,
        pem: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_options_set_trust_bundle(
        opts: *mut ambient_hbone_tls_options,
        bundle: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_new(
        role: ambient_hbone_role,
        opts: *const ambient_hbone_tls_options,
        out: *mut *mut ambient_hbone_tls,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_new_from_files(
        role: ambient_hbone_role,
        cert_path: *const c_char,
        key_path: *const c_char,
        bundle_path: *const c_char,
        out: *mut *mut ambient_hbone_tls,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_new_from_ssl_ctx(
        role: ambient_hbone_role,
        ssl_ctx: *mut c_void,
        out: *mut *mut ambient_hbone_tls,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_tls_get0_identity(tls: *const ambient_hbone_tls) -> *const c_char;
    pub fn ambient_hbone_tls_free(tls: *mut ambient_hbone_tls);

    pub fn ambient_hbone_conn_new(
        tls: *const ambient_hbone_tls,
        expected_ids: *const *const c_char,
        n_expected: usize,
        out: *mut *mut ambient_hbone_conn,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_conn_free(conn: *mut ambient_hbone_conn);
    pub fn ambient_hbone_conn_start(conn: *mut ambient_hbone_conn, now_ns: u64);
    pub fn ambient_hbone_conn_receive(
        conn: *mut ambient_hbone_conn,
        data: *const u8,
        len: usize,
        now_ns: u64,
    ) -> c_int;
    pub fn ambient_hbone_conn_receive_eof(conn: *mut ambient_hbone_conn, now_ns: u64);
    pub fn ambient_hbone_conn_pending_output(
        conn: *mut ambient_hbone_conn,
        data: *mut *const u8,
        len: *mut usize,
    ) -> c_int;
    pub fn ambient_hbone_conn_consume_output(conn: *mut ambient_hbone_conn, n: usize);
    pub fn ambient_hbone_conn_next_deadline(conn: *const ambient_hbone_conn) -> u64;
    pub fn ambient_hbone_conn_on_timeout(conn: *mut ambient_hbone_conn, now_ns: u64);
    pub fn ambient_hbone_conn_poll_event(
        conn: *mut ambient_hbone_conn,
        event: *mut ambient_hbone_event,
    ) -> c_int;
    pub fn ambient_hbone_conn_request_header(
        conn: *const ambient_hbone_conn,
        index: usize,
        header: *mut ambient_hbone_header,
    ) -> c_int;
    pub fn ambient_hbone_conn_get0_peer_identity(conn: *const ambient_hbone_conn) -> *const c_char;
    pub fn ambient_hbone_conn_is_closed(conn: *const ambient_hbone_conn) -> c_int;
    pub fn ambient_hbone_conn_can_open_stream(conn: *const ambient_hbone_conn) -> c_int;
    pub fn ambient_hbone_conn_drain(conn: *mut ambient_hbone_conn);
    pub fn ambient_hbone_conn_open_stream(
        conn: *mut ambient_hbone_conn,
        authority: *const c_char,
        headers: *const ambient_hbone_header,
        n_headers: usize,
    ) -> i32;
    pub fn ambient_hbone_conn_accept_stream(conn: *mut ambient_hbone_conn, stream: i32) -> c_int;
    pub fn ambient_hbone_conn_reject_stream(
        conn: *mut ambient_hbone_conn,
        stream: i32,
        http_status: c_int,
    ) -> c_int;
    pub fn ambient_hbone_stream_write(
        conn: *mut ambient_hbone_conn,
        stream: i32,
        data: *const u8,
        len: usize,
    ) -> c_int;
    pub fn ambient_hbone_stream_shutdown_write(conn: *mut ambient_hbone_conn, stream: i32)
        -> c_int;
    pub fn ambient_hbone_stream_read(
        conn: *mut ambient_hbone_conn,
        stream: i32,
        buf: *mut u8,
        len: usize,
    ) -> c_int;
    pub fn ambient_hbone_stream_at_eof(conn: *const ambient_hbone_conn, stream: i32) -> c_int;
    pub fn ambient_hbone_stream_reset(conn: *mut ambient_hbone_conn, stream: i32) -> c_int;
    pub fn ambient_hbone_stream_reset_with(
        conn: *mut ambient_hbone_conn,
        stream: i32,
        code: ambient_hbone_reset_code,
    ) -> c_int;
    pub fn ambient_hbone_authority_check(text: *const c_char, len: usize) -> *mut ambient_error;
}

// ---- runtime.h ---------------------------------------------------------

/// Opaque `ambient_runtime_loop`.
#[repr(C)]
pub struct ambient_runtime_loop {
    _private: [u8; 0],
}

/// Opaque `ambient_hbone_server`.
#[repr(C)]
pub struct ambient_hbone_server {
    _private: [u8; 0],
}

/// Opaque `ambient_hbone_client`.
#[repr(C)]
pub struct ambient_hbone_client {
    _private: [u8; 0],
}

/// Opaque `ambient_hbone_forwarder`.
#[repr(C)]
pub struct ambient_hbone_forwarder {
    _private: [u8; 0],
}

/// Opaque `ambient_workload_info`.
#[repr(C)]
pub struct ambient_workload_info {
    _private: [u8; 0],
}

/// `ambient_workload_field`.
pub type ambient_workload_field = c_int;
pub const AMBIENT_WORKLOAD_UID: ambient_workload_field = 0;
pub const AMBIENT_WORKLOAD_NAME: ambient_workload_field = 1;
pub const AMBIENT_WORKLOAD_NAMESPACE: ambient_workload_field = 2;
pub const AMBIENT_WORKLOAD_SERVICE_ACCOUNT: ambient_workload_field = 3;
pub const AMBIENT_WORKLOAD_TRUST_DOMAIN: ambient_workload_field = 4;
pub const AMBIENT_WORKLOAD_TYPE: ambient_workload_field = 5;
pub const AMBIENT_WORKLOAD_CANONICAL_SERVICE: ambient_workload_field = 6;
pub const AMBIENT_WORKLOAD_CANONICAL_REVISION: ambient_workload_field = 7;
pub const AMBIENT_WORKLOAD_CLUSTER: ambient_workload_field = 8;
pub const AMBIENT_WORKLOAD_REGION: ambient_workload_field = 9;
pub const AMBIENT_WORKLOAD_ZONE: ambient_workload_field = 10;

/// Opaque `ambient_hbone_server_options`.
#[repr(C)]
pub struct ambient_hbone_server_options {
    _private: [u8; 0],
}

/// Opaque `ambient_hbone_client_options`.
#[repr(C)]
pub struct ambient_hbone_client_options {
    _private: [u8; 0],
}

/// `ambient_hbone_limit`.
pub type ambient_hbone_limit = c_int;
pub const AMBIENT_HBONE_MAX_CONNECTIONS: ambient_hbone_limit = 0;
pub const AMBIENT_HBONE_MAX_HANDSHAKES: ambient_hbone_limit = 1;
pub const AMBIENT_HBONE_SILENT_TIMEOUT_MS: ambient_hbone_limit = 2;
pub const AMBIENT_HBONE_MAX_PENDING_DIALS_PER_CONNECTION: ambient_hbone_limit = 3;
pub const AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY: ambient_hbone_limit = 4;

/// Opaque `ambient_hbone_target`.
#[repr(C)]
pub struct ambient_hbone_target {
    _private: [u8; 0],
}

/// `ambient_hbone_tunnel_done_fn`.
pub type ambient_hbone_tunnel_done_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        code: c_int,
        http_status: c_int,
        message: *const c_char,
    ),
>;

extern "C" {
    pub fn ambient_runtime_loop_new(out: *mut *mut ambient_runtime_loop) -> *mut ambient_error;
    pub fn ambient_runtime_loop_free(lp: *mut ambient_runtime_loop);
    pub fn ambient_runtime_loop_run(lp: *mut ambient_runtime_loop);
    pub fn ambient_runtime_loop_run_for(lp: *mut ambient_runtime_loop, ms: u64);
    pub fn ambient_runtime_loop_stop(lp: *mut ambient_runtime_loop);
    pub fn ambient_runtime_loop_post(
        lp: *mut ambient_runtime_loop,
        f: Option<unsafe extern "C" fn(user: *mut c_void)>,
        user: *mut c_void,
    ) -> c_int;

    pub fn ambient_workload_info_new() -> *mut ambient_workload_info;
    pub fn ambient_workload_info_free(info: *mut ambient_workload_info);
    pub fn ambient_workload_info_set(
        info: *mut ambient_workload_info,
        field: ambient_workload_field,
        value: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_workload_info_add_address(
        info: *mut ambient_workload_info,
        ip: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_workload_info_set_hbone(info: *mut ambient_workload_info, on: c_int);

    pub fn ambient_hbone_server_options_new() -> *mut ambient_hbone_server_options;
    pub fn ambient_hbone_server_options_free(opts: *mut ambient_hbone_server_options);
    pub fn ambient_hbone_server_options_set_listen(
        opts: *mut ambient_hbone_server_options,
        listen: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_server_options_add_allow(
        opts: *mut ambient_hbone_server_options,
        spiffe_id: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_server_options_set_log(
        opts: *mut ambient_hbone_server_options,
        log: ambient_log_fn,
        log_user: *mut c_void,
    );
    pub fn ambient_hbone_server_new(
        lp: *mut ambient_runtime_loop,
        tls: *const ambient_hbone_tls,
        opts: *const ambient_hbone_server_options,
        out: *mut *mut ambient_hbone_server,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_server_set_workload(
        server: *mut ambient_hbone_server,
        workload: *const ambient_workload_info,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_server_set_limit(
        server: *mut ambient_hbone_server,
        which: ambient_hbone_limit,
        value: u64,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_server_get0_address(server: *const ambient_hbone_server) -> *const c_char;
    pub fn ambient_hbone_server_metrics(
        server: *const ambient_hbone_server,
        buf: *mut c_char,
        len: usize,
    ) -> usize;
    pub fn ambient_hbone_server_free(server: *mut ambient_hbone_server);

    pub fn ambient_hbone_client_options_new() -> *mut ambient_hbone_client_options;
    pub fn ambient_hbone_client_options_free(opts: *mut ambient_hbone_client_options);
    pub fn ambient_hbone_client_options_set_log(
        opts: *mut ambient_hbone_client_options,
        log: ambient_log_fn,
        log_user: *mut c_void,
    );
    pub fn ambient_hbone_client_new(
        lp: *mut ambient_runtime_loop,
        tls: *const ambient_hbone_tls,
        opts: *const ambient_hbone_client_options,
        out: *mut *mut ambient_hbone_client,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_target_new() -> *mut ambient_hbone_target;
    pub fn ambient_hbone_target_free(target: *mut ambient_hbone_target);
    pub fn ambient_hbone_target_set_via(
        target: *mut ambient_hbone_target,
        via: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_target_set_authority(
        target: *mut ambient_hbone_target,
        authority: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_target_add_expected(
        target: *mut ambient_hbone_target,
        spiffe_id: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_client_set_source_workload(
        client: *mut ambient_hbone_client,
        workload: *const ambient_workload_info,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_client_tunnel(
        client: *mut ambient_hbone_client,
        target: *const ambient_hbone_target,
        in_fd: c_int,
        out_fd: c_int,
        done: ambient_hbone_tunnel_done_fn,
        done_user: *mut c_void,
    ) -> c_int;
    pub fn ambient_hbone_client_free(client: *mut ambient_hbone_client);

    pub fn ambient_hbone_forwarder_new(
        lp: *mut ambient_runtime_loop,
        client: *mut ambient_hbone_client,
        listen: *const c_char,
        target: *const ambient_hbone_target,
        out: *mut *mut ambient_hbone_forwarder,
    ) -> *mut ambient_error;
    pub fn ambient_hbone_forwarder_get0_address(
        forwarder: *const ambient_hbone_forwarder,
    ) -> *const c_char;
    pub fn ambient_hbone_forwarder_free(forwarder: *mut ambient_hbone_forwarder);
}

/// Opaque `ambient_node_proxy_options`.
#[repr(C)]
pub struct ambient_node_proxy_options {
    _private: [u8; 0],
}

/// Opaque `ambient_node_proxy`.
#[repr(C)]
pub struct ambient_node_proxy {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_node_proxy_options_new() -> *mut ambient_node_proxy_options;
    pub fn ambient_node_proxy_options_free(opts: *mut ambient_node_proxy_options);
    pub fn ambient_node_proxy_options_add_workload(
        opts: *mut ambient_node_proxy_options,
        workload: *const ambient_workload_info,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_options_add_trust_bundle_pem(
        opts: *mut ambient_node_proxy_options,
        trust_domain: *const c_char,
        pem: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_options_set_svid_pem(
        opts: *mut ambient_node_proxy_options,
        uid: *const c_char,
        chain_pem: *const c_char,
        chain_len: usize,
        key_pem: *const c_char,
        key_len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_options_set_policies_json(
        opts: *mut ambient_node_proxy_options,
        json: *const c_char,
        len: usize,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_options_set_dns(
        opts: *mut ambient_node_proxy_options,
        upstreams: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_dns_metrics(
        proxy: *const ambient_node_proxy,
        buf: *mut c_char,
        len: usize,
    ) -> usize;
    pub fn ambient_node_proxy_options_set_log(
        opts: *mut ambient_node_proxy_options,
        log: ambient_log_fn,
        log_user: *mut c_void,
    );
    pub fn ambient_node_proxy_new(
        lp: *mut ambient_runtime_loop,
        opts: *const ambient_node_proxy_options,
        out: *mut *mut ambient_node_proxy,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_add_pod(
        proxy: *mut ambient_node_proxy,
        pod: *const ambient_workload_info,
        netns: *const ambient_netns,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_remove_pod(
        proxy: *mut ambient_node_proxy,
        uid: *const c_char,
    ) -> c_int;
    pub fn ambient_node_proxy_pod_count(proxy: *const ambient_node_proxy) -> usize;
    pub fn ambient_node_proxy_start_zds(
        proxy: *mut ambient_node_proxy,
        socket_path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_free(proxy: *mut ambient_node_proxy);
}

// ---- xds.h -------------------------------------------------------------

/// `ambient_ca_state`: where one acquired identity's certificate stands.
pub type ambient_ca_state = c_int;
pub const AMBIENT_CA_INITIALIZING: ambient_ca_state = 0;
pub const AMBIENT_CA_AVAILABLE: ambient_ca_state = 1;
pub const AMBIENT_CA_UNAVAILABLE: ambient_ca_state = 2;

/// Opaque `ambient_ca_client_options`.
#[repr(C)]
pub struct ambient_ca_client_options {
    _private: [u8; 0],
}

/// Opaque `ambient_ca_client`.
#[repr(C)]
pub struct ambient_ca_client {
    _private: [u8; 0],
}

/// Opaque `ambient_xds_options`.
#[repr(C)]
pub struct ambient_xds_options {
    _private: [u8; 0],
}

/// Opaque `ambient_ca_certificate`.
#[repr(C)]
pub struct ambient_ca_certificate {
    _private: [u8; 0],
}

extern "C" {
    pub fn ambient_ca_client_options_new() -> *mut ambient_ca_client_options;
    pub fn ambient_ca_client_options_free(opts: *mut ambient_ca_client_options);
    pub fn ambient_ca_client_options_set_address(
        opts: *mut ambient_ca_client_options,
        address: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_roots_pem_file(
        opts: *mut ambient_ca_client_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_server_name(
        opts: *mut ambient_ca_client_options,
        server_name: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_token_file(
        opts: *mut ambient_ca_client_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_cluster_id(
        opts: *mut ambient_ca_client_options,
        cluster_id: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_timeout_ms(
        opts: *mut ambient_ca_client_options,
        ms: u64,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_validity_s(
        opts: *mut ambient_ca_client_options,
        seconds: u64,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_options_set_impersonate(
        opts: *mut ambient_ca_client_options,
        impersonate: c_int,
    );
    pub fn ambient_ca_client_new(
        lp: *mut ambient_runtime_loop,
        opts: *const ambient_ca_client_options,
        out: *mut *mut ambient_ca_client,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_acquire(
        client: *mut ambient_ca_client,
        spiffe_id: *const c_char,
        out: *mut *mut ambient_ca_certificate,
    ) -> *mut ambient_error;
    pub fn ambient_ca_client_free(client: *mut ambient_ca_client);
    pub fn ambient_ca_certificate_get0_id(cert: *const ambient_ca_certificate) -> *const c_char;
    pub fn ambient_ca_certificate_state(cert: *const ambient_ca_certificate) -> ambient_ca_state;
    pub fn ambient_ca_certificate_not_after(cert: *const ambient_ca_certificate) -> i64;
    pub fn ambient_ca_certificate_failures(cert: *const ambient_ca_certificate) -> u32;
    pub fn ambient_ca_certificate_last_error(
        cert: *const ambient_ca_certificate,
        buf: *mut c_char,
        cap: usize,
    ) -> usize;
    pub fn ambient_ca_certificate_chain_pem(
        cert: *const ambient_ca_certificate,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> *mut ambient_error;
    pub fn ambient_ca_certificate_key_pem(
        cert: *const ambient_ca_certificate,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> *mut ambient_error;
    pub fn ambient_ca_certificate_root_pem(
        cert: *const ambient_ca_certificate,
        buf: *mut c_char,
        cap: usize,
        out_len: *mut usize,
    ) -> *mut ambient_error;
    pub fn ambient_ca_certificate_get1_credentials(
        cert: *const ambient_ca_certificate,
        out: *mut *mut ambient_credentials,
    ) -> *mut ambient_error;
    pub fn ambient_ca_certificate_free(cert: *mut ambient_ca_certificate);
    pub fn ambient_xds_options_new() -> *mut ambient_xds_options;
    pub fn ambient_xds_options_free(opts: *mut ambient_xds_options);
    pub fn ambient_xds_options_set_address(
        opts: *mut ambient_xds_options,
        address: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_ca_address(
        opts: *mut ambient_xds_options,
        address: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_roots_pem_file(
        opts: *mut ambient_xds_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_server_name(
        opts: *mut ambient_xds_options,
        server_name: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_token_file(
        opts: *mut ambient_xds_options,
        path: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_cluster_id(
        opts: *mut ambient_xds_options,
        cluster_id: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_node_name(
        opts: *mut ambient_xds_options,
        node_name: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_pod(
        opts: *mut ambient_xds_options,
        name: *const c_char,
        ns: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_set_instance_ip(
        opts: *mut ambient_xds_options,
        ip: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_xds_options_add_metadata(
        opts: *mut ambient_xds_options,
        key: *const c_char,
        value: *const c_char,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_options_set_xds(
        opts: *mut ambient_node_proxy_options,
        xds: *const ambient_xds_options,
    ) -> *mut ambient_error;
    pub fn ambient_node_proxy_ready(proxy: *const ambient_node_proxy) -> c_int;
}
