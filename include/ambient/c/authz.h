/* ambient/c/authz.h: L4 authorization policy with ztunnel's semantics.
 *
 * Object model. An ambient_authz_store holds the policies in force (Istio
 * istio.security.Authorization resources, by key "namespace/name"). Updates
 * swap in a new immutable snapshot, so one store may be checked from any
 * number of threads while another thread updates it; every function on a
 * store is thread-safe. An ambient_authz_decision receives the outcome of a
 * check; it belongs to one thread at a time and may be reused.
 *
 * Which policies apply and how they combine (DENY first, then ALLOW,
 * dry-run only reported) is documented in ambient/authz/policy_store.h; the
 * match rules in ambient/authz/policy.h. */
#ifndef AMBIENT_C_AUTHZ_H_
#define AMBIENT_C_AUTHZ_H_

#include "ambient/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

typedef struct ambient_authz_store ambient_authz_store;
typedef struct ambient_authz_decision ambient_authz_decision;

/* ambient_authz_store_new returns a new, empty store (every connection is
 * allowed), or NULL when out of memory. Free it with ambient_authz_store_free. */
AMBIENT_EXPORT ambient_authz_store *ambient_authz_store_new(void);

/* ambient_authz_store_free releases `store`. NULL is allowed. */
AMBIENT_EXPORT void ambient_authz_store_free(ambient_authz_store *store);

/* ambient_authz_store_replace_json replaces every policy in `store` with the
 * policies in `json` (`json_len` bytes, UTF-8): {"policies": [...]}, a bare
 * array, or one Authorization, in the protobuf JSON mapping. On any error
 * (AMBIENT_ERR_INVALID_ARGUMENT: malformed JSON, an unknown field, a bad
 * address, port or enum, two policies with one key; the message names the
 * place) the store is unchanged. Returns NULL on success, else an owned error. */
AMBIENT_EXPORT ambient_error *ambient_authz_store_replace_json(ambient_authz_store *store,
                                                              const char *json, size_t json_len);

/* ambient_authz_store_upsert_proto adds one binary istio.security.Authorization
 * (as received over xDS), replacing the policy with the same key. Errors as
 * for ambient_authz_store_replace_json; the store is unchanged on error. */
AMBIENT_EXPORT ambient_error *ambient_authz_store_upsert_proto(ambient_authz_store *store,
                                                              const uint8_t *bytes, size_t len);

/* ambient_authz_store_upsert_json is ambient_authz_store_upsert_proto for one
 * Authorization in the JSON mapping. */
AMBIENT_EXPORT ambient_error *ambient_authz_store_upsert_json(ambient_authz_store *store,
                                                             const char *json, size_t json_len);

/* ambient_authz_store_remove removes the policy `name` of namespace `ns`.
 * Returns 1 if it was there, 0 if not, AMBIENT_ERR_INVALID_ARGUMENT for NULL
 * arguments. */
AMBIENT_EXPORT int ambient_authz_store_remove(ambient_authz_store *store, const char *ns,
                                              const char *name);

/* ambient_authz_store_size returns the number of policies (0 for NULL). */
AMBIENT_EXPORT size_t ambient_authz_store_size(const ambient_authz_store *store);

/* ambient_authz_decision_new returns a new decision holder, or NULL when out
 * of memory. Free it with ambient_authz_decision_free. */
AMBIENT_EXPORT ambient_authz_decision *ambient_authz_decision_new(void);

/* ambient_authz_decision_free releases `decision`. NULL is allowed. */
AMBIENT_EXPORT void ambient_authz_decision_free(ambient_authz_decision *decision);

/* ambient_authz_decision_get0_reason returns why the last check denied
 * ("explicitly denied by ns/name", "allow policies exist, but none allowed"),
 * or "" when it allowed. The string is lent until the next check with this
 * decision or its free. */
AMBIENT_EXPORT const char *ambient_authz_decision_get0_reason(const ambient_authz_decision *decision);

/* ambient_authz_decision_get0_policy returns the key of the policy that
 * decided the last check (the DENY that matched, or the ALLOW that allowed),
 * or "" when none did (no policy applied). Lent like get0_reason. */
AMBIENT_EXPORT const char *ambient_authz_decision_get0_policy(const ambient_authz_decision *decision);

/* ambient_authz_decision_num_dry_run_hits returns how many dry-run policies
 * matched in the last check; ambient_authz_decision_get0_dry_run_hit returns
 * the key of the `i`-th ("" when out of range), lent like get0_reason. */
AMBIENT_EXPORT size_t ambient_authz_decision_num_dry_run_hits(const ambient_authz_decision *decision);
AMBIENT_EXPORT const char *ambient_authz_decision_get0_dry_run_hit(const ambient_authz_decision *decision,
                                                                    size_t i);

/* ambient_authz_request describes one connection to check: the destination
 * workload (its namespace and the keys of the policies selecting it), the
 * source and real destination addresses and the peer's identity. A value
 * made once and reused: each setter replaces its field, so a host sets only
 * what changed between checks. Its fields are parsed when set, so a check
 * does no parsing. It belongs to one thread at a time. */
typedef struct ambient_authz_request ambient_authz_request;

/* ambient_authz_request_new returns an empty request (namespace, source and
 * destination must be set; no policies; plaintext: no identity), or NULL
 * when out of memory. Free with ambient_authz_request_free. */
AMBIENT_EXPORT ambient_authz_request *ambient_authz_request_new(void);

/* ambient_authz_request_free releases `req`. NULL is allowed. */
AMBIENT_EXPORT void ambient_authz_request_free(ambient_authz_request *req);

/* ambient_authz_request_set_workload_namespace sets the destination
 * workload's namespace (copied). Errors (request unchanged):
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_authz_request_set_workload_namespace(
    ambient_authz_request *req, const char *ns);

/* ambient_authz_request_set_workload_policies replaces the keys ("ns/name")
 * of the policies selecting the workload with the `n` strings of `keys`
 * (copied; `keys` may be NULL when `n` is 0, which clears them). Errors
 * (request unchanged): AMBIENT_ERR_INVALID_ARGUMENT for a NULL `req`, a NULL
 * `keys` with `n` > 0 or a NULL key. */
AMBIENT_EXPORT ambient_error *ambient_authz_request_set_workload_policies(
    ambient_authz_request *req, const char *const *keys, size_t n);

/* ambient_authz_request_set_source sets the source address and port: a
 * struct sockaddr_in or sockaddr_in6 (read, not kept). Errors (request
 * unchanged): AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or another
 * address family. */
AMBIENT_EXPORT ambient_error *ambient_authz_request_set_source(ambient_authz_request *req,
                                                              const struct sockaddr *src);

/* ambient_authz_request_set_destination sets the real destination (the pod
 * IP and target port, never 15008), as ambient_authz_request_set_source. */
AMBIENT_EXPORT ambient_error *ambient_authz_request_set_destination(ambient_authz_request *req,
                                                                   const struct sockaddr *dst);

/* ambient_authz_request_set_source_identity sets the peer's SPIFFE ID as
 * proven by mTLS, or clears it (NULL: plaintext). Errors (request
 * unchanged): AMBIENT_ERR_INVALID_ARGUMENT for a NULL `req` or an identity
 * that is not an Istio identity (spiffe://TD/ns/NS/sa/SA). */
AMBIENT_EXPORT ambient_error *ambient_authz_request_set_source_identity(
    ambient_authz_request *req, const char *spiffe_id);

/* ambient_authz_check decides whether the connection `req` describes may
 * reach its workload; `out_decision` (may be NULL) receives reason, policy
 * and dry-run hits. Returns 1 when allowed, 0 when denied, or a negative
 * ambient_code: AMBIENT_ERR_INVALID_ARGUMENT for a NULL store or request, or
 * a request whose namespace, source or destination was never set. It
 * replaces the positional form (namespace, policy keys, two sockaddrs,
 * identity: 8 parameters), removed in issue 11, the version being 0.x.
 * Thread-safe on one store (each thread with its own request). */
AMBIENT_EXPORT int ambient_authz_check(const ambient_authz_store *store,
                                       const ambient_authz_request *req,
                                       ambient_authz_decision *out_decision);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_AUTHZ_H_ */
