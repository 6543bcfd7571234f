/* ambient/c/netns.h: network namespaces, in-pod sockets and the ZDS handoff.
 *
 * Object model.
 * - ambient_netns is an open handle on a Linux network namespace (it owns
 *   one descriptor and keeps the namespace alive). Two handles are equal when
 *   they refer to the same namespace: same (device, inode) of the nsfs file.
 *   Sockets are created inside a namespace from the calling thread (enter,
 *   create, return), so a host's event loop never moves; they stay in that
 *   namespace for life. Entering needs CAP_SYS_ADMIN.
 * - ambient_pod_listeners is the set of listening sockets a node proxy opens
 *   inside one pod (TCP 15001 outbound, 15006 inbound plaintext, 15008 HBONE
 *   on the wildcard address; DNS 15053 UDP+TCP on 127.0.0.1 and ::1), with
 *   SO_MARK 0x539, SO_REUSEPORT and IP_TRANSPARENT (best effort). The set owns
 *   the sockets; the host polls and accepts on them with its own loop.
 * - ambient_zds_proxy and ambient_zds_agent are the two ends of istio's ZDS
 *   protocol (unix SOCK_SEQPACKET, istio.workload.zds protobuf messages, the
 *   pod's netns fd passed with SCM_RIGHTS): the proxy (ztunnel's role)
 *   connects to the agent (istio-cni's role) and receives pods; the agent
 *   hands pods out. Each is configured through an options object.
 *
 * Errors follow ambient/c/common.h: setup calls return an owned
 * ambient_error* (NULL on success); per-connection calls (socket making,
 * original destination) return a descriptor or length >= 0, or a negative
 * ambient_code. */
#ifndef AMBIENT_C_NETNS_H_
#define AMBIENT_C_NETNS_H_

#include "ambient/c/common.h"
#include "ambient/c/workload.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------- */
/* Namespace handles                                                       */

typedef struct ambient_netns ambient_netns;

/* ambient_netns_open opens a network namespace by name (a file under
 * /var/run/netns, as made by `ip netns add`) or, when `name_or_path`
 * contains '/', by path (e.g. /proc/1234/ns/net). On success stores a new
 * handle in `*out` (free with ambient_netns_free) and returns NULL. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments, a bad name, or a file that
 * is not a network namespace; AMBIENT_ERR_NOT_FOUND; AMBIENT_ERR_PERMISSION_DENIED.
 * `*out` is untouched on failure. Any thread. */
AMBIENT_EXPORT ambient_error *ambient_netns_open(const char *name_or_path, ambient_netns **out);

/* ambient_netns_open_pid opens /proc/`pid`/ns/net. Errors as
 * ambient_netns_open (AMBIENT_ERR_INVALID_ARGUMENT also for pid <= 0). */
AMBIENT_EXPORT ambient_error *ambient_netns_open_pid(int pid, ambient_netns **out);

/* ambient_netns_open_fd makes a handle from a duplicate of `fd` (the caller
 * keeps `fd` and still closes it). Errors: AMBIENT_ERR_INVALID_ARGUMENT when
 * `fd` is negative, or not a network namespace (a socket, a file, another
 * kind of namespace); AMBIENT_ERR_RESOURCE_EXHAUSTED when out of fds. */
AMBIENT_EXPORT ambient_error *ambient_netns_open_fd(int fd, ambient_netns **out);

/* ambient_netns_open_current opens the calling thread's own namespace. */
AMBIENT_EXPORT ambient_error *ambient_netns_open_current(ambient_netns **out);

/* ambient_netns_new_unnamed creates a brand new network namespace with no
 * name (only a loopback device, down). It lives while a handle, socket or
 * process refers to it; the kernel removes it afterwards. Errors:
 * AMBIENT_ERR_PERMISSION_DENIED without CAP_SYS_ADMIN. */
AMBIENT_EXPORT ambient_error *ambient_netns_new_unnamed(ambient_netns **out);

/* ambient_netns_free closes the handle. NULL is allowed. */
AMBIENT_EXPORT void ambient_netns_free(ambient_netns *ns);

/* ambient_netns_fd returns the handle's descriptor, lent: valid while `ns`
 * lives; do not close it. -1 for NULL. */
AMBIENT_EXPORT int ambient_netns_fd(const ambient_netns *ns);

/* ambient_netns_id stores the namespace identity (nsfs device and inode) in
 * `*dev` and `*ino` (either may be NULL). Zeros for a NULL `ns`. */
AMBIENT_EXPORT void ambient_netns_id(const ambient_netns *ns, uint64_t *dev, uint64_t *ino);

/* ambient_netns_equal returns 1 when `a` and `b` refer to the same
 * namespace, else 0 (also when either is NULL). */
AMBIENT_EXPORT int ambient_netns_equal(const ambient_netns *a, const ambient_netns *b);

/* ambient_netns_run calls `fn(user_data)` on the calling thread while the
 * thread is inside `ns`, then moves the thread back. fn's return value is
 * stored in `*fn_result` (if not NULL). Errors (fn did not run, unless
 * noted): AMBIENT_ERR_INVALID_ARGUMENT for NULL `ns`/`fn`;
 * AMBIENT_ERR_PERMISSION_DENIED; AMBIENT_ERR_INTERNAL if the thread could
 * not be moved back after fn ran (never seen in practice). */
AMBIENT_EXPORT ambient_error *ambient_netns_run(const ambient_netns *ns, int (*fn)(void *user_data),
                                                void *user_data, int *fn_result);

/* ambient_netns_socket creates socket(domain, type | SOCK_CLOEXEC, protocol)
 * inside `ns` and returns its descriptor, owned by the caller; or a negative
 * ambient_code (AMBIENT_ERR_INVALID_ARGUMENT for NULL `ns` or an unsupported
 * family/type, AMBIENT_ERR_PERMISSION_DENIED, AMBIENT_ERR_RESOURCE_EXHAUSTED).
 * Thread-safe. */
AMBIENT_EXPORT int ambient_netns_socket(const ambient_netns *ns, int domain, int type,
                                        int protocol);

/* ambient_netns_loopback_up sets the loopback device of `ns` up. */
AMBIENT_EXPORT ambient_error *ambient_netns_loopback_up(const ambient_netns *ns);

/* ---------------------------------------------------------------------- */
/* In-pod listeners and upstream sockets                                   */

typedef enum ambient_listener_kind {
  AMBIENT_LISTENER_OUTBOUND = 0,          /* TCP 15001, wildcard */
  AMBIENT_LISTENER_INBOUND_PLAINTEXT = 1, /* TCP 15006, wildcard */
  AMBIENT_LISTENER_INBOUND_HBONE = 2,     /* TCP 15008, wildcard */
  AMBIENT_LISTENER_DNS_UDP = 3,           /* UDP 15053, 127.0.0.1 and ::1 */
  AMBIENT_LISTENER_DNS_TCP = 4            /* TCP 15053, 127.0.0.1 and ::1 */
} ambient_listener_kind;

/* ambient_listener_kind_name returns "outbound", "inbound", "hbone",
 * "dns-udp", "dns-tcp", or "unknown". Static string. */
AMBIENT_EXPORT const char *ambient_listener_kind_name(int kind);

typedef enum ambient_transparency {
  AMBIENT_TRANSPARENT_BEST_EFFORT = 0, /* try IP_TRANSPARENT, go on without it */
  AMBIENT_TRANSPARENT_REQUIRED = 1,    /* fail when the kernel refuses it */
  AMBIENT_TRANSPARENT_OFF = 2
} ambient_transparency;

/* ambient_pod_listener_options configures ambient_pod_listeners_open.
 * Defaults: mark 0x539, DNS on, SO_REUSEPORT on, transparency best effort,
 * backlog 128, ports 15001/15006/15008/15053. */
typedef struct ambient_pod_listener_options ambient_pod_listener_options;

/* ambient_pod_listener_options_new returns new default options, or NULL
 * when out of memory. */
AMBIENT_EXPORT ambient_pod_listener_options *ambient_pod_listener_options_new(void);
/* ambient_pod_listener_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_pod_listener_options_free(ambient_pod_listener_options *opts);
/* ambient_pod_listener_options_set_mark sets the SO_MARK (0: none). */
AMBIENT_EXPORT void ambient_pod_listener_options_set_mark(ambient_pod_listener_options *opts,
                                                          uint32_t mark);
/* ambient_pod_listener_options_set_dns turns the DNS 15053 listeners on (1) or off (0). */
AMBIENT_EXPORT void ambient_pod_listener_options_set_dns(ambient_pod_listener_options *opts,
                                                         int enabled);
/* ambient_pod_listener_options_set_reuse_port turns SO_REUSEPORT on (1) or off (0). */
AMBIENT_EXPORT void ambient_pod_listener_options_set_reuse_port(
    ambient_pod_listener_options *opts, int enabled);
/* ambient_pod_listener_options_set_transparency picks an ambient_transparency. */
AMBIENT_EXPORT void ambient_pod_listener_options_set_transparency(
    ambient_pod_listener_options *opts, ambient_transparency mode);
/* ambient_pod_listener_options_set_ports overrides the four ports. */
AMBIENT_EXPORT void ambient_pod_listener_options_set_ports(ambient_pod_listener_options *opts,
                                                           uint16_t outbound,
                                                           uint16_t inbound_plaintext,
                                                           uint16_t inbound_hbone,
                                                           uint16_t dns);

typedef struct ambient_pod_listeners ambient_pod_listeners;

/* ambient_pod_listeners_open opens the listener set inside `ns` with `opts`
 * (NULL: defaults), all or nothing, and stores it in `*out` (free with
 * ambient_pod_listeners_free, which closes every socket). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL `ns`/`out`;
 * AMBIENT_ERR_ALREADY_EXISTS when a port is held without SO_REUSEPORT;
 * AMBIENT_ERR_PERMISSION_DENIED without CAP_NET_ADMIN / CAP_SYS_ADMIN.
 * Any thread. */
AMBIENT_EXPORT ambient_error *ambient_pod_listeners_open(const ambient_netns *ns,
                                                         const ambient_pod_listener_options *opts,
                                                         ambient_pod_listeners **out);
/* ambient_pod_listeners_free closes every socket of `set` and releases it.
 * NULL is allowed. */
AMBIENT_EXPORT void ambient_pod_listeners_free(ambient_pod_listeners *set);

/* ambient_pod_listeners_count returns how many sockets the set holds (0 for NULL). */
AMBIENT_EXPORT size_t ambient_pod_listeners_count(const ambient_pod_listeners *set);

/* ambient_pod_listeners_fd returns the non-blocking descriptor of socket
 * `index`, lent (valid while `set` lives), or AMBIENT_ERR_OUT_OF_RANGE. */
AMBIENT_EXPORT int ambient_pod_listeners_fd(const ambient_pod_listeners *set, size_t index);

/* ambient_pod_listeners_kind returns the ambient_listener_kind of socket
 * `index`, or AMBIENT_ERR_OUT_OF_RANGE. */
AMBIENT_EXPORT int ambient_pod_listeners_kind(const ambient_pod_listeners *set, size_t index);

/* ambient_pod_listeners_address writes the bound address of socket `index`
 * ("[::]:15001", "127.0.0.1:15053") NUL-terminated into `buf` of `cap`
 * bytes and returns its length; AMBIENT_ERR_OUT_OF_RANGE for a bad index or
 * a buffer too small (64 bytes always suffice). */
AMBIENT_EXPORT int ambient_pod_listeners_address(const ambient_pod_listeners *set, size_t index,
                                                 char *buf, size_t cap);

/* ambient_original_destination writes where the accepted, redirected TCP
 * connection `fd` was going (SO_ORIGINAL_DST, then IP6T_SO_ORIGINAL_DST,
 * else the socket's local address; IPv4-mapped IPv6 as IPv4) into `addr`
 * (a struct sockaddr_in or sockaddr_in6 of up to `cap` bytes) and returns
 * its length. Errors: AMBIENT_ERR_INVALID_ARGUMENT for a non-IP socket, a
 * NULL `addr` or `cap` too small (sizeof(struct sockaddr_in6) suffices).
 * Thread-safe. */
AMBIENT_EXPORT int ambient_original_destination(int fd, void *addr, size_t cap);

/* ambient_netns_outbound_socket makes a non-blocking TCP socket of `family`
 * (AF_INET or AF_INET6) inside `ns` with SO_MARK `mark` (0: none), for a
 * connection the proxy makes out of a pod; returns the descriptor (caller
 * owns it) or a negative ambient_code. Thread-safe. */
AMBIENT_EXPORT int ambient_netns_outbound_socket(const ambient_netns *ns, int family,
                                                 uint32_t mark);

/* ambient_netns_inbound_socket makes the socket for the last hop into a pod
 * that keeps the client's source IP: non-blocking TCP inside `ns`, SO_MARK
 * `mark`, IP_TRANSPARENT + IP_FREEBIND, bound to the client IP of `client`
 * (a sockaddr_in/in6 of `client_len` bytes) and port 0 — unless client and
 * `destination` share the IP or differ in family, when a plain marked socket
 * is made. Returns the descriptor (caller owns it) or a negative
 * ambient_code (AMBIENT_ERR_INVALID_ARGUMENT for bad addresses,
 * AMBIENT_ERR_PERMISSION_DENIED). The caller connects it. Positional on
 * purpose, in the shape of the socket calls (each sockaddr with its length).
 * Thread-safe. */
AMBIENT_EXPORT int ambient_netns_inbound_socket(const ambient_netns *ns, const void *client,
                                                size_t client_len, const void *destination,
                                                size_t destination_len, uint32_t mark);

/* ---------------------------------------------------------------------- */
/* ZDS: node proxy end                                                     */

/* ambient_zds_workload describes a pod in an add callback; lent for the
 * duration of the call. */
typedef struct ambient_zds_workload ambient_zds_workload;
/* ambient_zds_workload_name returns the pod's name (WorkloadInfo.name),
 * NUL-terminated, lent for the duration of the callback ("" for NULL). */
AMBIENT_EXPORT const char *ambient_zds_workload_name(const ambient_zds_workload *w);
/* ambient_zds_workload_namespace returns the pod's Kubernetes namespace,
 * lent like ambient_zds_workload_name. */
AMBIENT_EXPORT const char *ambient_zds_workload_namespace(const ambient_zds_workload *w);
/* ambient_zds_workload_service_account returns the pod's service account,
 * lent like ambient_zds_workload_name. */
AMBIENT_EXPORT const char *ambient_zds_workload_service_account(const ambient_zds_workload *w);

/* ambient_zds_add_fn is called when the agent adds pod `uid`. `netns` is
 * given to the callee, which must free it with ambient_netns_free (now or
 * later). Return 0 to accept the pod; any other value refuses it, and the
 * NUL-terminated text the callee wrote into `reason` (`reason_cap` bytes,
 * may be left empty) is sent to the agent as the ack's error. A refused pod
 * stays pending and the callback is called for it again every retry
 * interval (default 5 s, as ztunnel) until it accepts or the pod is deleted. */
typedef int (*ambient_zds_add_fn)(void *user_data, const char *uid,
                                  const ambient_zds_workload *workload, ambient_netns *netns,
                                  char *reason, size_t reason_cap);
/* ambient_zds_remove_fn is called when pod `uid` must no longer be served:
 * deleted by the agent, not named by a snapshot, or re-added with another
 * netns (an add follows). */
typedef void (*ambient_zds_remove_fn)(void *user_data, const char *uid);

typedef enum ambient_zds_event {
  AMBIENT_ZDS_SNAPSHOT_COMPLETE = 0, /* the agent's snapshot was applied: ready */
  AMBIENT_ZDS_DISCONNECTED = 1       /* the connection to the agent ended: not ready */
} ambient_zds_event;
/* ambient_zds_event_fn reports an ambient_zds_event; `detail` is a lent
 * NUL-terminated explanation ("" when none). */
typedef void (*ambient_zds_event_fn)(void *user_data, ambient_zds_event event,
                                     const char *detail);

/* ambient_zds_proxy_options configures a proxy. Defaults: socket
 * /var/run/ztunnel/ztunnel.sock, backoff 10 ms doubling to 15 s, refused
 * pods retried every 5 s, no log, no callbacks (ambient_zds_proxy_new requires an add and a remove callback). */
typedef struct ambient_zds_proxy_options ambient_zds_proxy_options;
/* ambient_zds_proxy_options_new returns default options, or NULL when out of memory. */
AMBIENT_EXPORT ambient_zds_proxy_options *ambient_zds_proxy_options_new(void);
/* ambient_zds_proxy_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_zds_proxy_options_free(ambient_zds_proxy_options *opts);
/* ambient_zds_proxy_options_set_socket_path copies `path`. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or a path longer than 107 bytes. */
AMBIENT_EXPORT ambient_error *ambient_zds_proxy_options_set_socket_path(
    ambient_zds_proxy_options *opts, const char *path);
/* ambient_zds_proxy_options_set_backoff sets the reconnect backoff: first
 * wait `initial_ms`, doubling up to `max_ms`. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT unless 0 < initial_ms <= max_ms. */
AMBIENT_EXPORT ambient_error *ambient_zds_proxy_options_set_backoff(
    ambient_zds_proxy_options *opts, uint32_t initial_ms, uint32_t max_ms);
/* ambient_zds_proxy_options_set_retry_interval sets how often a pod the
 * add callback refused is offered to it again while connected; 0 disables
 * retries (a refused pod is forgotten). Default 5000 ms. */
AMBIENT_EXPORT void ambient_zds_proxy_options_set_retry_interval(ambient_zds_proxy_options *opts,
                                                                 uint32_t interval_ms);
/* ambient_zds_proxy_options_set_callbacks sets the pod callbacks (`event`
 * may be NULL) and the `user_data` passed to them. They are called from the
 * proxy's own thread, one at a time. */
AMBIENT_EXPORT void ambient_zds_proxy_options_set_callbacks(ambient_zds_proxy_options *opts,
                                                            ambient_zds_add_fn add,
                                                            ambient_zds_remove_fn remove,
                                                            ambient_zds_event_fn event,
                                                            void *user_data);
/* ambient_zds_proxy_options_set_log installs a log sink (component "zds"),
 * called from the proxy's thread. NULL `fn` removes it. */
AMBIENT_EXPORT void ambient_zds_proxy_options_set_log(ambient_zds_proxy_options *opts,
                                                      ambient_log_fn fn, void *user_data);

typedef struct ambient_zds_proxy ambient_zds_proxy;

/* ambient_zds_proxy_new makes a proxy from `opts` (copied; `opts` may be
 * freed afterwards) and stores it in `*out`; it does not connect yet.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments or missing
 * add/remove callbacks. */
AMBIENT_EXPORT ambient_error *ambient_zds_proxy_new(const ambient_zds_proxy_options *opts,
                                                    ambient_zds_proxy **out);
/* ambient_zds_proxy_start starts the proxy's thread: connect, hello, serve,
 * reconnect with backoff, until stopped. Errors:
 * AMBIENT_ERR_FAILED_PRECONDITION when already started. */
AMBIENT_EXPORT ambient_error *ambient_zds_proxy_start(ambient_zds_proxy *proxy);
/* ambient_zds_proxy_stop closes the connection and joins the thread; pods
 * are not removed (no remove callbacks). Idempotent; NULL is allowed. Do not
 * call it from a callback. */
AMBIENT_EXPORT void ambient_zds_proxy_stop(ambient_zds_proxy *proxy);
/* ambient_zds_proxy_free stops and releases the proxy. NULL is allowed. */
AMBIENT_EXPORT void ambient_zds_proxy_free(ambient_zds_proxy *proxy);
/* ambient_zds_proxy_ready returns 1 when the proxy is ready in ztunnel's
 * sense (connected, the agent's snapshot applied, no refused pod pending a
 * retry), else 0. Any thread. */
AMBIENT_EXPORT int ambient_zds_proxy_ready(const ambient_zds_proxy *proxy);
/* ambient_zds_proxy_workload_count returns how many pods are being served. Any thread. */
AMBIENT_EXPORT size_t ambient_zds_proxy_workload_count(const ambient_zds_proxy *proxy);

/* ---------------------------------------------------------------------- */
/* ZDS: node agent end                                                     */

/* ambient_zds_agent_options configures an agent. Defaults: socket
 * /var/run/ztunnel/ztunnel.sock, 5 s per message and ack, no log. */
typedef struct ambient_zds_agent_options ambient_zds_agent_options;
/* ambient_zds_agent_options_new returns default options, or NULL when out of memory. */
AMBIENT_EXPORT ambient_zds_agent_options *ambient_zds_agent_options_new(void);
/* ambient_zds_agent_options_free releases `opts`. NULL is allowed. */
AMBIENT_EXPORT void ambient_zds_agent_options_free(ambient_zds_agent_options *opts);
/* ambient_zds_agent_options_set_socket_path copies `path`. Errors as for the proxy. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_options_set_socket_path(
    ambient_zds_agent_options *opts, const char *path);
/* ambient_zds_agent_options_set_timeout sets the per-message/ack timeout.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT for 0. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_options_set_timeout(
    ambient_zds_agent_options *opts, uint32_t timeout_ms);
/* ambient_zds_agent_options_set_log installs a log sink (component "zds"),
 * called from the agent's thread and from callers of its functions, at times
 * with the agent's lock held: it must not call ambient_zds_agent_* itself. */
AMBIENT_EXPORT void ambient_zds_agent_options_set_log(ambient_zds_agent_options *opts,
                                                      ambient_log_fn fn, void *user_data);

typedef struct ambient_zds_agent ambient_zds_agent;

/* ambient_zds_agent_new listens on the options' socket path (replacing a
 * stale socket file) and starts accepting proxies; stores the agent in
 * `*out`. Errors: AMBIENT_ERR_INVALID_ARGUMENT; AMBIENT_ERR_ALREADY_EXISTS
 * when a non-socket file is in the way; AMBIENT_ERR_NOT_FOUND when the
 * directory is missing; AMBIENT_ERR_PERMISSION_DENIED. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_new(const ambient_zds_agent_options *opts,
                                                    ambient_zds_agent **out);
/* ambient_zds_agent_free stops the agent, closes every connection and
 * removes the socket file. NULL is allowed. */
AMBIENT_EXPORT void ambient_zds_agent_free(ambient_zds_agent *agent);
/* ambient_zds_agent_add records the pod `pod` describes (read: UID,
 * required; NAME, NAMESPACE and SERVICE_ACCOUNT, unknown ones sent empty;
 * other fields are ignored) with a duplicate of `netns`'s descriptor, and
 * sends it to the newest proxy, waiting for the ack. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments, no uid, text not UTF-8,
 * message over 1024 bytes); AMBIENT_ERR_UNAVAILABLE when no proxy is
 * connected (the pod is still recorded and goes out with the next snapshot)
 * or it failed; AMBIENT_ERR_ABORTED with the proxy's reason when it refused.
 * Thread-safe. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_add(ambient_zds_agent *agent,
                                                    const ambient_workload_info *pod,
                                                    const ambient_netns *netns);
/* ambient_zds_agent_keep records a pod whose netns cannot be opened; it is
 * sent as KeepWorkload in snapshots. Errors: AMBIENT_ERR_INVALID_ARGUMENT. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_keep(ambient_zds_agent *agent, const char *uid);
/* ambient_zds_agent_del forgets pod `uid` and sends DelWorkload to every
 * connected proxy, waiting for each ack. Errors: AMBIENT_ERR_INVALID_ARGUMENT;
 * the first proxy failure (AMBIENT_ERR_UNAVAILABLE, AMBIENT_ERR_ABORTED). */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_del(ambient_zds_agent *agent, const char *uid);
/* ambient_zds_agent_proxy_count returns how many proxies are connected and
 * past their snapshot. Any thread. */
AMBIENT_EXPORT size_t ambient_zds_agent_proxy_count(const ambient_zds_agent *agent);
/* ambient_zds_agent_wait_for_proxies blocks until at least `n` proxies are
 * connected and past their snapshot. Errors: AMBIENT_ERR_DEADLINE_EXCEEDED
 * after `timeout_ms`; AMBIENT_ERR_INVALID_ARGUMENT for NULL. */
AMBIENT_EXPORT ambient_error *ambient_zds_agent_wait_for_proxies(const ambient_zds_agent *agent,
                                                                 size_t n, uint32_t timeout_ms);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_NETNS_H_ */
