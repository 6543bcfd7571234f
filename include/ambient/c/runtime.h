/* ambient/c/runtime.h: the optional epoll runtime and turnkey HBONE pieces.
 *
 * Object model. An ambient_runtime_loop is a single-threaded epoll event
 * loop. HBONE servers, pooled clients and forwarders are made on a loop and
 * run while the loop runs (ambient_runtime_loop_run). Each object keeps the
 * ambient_hbone_tls it was made with alive; the loop must outlive the objects
 * made on it (free them first).
 *  - ambient_hbone_server: accepts HBONE on a TCP address, authorizes each
 *    CONNECT (peer identity in the allow list, when one is given), connects
 *    to the :authority (numeric ip:port, 10 s timeout), answers 200 only
 *    then (401 not allowed, 503 unreachable), relays bytes.
 *  - ambient_hbone_client: pooled HBONE connections (one per server address
 *    and expected identities; at most 100 streams each; one dial at a time
 *    per key; closed after 5 idle minutes), and tunnels over them.
 *  - ambient_hbone_forwarder: a TCP listener whose every connection becomes
 *    one tunnel through a client.
 * Access log lines ("connection complete ..." in ztunnel's format, component
 * "access") and other log lines go to the ambient_log_fn given, on the loop
 * thread.
 *
 * Threads. Everything runs on the thread that runs the loop; objects are
 * made, used and freed there (or while the loop is not running). Only
 * ambient_runtime_loop_stop (also from a signal handler) and
 * ambient_runtime_loop_post may be called from any thread. */
#ifndef AMBIENT_C_RUNTIME_H_
#define AMBIENT_C_RUNTIME_H_

#include "ambient/c/common.h"
#include "ambient/c/hbone.h"
#include "ambient/c/netns.h"
#include "ambient/c/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ambient_runtime_loop ambient_runtime_loop;
typedef struct ambient_hbone_server ambient_hbone_server;
typedef struct ambient_hbone_client ambient_hbone_client;
typedef struct ambient_hbone_forwarder ambient_hbone_forwarder;

/* ambient_runtime_loop_new makes an event loop; `*out` owns it (free with
 * ambient_runtime_loop_free). Errors: AMBIENT_ERR_INTERNAL (epoll/eventfd
 * could not be created), AMBIENT_ERR_INVALID_ARGUMENT (NULL out). */
AMBIENT_EXPORT ambient_error *ambient_runtime_loop_new(ambient_runtime_loop **out);

/* ambient_runtime_loop_free releases `loop` (free the objects made on it
 * first). Whatever was still pending on the loop is released with it: a
 * dial in flight closes its socket. Tasks given to ambient_runtime_loop_post
 * that have not run yet run inside this call, on the calling thread, in the
 * order they were posted (so each task runs exactly once and can release
 * its `user`); they must not post to or run `loop`. No other thread may use
 * `loop` during or after this call. NULL is allowed. */
AMBIENT_EXPORT void ambient_runtime_loop_free(ambient_runtime_loop *loop);

/* ambient_runtime_loop_run dispatches events on the calling thread until
 * ambient_runtime_loop_stop is called. */
AMBIENT_EXPORT void ambient_runtime_loop_run(ambient_runtime_loop *loop);

/* ambient_runtime_loop_run_for dispatches events for at most `ms`
 * milliseconds (or until stopped). */
AMBIENT_EXPORT void ambient_runtime_loop_run_for(ambient_runtime_loop *loop, uint64_t ms);

/* ambient_runtime_loop_stop makes ambient_runtime_loop_run return soon. Any
 * thread; async-signal-safe. */
AMBIENT_EXPORT void ambient_runtime_loop_stop(ambient_runtime_loop *loop);

/* ambient_runtime_loop_post queues `fn(user)` to run on the loop's thread,
 * during a later ambient_runtime_loop_run/run_for iteration (tasks run in
 * the order they were posted; the loop wakes up for them). This is how
 * another thread gets work done on the loop, e.g. making or freeing objects
 * on it, without stopping it. If the loop is freed before the task ran, it
 * runs inside ambient_runtime_loop_free instead (see there): every accepted
 * task runs exactly once. Returns 0 when queued, AMBIENT_ERR_INVALID_ARGUMENT
 * (NULL loop or fn) or AMBIENT_ERR_RESOURCE_EXHAUSTED (out of memory); then
 * `fn` is never called. Any thread, but not concurrently with
 * ambient_runtime_loop_free. */
AMBIENT_EXPORT int ambient_runtime_loop_post(ambient_runtime_loop *loop, void (*fn)(void *user),
                                            void *user);

/* --- HBONE server --- */

/* ambient_hbone_server_options holds what ambient_hbone_server_new needs
 * besides the loop and TLS: the listen address, the allow list and the log
 * callback. */
typedef struct ambient_hbone_server_options ambient_hbone_server_options;

/* ambient_hbone_server_options_new returns options with no listen address
 * (one must be set), an empty allow list (every client that passed TLS
 * verification) and no log callback, or NULL when out of memory. Free with
 * ambient_hbone_server_options_free. Any thread. */
AMBIENT_EXPORT ambient_hbone_server_options *ambient_hbone_server_options_new(void);

/* ambient_hbone_server_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_hbone_server_options_free(ambient_hbone_server_options *opts);

/* ambient_hbone_server_options_set_listen sets the address to listen on
 * ("ip:port" or "[v6]:port"; port 0 picks a free one; copied, checked by
 * ambient_hbone_server_new). Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL
 * arguments. */
AMBIENT_EXPORT ambient_error *ambient_hbone_server_options_set_listen(
    ambient_hbone_server_options *opts, const char *listen);

/* ambient_hbone_server_options_add_allow appends a client SPIFFE ID allowed
 * to open tunnels (copied; checked by ambient_hbone_server_new). With no
 * entry every client that passed TLS verification is allowed. Each must be a
 * full SPIFFE ID ("spiffe://cluster.local/ns/default/sa/demo", not Istio's
 * scheme-less policy-principal form, no trailing slash). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_hbone_server_options_add_allow(
    ambient_hbone_server_options *opts, const char *spiffe_id);

/* ambient_hbone_server_options_set_log sets the log callback (NULL: no
 * logs); the server calls it on the loop thread. NULL `opts` is ignored. */
AMBIENT_EXPORT void ambient_hbone_server_options_set_log(ambient_hbone_server_options *opts,
                                                        ambient_log_fn log, void *log_user);

/* ambient_hbone_server_new listens as `opts` says with the server-role
 * `tls`. `opts` is copied (free it when you like). `*out` owns the server
 * (ambient_hbone_server_free). Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL
 * arguments, no or a bad listen address, a client-role tls, an allow entry
 * that is not a SPIFFE ID: the message names the entry and the reason),
 * AMBIENT_ERR_ALREADY_EXISTS (address in use), AMBIENT_ERR_PERMISSION_DENIED
 * (privileged port). Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_server_new(ambient_runtime_loop *loop,
                                                      const ambient_hbone_tls *tls,
                                                      const ambient_hbone_server_options *opts,
                                                      ambient_hbone_server **out);

/* ambient_hbone_server_get0_address returns the bound "ip:port"
 * (NUL-terminated, lent while `server` lives). */
AMBIENT_EXPORT const char *ambient_hbone_server_get0_address(const ambient_hbone_server *server);

/* ambient_hbone_server_metrics writes the istio_tcp_* counters in Prometheus
 * text format into `buf` (NUL-terminated, truncated to `len`) and returns
 * the full length (excluding the NUL), like snprintf. */
AMBIENT_EXPORT size_t ambient_hbone_server_metrics(const ambient_hbone_server *server, char *buf,
                                                  size_t len);

/* ambient_hbone_server_set_workload sets the server's own workload, for
 * CONNECTs answered after this call: it is sent as the `baggage` header of
 * every 200 (ztunnel's keys; nothing is sent while every field is unknown)
 * and recorded as the destination workload of the server's access lines and
 * metrics. Fields read from `workload`: NAME, TYPE ("deployment", "cronjob",
 * "pod" or "job"; unknown means deployment), NAMESPACE, CANONICAL_SERVICE,
 * CANONICAL_REVISION, CLUSTER, REGION and ZONE; unknown ones are not sent.
 * Calling it again replaces all of them. The values are copied. Errors
 * (nothing changed): AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments,
 * another TYPE, a value longer than 256 bytes or with control characters.
 * Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_server_set_workload(
    ambient_hbone_server *server, const ambient_workload_info *workload);

/* ambient_hbone_limit names a limit that keeps an HBONE server in service
 * under floods (ambient_hbone_server_set_limit). */
typedef enum ambient_hbone_limit {
  /* live connections (default 4096); at the cap the listener rests and new
   * connections wait in the kernel's backlog */
  AMBIENT_HBONE_MAX_CONNECTIONS = 0,
  /* connections still in their TLS handshake (default 256) */
  AMBIENT_HBONE_MAX_HANDSHAKES = 1,
  /* milliseconds after which a connection that has sent no byte is closed
   * (default 3000; for connections accepted afterwards) */
  AMBIENT_HBONE_SILENT_TIMEOUT_MS = 2,
  /* CONNECTs whose upstream connect is in flight, per connection (default
   * 100) and per client identity (default 1000); the excess is answered 503
   * with an access line */
  AMBIENT_HBONE_MAX_PENDING_DIALS_PER_CONNECTION = 3,
  AMBIENT_HBONE_MAX_PENDING_DIALS_PER_IDENTITY = 4
} ambient_hbone_limit;

/* ambient_hbone_server_set_limit sets limit `which` of `server` to `value`
 * (0 = no limit); the others keep their values. Lowering a cap closes
 * nothing. Errors (nothing changed): AMBIENT_ERR_INVALID_ARGUMENT for a NULL
 * `server`, a `which` that is no ambient_hbone_limit, or a value that does
 * not fit the limit (a timeout over 2^31 - 1 ms). Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_server_set_limit(ambient_hbone_server *server,
                                                            ambient_hbone_limit which,
                                                            uint64_t value);

/* ambient_hbone_server_free closes the listener and aborts its connections.
 * Its log callback is not called after this returns (access lines of the
 * aborted connections are dropped). NULL is allowed. Loop thread. */
AMBIENT_EXPORT void ambient_hbone_server_free(ambient_hbone_server *server);

/* ambient_hbone_client_options holds what ambient_hbone_client_new needs
 * besides the loop and TLS (today the log callback; pool settings will join
 * it without a new symbol). */
typedef struct ambient_hbone_client_options ambient_hbone_client_options;

/* ambient_hbone_client_options_new returns options with no log callback, or
 * NULL when out of memory. Free with ambient_hbone_client_options_free. Any
 * thread. */
AMBIENT_EXPORT ambient_hbone_client_options *ambient_hbone_client_options_new(void);

/* ambient_hbone_client_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_hbone_client_options_free(ambient_hbone_client_options *opts);

/* ambient_hbone_client_options_set_log sets the log callback (NULL: no
 * logs); the client calls it on the loop thread. NULL `opts` is ignored. */
AMBIENT_EXPORT void ambient_hbone_client_options_set_log(ambient_hbone_client_options *opts,
                                                        ambient_log_fn log, void *log_user);

/* ambient_hbone_client_new makes a pooled client with the client-role `tls`,
 * as `opts` says (copied: free it when you like). `*out` owns the client
 * (ambient_hbone_client_free). Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL
 * arguments, a server-role tls). (Before issue 11 it took the log pair
 * positionally; removed, the version being 0.x.) Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_client_new(ambient_runtime_loop *loop,
                                                      const ambient_hbone_tls *tls,
                                                      const ambient_hbone_client_options *opts,
                                                      ambient_hbone_client **out);

/* ambient_hbone_tunnel_done_fn learns how a tunnel ended: `code` is
 * AMBIENT_OK for a clean end, else a negative ambient_code with `message`
 * (NUL-terminated, valid during the call); `http_status` is the CONNECT
 * response (0 if none came). Called exactly once for every tunnel that
 * ambient_hbone_client_tunnel accepted, on the loop thread. When the client
 * is freed first, the code is AMBIENT_ERR_CANCELLED and the call comes
 * inside ambient_hbone_client_free for a tunnel still waiting for its
 * connection, else from the loop's next iteration (or inside
 * ambient_runtime_loop_free when the loop is freed before it runs again):
 * keep `user` and the fds valid until then. */
typedef void (*ambient_hbone_tunnel_done_fn)(void *user, int code, int http_status,
                                             const char *message);

/* ambient_hbone_target says where a tunnel goes: the HBONE server to go via
 * (numeric "ip:port" / "[v6]:port"), the :authority to ask it for
 * ("ip:port", "[v6]:port" or "host:port", port 1-65535) and the SPIFFE IDs
 * the server may have (none: any verified identity). An option object for
 * ambient_hbone_client_tunnel and ambient_hbone_forwarder_new, which check
 * and copy it. */
typedef struct ambient_hbone_target ambient_hbone_target;

/* ambient_hbone_target_new returns an empty target (via and authority must
 * be set), or NULL when out of memory. Free with ambient_hbone_target_free.
 * Any thread. */
AMBIENT_EXPORT ambient_hbone_target *ambient_hbone_target_new(void);

/* ambient_hbone_target_free releases `target`. NULL is allowed. */
AMBIENT_EXPORT void ambient_hbone_target_free(ambient_hbone_target *target);

/* ambient_hbone_target_set_via sets the HBONE server's address (copied).
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_hbone_target_set_via(ambient_hbone_target *target,
                                                          const char *via);

/* ambient_hbone_target_set_authority sets the CONNECT :authority (copied).
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_hbone_target_set_authority(ambient_hbone_target *target,
                                                                const char *authority);

/* ambient_hbone_target_add_expected appends a SPIFFE ID the server may have
 * (copied). Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error *ambient_hbone_target_add_expected(ambient_hbone_target *target,
                                                               const char *spiffe_id);

/* ambient_hbone_client_tunnel relays `in_fd` (read) and `out_fd` (written;
 * the same fd for a socket; stdin/stdout work too) through a new stream to
 * `target` (copied). The fds stay owned by the caller (close them after
 * `done`). Returns 0 (the outcome goes to `done`, exactly once), or
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments, a negative fd, a target
 * without via or authority, a via that is not a numeric "ip:port" /
 * "[v6]:port", or a malformed authority; then `done` is never called.
 * Positional on purpose: what a tunnel grows goes into ambient_hbone_target.
 * Loop thread. */
AMBIENT_EXPORT int ambient_hbone_client_tunnel(ambient_hbone_client *client,
                                              const ambient_hbone_target *target, int in_fd,
                                              int out_fd, ambient_hbone_tunnel_done_fn done,
                                              void *done_user);

/* ambient_hbone_client_set_source_workload sets the workload the client
 * speaks for, used by tunnels started after this call
 * (ambient_hbone_client_tunnel, and forwarders made after it): it is sent as
 * the CONNECT's `baggage` header (nothing while every field is unknown) and
 * recorded as the source workload of the client's access lines and
 * metrics. The destination workload of those records is read from the
 * `baggage` of the server's 200. Fields, copying and errors as
 * ambient_hbone_server_set_workload (NULL `client` instead of `server`).
 * Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_client_set_source_workload(
    ambient_hbone_client *client, const ambient_workload_info *workload);

/* ambient_hbone_client_free aborts the client's connections. Every tunnel
 * not ended yet gets `done` with AMBIENT_ERR_CANCELLED: inside this call
 * when it still waited for a connection, else from the loop's next
 * iteration or inside ambient_runtime_loop_free (see
 * ambient_hbone_tunnel_done_fn). A TCP connect still in flight is cancelled
 * inside this call (its socket is closed; it is not left to connect, be
 * refused or time out). The
 * client's log callback is not called after this returns (access lines of
 * the aborted tunnels are dropped; `done` still comes as described). NULL is
 * allowed. Loop thread. */
AMBIENT_EXPORT void ambient_hbone_client_free(ambient_hbone_client *client);

/* ambient_hbone_forwarder_new listens on `listen` and sends each accepted
 * connection through `client` to `target` (copied). `client` must outlive
 * the forwarder. Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments;
 * `listen` not a numeric address; a target without via or authority, or
 * with a malformed one), AMBIENT_ERR_ALREADY_EXISTS,
 * AMBIENT_ERR_PERMISSION_DENIED. Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_hbone_forwarder_new(ambient_runtime_loop *loop,
                                                         ambient_hbone_client *client,
                                                         const char *listen,
                                                         const ambient_hbone_target *target,
                                                         ambient_hbone_forwarder **out);

/* ambient_hbone_forwarder_get0_address returns the bound "ip:port" (lent). */
AMBIENT_EXPORT const char *ambient_hbone_forwarder_get0_address(
    const ambient_hbone_forwarder *forwarder);

/* ambient_hbone_forwarder_free closes the listener (tunnels already made
 * keep running on the client). NULL is allowed. Loop thread. */
AMBIENT_EXPORT void ambient_hbone_forwarder_free(ambient_hbone_forwarder *forwarder);

/* --- Node proxy (ztunnel's role, in-pod mode; ambient/runtime/node_proxy.h).
 *
 * An ambient_node_proxy runs on a loop and captures pods: for each one it
 * opens the in-pod listeners (15001, 15006, 15008) inside the pod's netns and
 * carries the pod's TCP over HBONE to workloads that speak it (plain TCP to
 * anything else), terminates HBONE on 15008 with the pod's SVID, authorizes
 * (policies, when given) and connects to the app from inside the pod keeping
 * the client's IP where the kernel allows. It learns the mesh's workloads,
 * trust bundles, SVIDs and policies from an ambient_node_proxy_options
 * (copied at ambient_node_proxy_new), and its pods from
 * ambient_node_proxy_add_pod or from a node agent over ZDS
 * (ambient_node_proxy_start_zds). Access log lines (component "access") and
 * others (components "node-proxy", "zds") go to the log callback. Needs
 * CAP_NET_ADMIN and CAP_SYS_ADMIN. */
typedef struct ambient_node_proxy_options ambient_node_proxy_options;
typedef struct ambient_node_proxy ambient_node_proxy;

/* ambient_node_proxy_options_new returns empty options (no workloads, no
 * bundles, no SVIDs, no policies: everything allowed), or NULL when out of
 * memory. Free with ambient_node_proxy_options_free. Any thread; one options
 * object must not be used from two threads at once. */
AMBIENT_EXPORT ambient_node_proxy_options *ambient_node_proxy_options_new(void);

/* ambient_node_proxy_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_node_proxy_options_free(ambient_node_proxy_options *opts);

/* ambient_node_proxy_options_add_workload adds (or replaces, by UID) a
 * workload of the mesh, read from `workload`: UID, NAME, NAMESPACE
 * (required), SERVICE_ACCOUNT (unknown: "default"), TRUST_DOMAIN (unknown:
 * "cluster.local"), CANONICAL_SERVICE, CANONICAL_REVISION, CLUSTER, its
 * addresses (numeric IPs) and whether it speaks HBONE; other fields are
 * ignored. Its identity is spiffe://TD/ns/NS/sa/SA. Errors (options
 * unchanged): AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments, an unknown
 * uid/name/namespace, an address that is not a numeric IP or belongs to
 * another workload, or an identity that is not a valid SPIFFE ID. */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_options_add_workload(
    ambient_node_proxy_options *opts, const ambient_workload_info *workload);

/* ambient_node_proxy_options_add_trust_bundle_pem sets the PEM roots (`len`
 * bytes) of `trust_domain`; peers of other trust domains are refused.
 * Errors (options unchanged): AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments,
 * a bad trust domain, no or unparsable certificates). */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_options_add_trust_bundle_pem(
    ambient_node_proxy_options *opts, const char *trust_domain, const char *pem, size_t len);

/* ambient_node_proxy_options_set_svid_pem sets the X509-SVID (PEM chain,
 * leaf first) and private key (PEM) the pod with `uid` uses; its SPIFFE ID
 * must be that workload's identity when the pod is added. Errors (options
 * unchanged): AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments, unparsable
 * chain or key, key not matching, no SPIFFE ID in the leaf). */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_options_set_svid_pem(
    ambient_node_proxy_options *opts, const char *uid, const char *chain_pem, size_t chain_len,
    const char *key_pem, size_t key_len);

/* ambient_node_proxy_options_set_policies_json replaces the authorization
 * policies with the Istio Authorizations in `json` (`len` bytes;
 * {"policies": [...]}, a list, or one policy; see ambient/c/authz.h). Errors
 * (options unchanged): AMBIENT_ERR_INVALID_ARGUMENT naming the bad place. */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_options_set_policies_json(
    ambient_node_proxy_options *opts, const char *json, size_t len);

/* ambient_node_proxy_options_set_dns switches the DNS proxy on (it is off
 * in new options): every pod captured afterwards also gets port 15053, UDP
 * and TCP on 127.0.0.1 and ::1 inside its netns (where istio-cni's DNS
 * capture sends the pod's port 53; see ambient/c/redirect.h). It answers A
 * and AAAA for the mesh's names (service hostnames and their Kubernetes short
 * forms, headless services, workload hostnames) from the workloads and
 * services the proxy knows, with TTL 30 s, and forwards every other query,
 * with the pod's ID and transport, to the resolvers in `upstreams`: a
 * comma-separated list of "ip:port", "[v6]:port" or bare IPs (port 53),
 * tried in order from inside the pod's netns. NULL or "" means the
 * nameservers of this host's /etc/resolv.conf, read now. Calling it again
 * replaces the list. Errors (options unchanged):
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL opts, an entry that is not an address;
 * the message names it), AMBIENT_ERR_NOT_FOUND (no readable
 * /etc/resolv.conf), AMBIENT_ERR_FAILED_PRECONDITION (it lists no
 * nameserver). Same threading as the other option setters. */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_options_set_dns(ambient_node_proxy_options *opts,
                                                                const char *upstreams);

/* ambient_node_proxy_options_set_log sets the log callback (NULL: no logs);
 * it is called on the loop thread only ("zds" lines included). */
AMBIENT_EXPORT void ambient_node_proxy_options_set_log(ambient_node_proxy_options *opts,
                                                      ambient_log_fn log, void *log_user);

/* ambient_node_proxy_new makes a node proxy on `loop` with a copy of `opts`
 * and no pods; `*out` owns it (ambient_node_proxy_free). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments). Loop thread (or while the
 * loop is not running). */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_new(ambient_runtime_loop *loop,
                                                    const ambient_node_proxy_options *opts,
                                                    ambient_node_proxy **out);

/* ambient_node_proxy_add_pod captures the pod `pod` describes (UID
 * required; NAME and NAMESPACE, when known, find the workload when its uid
 * does not; other fields are ignored) whose network namespace is `netns`
 * (the proxy keeps a duplicate of its descriptor; the caller keeps and frees
 * its own handle). Adding a captured uid again with the same netns does
 * nothing. Errors (nothing captured): AMBIENT_ERR_INVALID_ARGUMENT (NULL
 * proxy, pod or netns, no uid), AMBIENT_ERR_NOT_FOUND (unknown workload, no
 * SVID for it), AMBIENT_ERR_FAILED_PRECONDITION (the SVID is not the
 * workload's identity), AMBIENT_ERR_ALREADY_EXISTS (a port is taken in the
 * pod), AMBIENT_ERR_PERMISSION_DENIED, AMBIENT_ERR_RESOURCE_EXHAUSTED (out
 * of descriptors). Open the handle with ambient_netns_open (name or path),
 * ambient_netns_open_pid or ambient_netns_open_fd (ambient/c/netns.h). (It
 * took a raw descriptor before issue 11; removed, the version being 0.x.)
 * Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_add_pod(ambient_node_proxy *proxy,
                                                        const ambient_workload_info *pod,
                                                        const ambient_netns *netns);

/* ambient_node_proxy_remove_pod releases pod `uid` (its listeners close,
 * its HBONE connections are aborted). Returns 1 when it was captured, 0 when
 * not, AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. Loop thread. */
AMBIENT_EXPORT int ambient_node_proxy_remove_pod(ambient_node_proxy *proxy, const char *uid);

/* ambient_node_proxy_pod_count returns how many pods are captured (0 for
 * NULL). Loop thread. */
AMBIENT_EXPORT size_t ambient_node_proxy_pod_count(const ambient_node_proxy *proxy);

/* ambient_node_proxy_start_zds connects to the node agent's ZDS socket at
 * `socket_path` (and keeps reconnecting: 10 ms doubling to 15 s) on the
 * proxy's loop, without a thread of its own: the first attempt is made
 * inside this call, the rest (and every pod the agent adds or deletes,
 * captured or released and then acknowledged) while the loop runs. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments, a path too long for a unix
 * socket), AMBIENT_ERR_FAILED_PRECONDITION (already started). Loop thread. */
AMBIENT_EXPORT ambient_error *ambient_node_proxy_start_zds(ambient_node_proxy *proxy,
                                                          const char *socket_path);

/* ambient_node_proxy_dns_metrics writes the DNS proxy's counters
 * (istio_dns_requests_total, istio_dns_upstream_requests_total,
 * istio_dns_upstream_failures_total, the upstream latency histogram, and
 * ambient_dns_*; Prometheus text) into `buf` (NUL-terminated, truncated to
 * `len`; `buf` may be NULL when `len` is 0) and returns the full length
 * (excluding the NUL), like snprintf. Nothing (0) when `proxy` is NULL or its
 * options did not switch DNS on. Any thread. */
AMBIENT_EXPORT size_t ambient_node_proxy_dns_metrics(const ambient_node_proxy *proxy, char *buf,
                                                     size_t len);

/* ambient_node_proxy_free closes the ZDS connection (pods are not reported
 * to the agent), releases every pod and frees `proxy`, without waiting for
 * anything. Its log callback is not called after this returns. NULL is
 * allowed. Loop thread (or while the loop is not running). */
AMBIENT_EXPORT void ambient_node_proxy_free(ambient_node_proxy *proxy);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_RUNTIME_H_ */
