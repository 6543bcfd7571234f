/* ambient/c/identity.h: SPIFFE identities for C hosts.
 *
 * Object model. Six opaque objects, each made by a _new/_parse function and
 * released by its NULL-safe _free:
 *  - ambient_spiffe_id: a validated SPIFFE ID (spiffe://trust-domain/path);
 *  - ambient_istio_identity: Istio's (trust domain, namespace, service account)
 *    view, spiffe://TD/ns/NS/sa/SA, read the way ztunnel reads it;
 *  - ambient_trust_bundles: the X.509 authorities of one or more trust domains.
 *    Every update builds a new immutable snapshot and swaps it in atomically;
 *    verifiers made from it see the new snapshot on their next verification;
 *  - ambient_verify_options: the policy of a verifier (expected identities,
 *    allowed trust domains, clock);
 *  - ambient_svid_verifier: checks X509-SVID chains against bundles + policy;
 *  - ambient_credentials: our own certificate chain and private key, rotated
 *    atomically (new TLS handshakes use the new pair; live connections keep
 *    theirs).
 * Objects that use others keep their own reference: a verifier keeps its
 * bundles alive, an SSL_CTX keeps the verifier and credentials installed on
 * it, so the caller may free its handles at any time.
 *
 * TLS. ambient_ssl_ctx_set_verifier / ambient_ssl_ctx_use_credentials plug
 * into a host's own SSL_CTX (passed as void *: it must come from the same
 * TLS library libambient is linked with, ambient_tls_backend()). ambient never enables
 * TLS session resumption; a resumed session has no peer identity.
 *
 * Errors. Setup calls return an owned ambient_error* (NULL on success). Parse
 * failures of SPIFFE IDs carry an ambient_spiffe_id_error detail; every
 * verification failure carries an ambient_svid_error detail
 * (ambient_error_detail).
 *
 * Threads. ambient_spiffe_id, ambient_istio_identity, ambient_svid_verifier
 * and ambient_credentials/ambient_trust_bundles updates are safe from any
 * thread at once (bundles and credentials are internally synchronised; the
 * others are immutable). ambient_verify_options is single-threaded. */
#ifndef AMBIENT_C_IDENTITY_H_
#define AMBIENT_C_IDENTITY_H_

#include "ambient/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ambient_spiffe_id_error is the detail (ambient_error_detail) of a SPIFFE ID
 * or trust-domain parse failure. */
typedef enum ambient_spiffe_id_error {
  AMBIENT_SPIFFE_ID_OK = 0,
  AMBIENT_SPIFFE_ID_EMPTY = 1,                  /* the input is empty */
  AMBIENT_SPIFFE_ID_BAD_SCHEME = 2,             /* not starting with "spiffe://" */
  AMBIENT_SPIFFE_ID_MISSING_TRUST_DOMAIN = 3,   /* no trust domain */
  AMBIENT_SPIFFE_ID_BAD_TRUST_DOMAIN_CHAR = 4,  /* byte outside a-z 0-9 . - _ */
  AMBIENT_SPIFFE_ID_BAD_PATH_CHAR = 5,          /* byte outside a-z A-Z 0-9 . - _ */
  AMBIENT_SPIFFE_ID_EMPTY_SEGMENT = 6,          /* "//" in the path */
  AMBIENT_SPIFFE_ID_DOT_SEGMENT = 7,            /* "." or ".." segment */
  AMBIENT_SPIFFE_ID_TRAILING_SLASH = 8,         /* path ends with "/" */
  AMBIENT_SPIFFE_ID_TOO_LONG = 9,               /* more than 2048 bytes */
  AMBIENT_SPIFFE_ID_TRUST_DOMAIN_TOO_LONG = 10  /* trust domain over 255 bytes */
} ambient_spiffe_id_error;

/* ambient_svid_error is the detail (ambient_error_detail) of an X509-SVID
 * verification failure. The ambient_code is AMBIENT_ERR_PERMISSION_DENIED for
 * TRUST_DOMAIN_NOT_ALLOWED and UNEXPECTED_IDENTITY, AMBIENT_ERR_UNAUTHENTICATED
 * for the others (AMBIENT_ERR_INVALID_ARGUMENT for unreadable PEM). */
typedef enum ambient_svid_error {
  AMBIENT_SVID_OK = 0,
  AMBIENT_SVID_EMPTY_CHAIN = 1,              /* no certificate presented */
  AMBIENT_SVID_MALFORMED_CERTIFICATE = 2,    /* does not parse, bad extensions */
  AMBIENT_SVID_NO_URI_SAN = 3,               /* leaf has no URI SAN */
  AMBIENT_SVID_MULTIPLE_URI_SANS = 4,        /* leaf has more than one URI SAN */
  AMBIENT_SVID_INVALID_SPIFFE_ID = 5,        /* the URI SAN is no SPIFFE ID */
  AMBIENT_SVID_LEAF_ID_WITHOUT_PATH = 6,     /* leaf ID is a trust domain's ID */
  AMBIENT_SVID_LEAF_IS_CA = 7,               /* leaf has cA=true */
  AMBIENT_SVID_NO_KEY_USAGE = 8,             /* leaf has no keyUsage */
  AMBIENT_SVID_LEAF_KEY_CERT_SIGN = 9,       /* leaf keyUsage has keyCertSign */
  AMBIENT_SVID_LEAF_CRL_SIGN = 10,           /* leaf keyUsage has cRLSign */
  AMBIENT_SVID_NO_DIGITAL_SIGNATURE = 11,    /* leaf keyUsage lacks it */
  AMBIENT_SVID_TRUST_DOMAIN_NOT_ALLOWED = 12, /* policy refuses the trust domain */
  AMBIENT_SVID_NO_BUNDLE = 13,               /* no bundle for the trust domain */
  AMBIENT_SVID_EXPIRED = 14,                 /* a certificate has expired */
  AMBIENT_SVID_NOT_YET_VALID = 15,           /* a certificate is not yet valid */
  AMBIENT_SVID_UNTRUSTED = 16,               /* no path to the trust domain's CAs */
  AMBIENT_SVID_BAD_SIGNATURE = 17,           /* a signature does not verify */
  AMBIENT_SVID_CHAIN_INVALID = 18,           /* another path-validation failure */
  AMBIENT_SVID_UNEXPECTED_IDENTITY = 19      /* valid, but not an expected ID */
} ambient_svid_error;

/* ---- SPIFFE IDs -------------------------------------------------------- */

typedef struct ambient_spiffe_id ambient_spiffe_id;

/* ambient_spiffe_id_parse validates the `len` bytes at `id` as a SPIFFE ID
 * (go-spiffe's rules plus the 2048-byte / 255-byte limits) and on success
 * stores a new ambient_spiffe_id in `*out`, to be freed with
 * ambient_spiffe_id_free. Errors: AMBIENT_ERR_INVALID_ARGUMENT with an
 * ambient_spiffe_id_error detail and a message saying what is wrong and at
 * which offset (`*out` is then set to NULL). Any thread. */
AMBIENT_EXPORT ambient_error *ambient_spiffe_id_parse(const char *id, size_t len,
                                                      ambient_spiffe_id **out);

/* ambient_spiffe_id_validate is the allocation-free check for hot paths: it
 * returns 0 when the `len` bytes at `id` are a valid SPIFFE ID, else
 * AMBIENT_ERR_INVALID_ARGUMENT, and then stores the ambient_spiffe_id_error in
 * `*out_reason` when `out_reason` is not NULL. `id` may be NULL only when
 * `len` is 0. Any thread. */
AMBIENT_EXPORT int ambient_spiffe_id_validate(const char *id, size_t len,
                                              ambient_spiffe_id_error *out_reason);

/* ambient_spiffe_id_free releases `id`. NULL is allowed. */
AMBIENT_EXPORT void ambient_spiffe_id_free(ambient_spiffe_id *id);

/* ambient_spiffe_id_get0_string returns the whole ID, NUL-terminated; lent,
 * valid while `id` lives. */
AMBIENT_EXPORT const char *ambient_spiffe_id_get0_string(const ambient_spiffe_id *id);

/* ambient_spiffe_id_get0_trust_domain returns the trust domain name
 * ("example.org"), NUL-terminated; lent, valid while `id` lives. */
AMBIENT_EXPORT const char *ambient_spiffe_id_get0_trust_domain(const ambient_spiffe_id *id);

/* ambient_spiffe_id_get0_path returns the path ("" or "/a/b"),
 * NUL-terminated; lent, valid while `id` lives. */
AMBIENT_EXPORT const char *ambient_spiffe_id_get0_path(const ambient_spiffe_id *id);

/* ---- Istio identities -------------------------------------------------- */

typedef struct ambient_istio_identity ambient_istio_identity;

/* ambient_istio_identity_parse reads `len` bytes at `uri` as ztunnel does:
 * "spiffe://" then exactly TD/ns/NS/sa/SA (characters are not checked, empty
 * parts are accepted, as in ztunnel). On success `*out` is a new object for
 * ambient_istio_identity_free. Errors: AMBIENT_ERR_INVALID_ARGUMENT. */
AMBIENT_EXPORT ambient_error *ambient_istio_identity_parse(const char *uri, size_t len,
                                                           ambient_istio_identity **out);

/* ambient_istio_identity_free releases `id`. NULL is allowed. */
AMBIENT_EXPORT void ambient_istio_identity_free(ambient_istio_identity *id);

/* ambient_istio_identity_get0_trust_domain, _get0_namespace and
 * _get0_service_account return the parts, NUL-terminated, lent while `id`
 * lives. */
AMBIENT_EXPORT const char *ambient_istio_identity_get0_trust_domain(
    const ambient_istio_identity *id);
AMBIENT_EXPORT const char *ambient_istio_identity_get0_namespace(const ambient_istio_identity *id);
AMBIENT_EXPORT const char *ambient_istio_identity_get0_service_account(
    const ambient_istio_identity *id);

/* ---- Trust bundles ----------------------------------------------------- */

typedef struct ambient_trust_bundles ambient_trust_bundles;

/* ambient_trust_bundles_new stores in `*out` a new, empty set of trust
 * bundles, to be freed with ambient_trust_bundles_free. Errors:
 * AMBIENT_ERR_FAILED_PRECONDITION when the TLS library bound to the process
 * is not the one libambient was built with; AMBIENT_ERR_RESOURCE_EXHAUSTED. */
AMBIENT_EXPORT ambient_error *ambient_trust_bundles_new(ambient_trust_bundles **out);

/* ambient_trust_bundles_free drops the caller's reference; verifiers made
 * from `b` keep using it. NULL is allowed. */
AMBIENT_EXPORT void ambient_trust_bundles_free(ambient_trust_bundles *b);

/* ambient_trust_bundles_set_pem makes the CERTIFICATE blocks of the `len`
 * bytes at `pem` the authorities of `trust_domain` (a name or a SPIFFE ID,
 * NUL-terminated), replacing what that trust domain had. Errors
 * (AMBIENT_ERR_INVALID_ARGUMENT): bad trust domain, no certificate, a block
 * that is no certificate or does not parse. On error nothing changes. Any
 * thread. */
AMBIENT_EXPORT ambient_error *ambient_trust_bundles_set_pem(ambient_trust_bundles *b,
                                                            const char *trust_domain,
                                                            const char *pem, size_t len);

/* ambient_trust_bundles_set_spiffe_json is ambient_trust_bundles_set_pem for
 * a SPIFFE trust bundle (JWK Set: keys with "use": "x509-svid" and "x5c";
 * other keys ignored; "keys" required, may be empty; at most 32 levels of
 * nesting). Errors: AMBIENT_ERR_INVALID_ARGUMENT naming the problem. Nothing
 * changes on error. */
AMBIENT_EXPORT ambient_error *ambient_trust_bundles_set_spiffe_json(ambient_trust_bundles *b,
                                                                    const char *trust_domain,
                                                                    const char *json, size_t len);

/* ambient_trust_bundles_set_bundle_map_json replaces ALL trust domains of
 * `b` with those of a SPIFFE bundle map, {"trust_domains": {"td": bundle}}.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT; AMBIENT_ERR_ALREADY_EXISTS for a
 * trust domain listed twice. Nothing changes on error. */
AMBIENT_EXPORT ambient_error *ambient_trust_bundles_set_bundle_map_json(ambient_trust_bundles *b,
                                                                        const char *json,
                                                                        size_t len);

/* ambient_trust_bundles_remove drops `trust_domain`. Errors:
 * AMBIENT_ERR_NOT_FOUND when it had no bundle; AMBIENT_ERR_INVALID_ARGUMENT. */
AMBIENT_EXPORT ambient_error *ambient_trust_bundles_remove(ambient_trust_bundles *b,
                                                           const char *trust_domain);

/* ambient_trust_bundles_count returns how many trust domains `b` has now
 * (0 for NULL). */
AMBIENT_EXPORT size_t ambient_trust_bundles_count(const ambient_trust_bundles *b);

/* ---- Verification ------------------------------------------------------ */

typedef struct ambient_verify_options ambient_verify_options;

/* ambient_verify_options_new returns new options (any trust domain that has
 * a bundle, any identity, the system clock), or NULL when out of memory.
 * Free with ambient_verify_options_free. Any thread. */
AMBIENT_EXPORT ambient_verify_options *ambient_verify_options_new(void);

/* ambient_verify_options_free releases `o`. NULL is allowed. */
AMBIENT_EXPORT void ambient_verify_options_free(ambient_verify_options *o);

/* ambient_verify_options_add_expected_id adds a SPIFFE ID (`len` bytes at
 * `id`) the peer may have; once any is added the peer must be one of them
 * (ztunnel's client-side policy). Errors: AMBIENT_ERR_INVALID_ARGUMENT with
 * an ambient_spiffe_id_error detail. */
AMBIENT_EXPORT ambient_error *ambient_verify_options_add_expected_id(ambient_verify_options *o,
                                                                     const char *id, size_t len);

/* ambient_verify_options_add_trust_domain adds a trust domain the peer may
 * be in; once any is added the peer must be in one of them (ztunnel's
 * server-side policy: add our own). Errors: AMBIENT_ERR_INVALID_ARGUMENT. */
AMBIENT_EXPORT ambient_error *ambient_verify_options_add_trust_domain(ambient_verify_options *o,
                                                                      const char *trust_domain);

/* ambient_verify_options_set_time pins the verification time to
 * `unix_seconds` (for tests and offline checks); a negative value returns to
 * the system clock. */
AMBIENT_EXPORT void ambient_verify_options_set_time(ambient_verify_options *o,
                                                    int64_t unix_seconds);

/* ambient_clock_fn returns the current time in Unix seconds. */
typedef int64_t (*ambient_clock_fn)(void *user_data);

/* ambient_verify_options_set_clock makes verifiers call `fn(user_data)` for
 * the time, from whichever thread verifies; `user_data` must outlive them.
 * NULL `fn` returns to the system clock. */
AMBIENT_EXPORT void ambient_verify_options_set_clock(ambient_verify_options *o,
                                                     ambient_clock_fn fn, void *user_data);

/* ambient_verify_options_set_clock_owned is ambient_verify_options_set_clock
 * for a `user_data` that the options and the verifiers made from them own
 * together: a verifier (for example one installed on an SSL_CTX) can
 * outlive the options, so `free_user_data(user_data)` (when not NULL) is
 * called exactly once, when the last of them using this clock is gone (the
 * options freed or given another clock, and every verifier made from them
 * freed). It is also called at once, and the system clock used, when `fn` is
 * NULL, when `o` is NULL, or when out of memory: `user_data` always changes
 * hands. `fn` and `free_user_data` may be called from any thread that
 * verifies or frees. */
AMBIENT_EXPORT void ambient_verify_options_set_clock_owned(ambient_verify_options *o,
                                                           ambient_clock_fn fn, void *user_data,
                                                           void (*free_user_data)(void *));

typedef struct ambient_svid_verifier ambient_svid_verifier;

/* ambient_svid_verifier_new stores in `*out` a verifier reading `bundles`
 * (kept alive by the verifier) with a copy of `options` (NULL: defaults).
 * Free with ambient_svid_verifier_free. Errors: AMBIENT_ERR_INVALID_ARGUMENT
 * for NULL bundles; AMBIENT_ERR_FAILED_PRECONDITION when the TLS library is
 * not the one libambient was built with. */
AMBIENT_EXPORT ambient_error *ambient_svid_verifier_new(ambient_trust_bundles *bundles,
                                                        const ambient_verify_options *options,
                                                        ambient_svid_verifier **out);

/* ambient_svid_verifier_free drops the caller's reference. NULL is allowed. */
AMBIENT_EXPORT void ambient_svid_verifier_free(ambient_svid_verifier *v);

/* ambient_svid_verifier_verify_pem checks the PEM chain (`len` bytes at
 * `pem`, leaf first, then intermediates) and, when `out_id` is not NULL,
 * stores the peer's SPIFFE ID there (owned by the caller). Errors carry an
 * ambient_svid_error detail and a message naming the broken rule. Any
 * thread. */
AMBIENT_EXPORT ambient_error *ambient_svid_verifier_verify_pem(const ambient_svid_verifier *v,
                                                               const char *pem, size_t len,
                                                               ambient_spiffe_id **out_id);

/* ambient_svid_verifier_verify_der is ..._verify_pem for `n` DER
 * certificates, `certs[i]` of `lens[i]` bytes, leaf first. */
AMBIENT_EXPORT ambient_error *ambient_svid_verifier_verify_der(const ambient_svid_verifier *v,
                                                               const uint8_t *const *certs,
                                                               const size_t *lens, size_t n,
                                                               ambient_spiffe_id **out_id);

/* ---- Credentials ------------------------------------------------------- */

typedef struct ambient_credentials ambient_credentials;

/* ambient_credentials_new_pem stores in `*out` credentials made of a PEM
 * chain (leaf first) and a PEM private key (ECDSA P-256 or RSA >= 2048).
 * Errors (AMBIENT_ERR_INVALID_ARGUMENT): unreadable PEM, unsupported key,
 * key not matching the leaf, leaf without a single SPIFFE ID URI SAN. */
AMBIENT_EXPORT ambient_error *ambient_credentials_new_pem(const char *chain_pem, size_t chain_len,
                                                          const char *key_pem, size_t key_len,
                                                          ambient_credentials **out);

/* ambient_credentials_free drops the caller's reference (SSL_CTXs using the
 * credentials keep theirs). NULL is allowed. */
AMBIENT_EXPORT void ambient_credentials_free(ambient_credentials *c);

/* ambient_credentials_rotate_pem replaces the pair atomically: handshakes
 * that start afterwards present the new chain; established connections are
 * untouched. Same errors as ambient_credentials_new_pem; on error nothing
 * changes. Any thread. */
AMBIENT_EXPORT ambient_error *ambient_credentials_rotate_pem(ambient_credentials *c,
                                                             const char *chain_pem,
                                                             size_t chain_len,
                                                             const char *key_pem, size_t key_len);

/* ambient_credentials_get1_id stores a new copy of the current leaf's SPIFFE
 * ID in `*out` (free it). Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULLs. */
AMBIENT_EXPORT ambient_error *ambient_credentials_get1_id(const ambient_credentials *c,
                                                          ambient_spiffe_id **out);

/* ambient_credentials_not_before, _not_after and _refresh_at return the
 * current leaf's validity bounds and the time to renew it (half-way through
 * the validity, as ztunnel does), in Unix seconds; 0 for NULL. */
AMBIENT_EXPORT int64_t ambient_credentials_not_before(const ambient_credentials *c);
AMBIENT_EXPORT int64_t ambient_credentials_not_after(const ambient_credentials *c);
AMBIENT_EXPORT int64_t ambient_credentials_refresh_at(const ambient_credentials *c);

/* ---- TLS (a host's own SSL_CTX / SSL, passed as void *) ------------------ */

/* ambient_ssl_ctx_set_verifier makes the SSL_CTX `ssl_ctx` verify every peer
 * with `v` (BoringSSL custom verify; on OpenSSL 3 the SSL_CTX's
 * certificate-verify callback, which ambient_ssl_set_verifier also sets on
 * the SSL's SSL_CTX; a server then requires client
 * certificates). The SSL_CTX keeps `v` alive. Call before handshakes start.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULLs. */
AMBIENT_EXPORT ambient_error *ambient_ssl_ctx_set_verifier(void *ssl_ctx,
                                                           const ambient_svid_verifier *v);

/* ambient_ssl_set_verifier is ambient_ssl_ctx_set_verifier for one SSL
 * connection, overriding its SSL_CTX's verifier (e.g. per-destination
 * expected identities). */
AMBIENT_EXPORT ambient_error *ambient_ssl_set_verifier(void *ssl, const ambient_svid_verifier *v);

/* ambient_ssl_ctx_use_credentials makes every handshake of `ssl_ctx` present
 * the current pair of `c` (picked per handshake, so rotation applies to new
 * handshakes). The SSL_CTX keeps `c` alive. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULLs. */
AMBIENT_EXPORT ambient_error *ambient_ssl_ctx_use_credentials(void *ssl_ctx,
                                                              ambient_credentials *c);

/* ambient_ssl_get1_peer_id stores in `*out` a new copy of the SPIFFE ID that
 * ambient verified for the peer of `ssl`. Errors: AMBIENT_ERR_NOT_FOUND when
 * no verification by ambient succeeded on `ssl` (`*out` = NULL);
 * AMBIENT_ERR_INVALID_ARGUMENT for NULLs. Call from the thread owning `ssl`. */
AMBIENT_EXPORT ambient_error *ambient_ssl_get1_peer_id(const void *ssl, ambient_spiffe_id **out);

/* ambient_ssl_get1_verify_error returns why ambient rejected the peer of
 * `ssl` as a new error object (ambient_svid_error detail), or NULL when it
 * did not reject it. The caller frees the result. */
AMBIENT_EXPORT ambient_error *ambient_ssl_get1_verify_error(const void *ssl);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_IDENTITY_H_ */
