/* ambient/c/xds.h: Istio's control plane, as separable pieces.
 *
 * Object model. An ambient_ca_client talks to the Istio CA only (istiod's
 * /istio.v1.auth.IstioCertificateService/CreateCertificate, or a separate CA
 * such as ztunnel's CA_ADDRESS) on an ambient_runtime_loop, without xDS: a
 * proxy that only wants workload certificates from Istio uses just this. For
 * each identity the host acquires (ambient_ca_client_acquire) it makes a
 * P-256 key inside the process, asks the CA to sign a CSR naming that SPIFFE
 * ID, checks the answer (the key is ours, the leaf names exactly that
 * identity, the chain verifies up to the CA's root), and renews it half-way
 * through its validity, as ztunnel does; failed fetches are retried with a
 * per-identity backoff (1 s doubling to 150 s, +-20 %). At most 8 fetches are
 * in flight. Each acquisition is an ambient_ca_certificate handle; the
 * identity's certificate is dropped with its last handle (and with the
 * last ambient_credentials taken from them, see
 * ambient_ca_certificate_get1_credentials).
 *
 * Keys. A private key never leaves the process unless the host asks for it
 * with ambient_ca_certificate_key_pem; ambient_ca_certificate_get1_credentials
 * hands the pair to TLS (ambient_ssl_ctx_use_credentials) without exposing it.
 *
 * Threads. Like every loop-hosted object (ambient/c/runtime.h): made, used
 * and freed on the thread that runs the loop (or while it is not running).
 * The loop must outlive the client; handles and credentials may outlive the
 * client (they then keep the last certificate and are not renewed). */
#ifndef AMBIENT_C_XDS_H_
#define AMBIENT_C_XDS_H_

#include "ambient/c/common.h"
#include "ambient/c/identity.h"
#include "ambient/c/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ambient_ca_client_options ambient_ca_client_options;
typedef struct ambient_ca_client ambient_ca_client;
typedef struct ambient_ca_certificate ambient_ca_certificate;

/* ambient_ca_state is where one acquired identity's certificate stands. */
typedef enum ambient_ca_state {
  AMBIENT_CA_INITIALIZING = 0, /* no certificate yet; the first fetch is queued or in flight */
  AMBIENT_CA_AVAILABLE = 1,    /* a valid certificate is held */
  AMBIENT_CA_UNAVAILABLE = 2   /* the last fetch failed and no valid certificate is held */
} ambient_ca_state;

/* ambient_ca_client_options_new returns options with no address (one must
 * be set), plaintext (no roots file), server name "istiod.istio-system.svc",
 * no token file, cluster id "Kubernetes", a CA timeout of 10 s, a requested
 * validity of 24 h and impersonation on, or NULL when out of memory. Free
 * with ambient_ca_client_options_free. Any thread; one options object must
 * not be used from two threads at once. */
AMBIENT_EXPORT ambient_ca_client_options* ambient_ca_client_options_new(void);

/* ambient_ca_client_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_ca_client_options_free(ambient_ca_client_options* opts);

/* ambient_ca_client_options_set_address sets the CA's address ("host:port"
 * or "[v6]:port"; host a numeric IP or a DNS name resolved at each connect;
 * copied, checked by ambient_ca_client_new). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_address(ambient_ca_client_options* opts,
                                                                    const char* address);

/* ambient_ca_client_options_set_roots_pem_file switches TLS on: the CA's
 * certificate must chain to the PEM roots in the file at `path` (read by
 * ambient_ca_client_new) and name the server name. "" switches TLS off.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_roots_pem_file(
    ambient_ca_client_options* opts, const char* path);

/* ambient_ca_client_options_set_server_name sets the name the CA's
 * certificate must carry under TLS (copied). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_server_name(
    ambient_ca_client_options* opts, const char* server_name);

/* ambient_ca_client_options_set_token_file sets the bearer token file (e.g.
 * /var/run/secrets/tokens/istio-token), sent as `authorization: Bearer` on
 * every call and re-read when it changes; "" sends no token. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_token_file(
    ambient_ca_client_options* opts, const char* path);

/* ambient_ca_client_options_set_cluster_id sets the `clusterid` header.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_cluster_id(
    ambient_ca_client_options* opts, const char* cluster_id);

/* ambient_ca_client_options_set_timeout_ms sets how long a CreateCertificate
 * call may take before it fails (and is retried). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL opts or 0. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_timeout_ms(
    ambient_ca_client_options* opts, uint64_t ms);

/* ambient_ca_client_options_set_validity_s sets the validity asked of the CA
 * (ztunnel's SECRET_TTL; the CA may shorten it). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL opts or 0. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_options_set_validity_s(
    ambient_ca_client_options* opts, uint64_t seconds);

/* ambient_ca_client_options_set_impersonate says whether requests carry
 * the ImpersonatedIdentity metadata naming the identity (non-zero, the
 * default: a node proxy asking on its pods' behalf, as ztunnel does) or not
 * (0: the caller's own token must be of the identity asked for). NULL `opts`
 * is ignored. */
AMBIENT_EXPORT void ambient_ca_client_options_set_impersonate(ambient_ca_client_options* opts,
                                                              int impersonate);

/* ambient_ca_client_new makes a CA client on `loop` with a copy of `opts`
 * and starts connecting to the CA (the connection is kept up, reconnecting
 * after a backoff of 10 ms doubling to 15 s). `*out` owns it
 * (ambient_ca_client_free). Errors (nothing made): AMBIENT_ERR_INVALID_ARGUMENT
 * (NULL arguments, no or a malformed address, a roots file without
 * certificates; the message says which), AMBIENT_ERR_NOT_FOUND or
 * AMBIENT_ERR_PERMISSION_DENIED (an unreadable roots file, named),
 * AMBIENT_ERR_FAILED_PRECONDITION (the TLS library bound to the process is
 * not the one libambient was built with). Loop thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_new(ambient_runtime_loop* loop,
                                                    const ambient_ca_client_options* opts,
                                                    ambient_ca_client** out);

/* ambient_ca_client_acquire counts one user of the identity `spiffe_id`
 * ("spiffe://cluster.local/ns/default/sa/demo"; copied) in and stores the
 * handle of that use in `*out` (free with ambient_ca_certificate_free). A
 * new identity is fetched at once (the answer comes while the loop runs);
 * acquiring one already held shares its certificate. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments, an empty or malformed
 * SPIFFE ID; the message says why). Loop thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_client_acquire(ambient_ca_client* client,
                                                        const char* spiffe_id,
                                                        ambient_ca_certificate** out);

/* ambient_ca_client_free closes the connection to the CA; calls in flight
 * are abandoned. Handles and credentials still out keep their last
 * certificate and are not renewed any more; free them as usual. NULL is
 * allowed. Loop thread. */
AMBIENT_EXPORT void ambient_ca_client_free(ambient_ca_client* client);

/* ambient_ca_certificate_get0_id returns the SPIFFE ID acquired
 * (NUL-terminated, lent while `cert` lives; "" for NULL). */
AMBIENT_EXPORT const char* ambient_ca_certificate_get0_id(const ambient_ca_certificate* cert);

/* ambient_ca_certificate_state returns where the certificate stands (see
 * ambient_ca_state); AMBIENT_CA_UNAVAILABLE for NULL. After the client was
 * freed: AMBIENT_CA_AVAILABLE while the last certificate is still valid,
 * else AMBIENT_CA_UNAVAILABLE. Loop thread. */
AMBIENT_EXPORT ambient_ca_state ambient_ca_certificate_state(const ambient_ca_certificate* cert);

/* ambient_ca_certificate_not_after returns the end of the held
 * certificate's validity (Unix seconds), 0 when none is held or `cert` is
 * NULL. Loop thread. */
AMBIENT_EXPORT int64_t ambient_ca_certificate_not_after(const ambient_ca_certificate* cert);

/* ambient_ca_certificate_failures returns how many fetches of the identity
 * failed in a row (0 after a success; 0 for NULL or once the client was
 * freed). Loop thread. */
AMBIENT_EXPORT uint32_t ambient_ca_certificate_failures(const ambient_ca_certificate* cert);

/* ambient_ca_certificate_last_error copies why the last fetch failed (the
 * CA's or the connection's error, or why the answer was refused; "" when
 * the last fetch succeeded or none failed yet) into `buf` the way
 * ambient/c/common.h describes, and returns its full length. Loop thread. */
AMBIENT_EXPORT size_t ambient_ca_certificate_last_error(const ambient_ca_certificate* cert,
                                                        char* buf, size_t cap);

/* ambient_ca_certificate_chain_pem copies the held certificate chain (PEM,
 * leaf first, then the intermediates the CA sent; not the CA's root, which
 * ambient_ca_certificate_root_pem gives) into `buf` the way ambient/c/common.h describes, with its
 * full length in
 * `*out_len`. Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL cert or out_len),
 * AMBIENT_ERR_FAILED_PRECONDITION (no certificate held yet). Loop thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_certificate_chain_pem(const ambient_ca_certificate* cert,
                                                               char* buf, size_t cap,
                                                               size_t* out_len);

/* ambient_ca_certificate_key_pem copies the held certificate's private key
 * (PEM, PKCS#8) into `buf` as ambient_ca_certificate_chain_pem does; the
 * key matches the chain that call returns on the same loop iteration (a
 * renewal changes both between iterations). Only call it when the key must
 * leave ambient (prefer ambient_ca_certificate_get1_credentials), and wipe
 * the buffer after use. Errors as ambient_ca_certificate_chain_pem. Loop
 * thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_certificate_key_pem(const ambient_ca_certificate* cert,
                                                             char* buf, size_t cap,
                                                             size_t* out_len);

/* ambient_ca_certificate_root_pem copies the workload trust root the CA's
 * chain ended with (PEM; what peers' certificates of this CA chain to, the
 * trust bundle of the identity's trust domain as ztunnel takes it) into
 * `buf` as ambient_ca_certificate_chain_pem does. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL cert or out_len),
 * AMBIENT_ERR_FAILED_PRECONDITION (no certificate held yet, or the client
 * was freed). Loop thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_certificate_root_pem(const ambient_ca_certificate* cert,
                                                              char* buf, size_t cap,
                                                              size_t* out_len);

/* ambient_ca_certificate_get1_credentials stores in `*out` new credentials
 * (ambient/c/identity.h; free with ambient_credentials_free) that always
 * hold the identity's current certificate: an SSL_CTX given them with
 * ambient_ssl_ctx_use_credentials presents each renewal at its next
 * handshakes. They count as a use of the identity (it stays acquired and
 * renewed while they live, even after `cert` is freed). Before the first
 * certificate arrived they hold none (handshakes needing one fail). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. Loop thread. */
AMBIENT_EXPORT ambient_error* ambient_ca_certificate_get1_credentials(
    const ambient_ca_certificate* cert, ambient_credentials** out);

/* ambient_ca_certificate_free releases this use of the identity (its
 * certificate is dropped with the last use). NULL is allowed. Loop thread. */
AMBIENT_EXPORT void ambient_ca_certificate_free(ambient_ca_certificate* cert);

/* --- A node proxy fed by istiod (ambient/c/runtime.h's ambient_node_proxy).
 *
 * ambient_xds_options says how a node proxy reaches istiod, as ztunnel's
 * settings do: xDS (delta ADS: istio.workload.Address into the proxy's
 * workloads and services, istio.security.Authorization into its policies)
 * and the Istio CA (the captured pods' certificates, prefetched for this
 * node's HBONE workloads and renewed; the CA's roots become the trust
 * bundles). Given to ambient_node_proxy_options_set_xds, it makes the node
 * proxy run as examples/node-proxy does with --xds-address: pods handed over
 * (ZDS or ambient_node_proxy_add_pod) are matched to this node's xDS
 * workloads by namespace, name and service account (a pod not in xDS yet is
 * NOT_FOUND, retried by ZDS every second), open inbound connections are
 * checked again after every policy push (closed when now denied), and
 * ambient_node_proxy_ready includes xDS and the certificates. */
typedef struct ambient_xds_options ambient_xds_options;

/* ambient_xds_options_new returns options with no address and no node name
 * (both must be set), no separate CA (istiod is the CA), plaintext, server
 * name "istiod.istio-system.svc", no token file, cluster id "Kubernetes",
 * instance IP "1.1.1.1" (ztunnel's default), no pod name or namespace and
 * no metadata, or NULL when out of memory. Free with
 * ambient_xds_options_free. Any thread; one options object must not be
 * used from two threads at once. */
AMBIENT_EXPORT ambient_xds_options* ambient_xds_options_new(void);

/* ambient_xds_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_xds_options_free(ambient_xds_options* opts);

/* ambient_xds_options_set_address sets istiod's xDS address ("host:port" or
 * "[v6]:port", host a numeric IP or a DNS name; ztunnel's XDS_ADDRESS;
 * copied, checked when the node proxy is made). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_address(ambient_xds_options* opts,
                                                              const char* address);

/* ambient_xds_options_set_ca_address sets a separate CA's address
 * (ztunnel's CA_ADDRESS; same form, same TLS roots, token and cluster id);
 * "" or the xDS address: istiod is the CA. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_ca_address(ambient_xds_options* opts,
                                                                 const char* address);

/* ambient_xds_options_set_roots_pem_file switches TLS on for xDS and the
 * CA: their certificates must chain to the PEM roots in the file (read when
 * the node proxy is made) and name the server name. "" switches TLS off.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_roots_pem_file(ambient_xds_options* opts,
                                                                     const char* path);

/* ambient_xds_options_set_server_name sets the name istiod's certificate
 * must carry under TLS. Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL
 * arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_server_name(ambient_xds_options* opts,
                                                                  const char* server_name);

/* ambient_xds_options_set_token_file sets the bearer token file sent on
 * every xDS and CA call ("" sends none). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_token_file(ambient_xds_options* opts,
                                                                 const char* path);

/* ambient_xds_options_set_cluster_id sets the `clusterid` header. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_cluster_id(ambient_xds_options* opts,
                                                                 const char* cluster_id);

/* ambient_xds_options_set_node_name sets this node's name (ztunnel's
 * NODE_NAME): the xDS workloads whose `node` it is are this proxy's pods.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_node_name(ambient_xds_options* opts,
                                                                const char* node_name);

/* ambient_xds_options_set_pod sets the proxy's own pod name and namespace
 * (POD_NAME, POD_NAMESPACE; in the xDS node id). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_pod(ambient_xds_options* opts,
                                                          const char* name, const char* ns);

/* ambient_xds_options_set_instance_ip sets the proxy's own IP (INSTANCE_IP;
 * in the xDS node id). Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL
 * arguments or "". */
AMBIENT_EXPORT ambient_error* ambient_xds_options_set_instance_ip(ambient_xds_options* opts,
                                                                  const char* ip);

/* ambient_xds_options_add_metadata adds a string to the xDS node's metadata
 * (what ztunnel's ISTIO_META_<KEY>=value gives). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or an empty key. */
AMBIENT_EXPORT ambient_error* ambient_xds_options_add_metadata(ambient_xds_options* opts,
                                                               const char* key, const char* value);

/* ambient_node_proxy_options_set_xds makes node proxies made from `opts`
 * take their mesh and certificates from istiod as `xds` says (copied; see
 * above). Such options must carry no workloads, SVIDs or policies (xDS and
 * the CA supply them); trust bundles added are kept beside the CA's roots.
 * Errors (options unchanged): AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments,
 * no address or node name in `xds`). Same threading as the other option
 * setters. */
AMBIENT_EXPORT ambient_error* ambient_node_proxy_options_set_xds(ambient_node_proxy_options* opts,
                                                                 const ambient_xds_options* xds);

/* ambient_node_proxy_ready returns 1 when `proxy` is ready as ztunnel's
 * /healthz/ready means it: its ZDS session (when started) is connected,
 * has its snapshot applied and no pod pending a retry, and, with xDS, both
 * xDS types were ACKed once and every identity in use has a certificate;
 * else 0 (also for NULL). Loop thread. */
AMBIENT_EXPORT int ambient_node_proxy_ready(const ambient_node_proxy* proxy);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_XDS_H_ */
