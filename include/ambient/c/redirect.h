/* ambient/c/redirect.h: istio-cni's traffic redirection rules, rendered and
 * applied.
 *
 * Object model. An ambient_redirect_config holds everything a pod's (or a
 * node's) redirect rules depend on: the backend (iptables or native
 * nftables), in-pod or host rules, IPv6, DNS capture (mesh-wide and per-pod),
 * ingress mode, rerouted virtual interfaces, the probe SNAT addresses and the
 * kubelet UID. It starts with istio-cni's production defaults. From a config,
 * ambient_redirect_render gives the exact text istio-cni would feed to
 * iptables-restore or nft, and the appliers install, check and remove the
 * rules (and the fwmark policy routing) inside a network namespace.
 *
 * Errors. Every function here is a setup call: it returns NULL on success or
 * an owned ambient_error (free with ambient_error_free). A failed call leaves
 * the config, and for appliers the network namespace, as it was.
 *
 * Threads. A config may be read (render, apply, check, delete) from several
 * threads at once; changing it needs exclusive use. Appliers may run at once
 * on distinct namespaces. */
#ifndef AMBIENT_C_REDIRECT_H_
#define AMBIENT_C_REDIRECT_H_

#include "ambient/c/common.h"
#include "ambient/c/netns.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ambient_redirect_backend selects how rules are rendered and applied. */
typedef enum ambient_redirect_backend {
  AMBIENT_REDIRECT_IPTABLES = 0, /* iptables-restore payloads (nft or legacy iptables) */
  AMBIENT_REDIRECT_NFTABLES = 1  /* native nftables, inet tables istio-ambient-* */
} ambient_redirect_backend;

/* ambient_redirect_config is an owned, opaque rule configuration. */
typedef struct ambient_redirect_config ambient_redirect_config;

/* ambient_redirect_config_new returns a new config with istio-cni's defaults
 * (iptables, in-pod rules, IPv4 only, DNS capture on, probe SNAT
 * 169.254.7.127 and fd16:9254:7127:1337:ffff:ffff:ffff:ffff), or NULL when
 * out of memory. Free it with ambient_redirect_config_free. Any thread. */
AMBIENT_EXPORT ambient_redirect_config *ambient_redirect_config_new(void);

/* ambient_redirect_config_free releases `config`. NULL is allowed. */
AMBIENT_EXPORT void ambient_redirect_config_free(ambient_redirect_config *config);

/* ambient_redirect_config_parse_flags replaces `config` with the defaults
 * changed by the `ambientctl rules` CONFIG flags in argv[0..argc): --backend
 * iptables|nftables, --host, --ipv6, --dns-capture on|off, --pod-dns-capture
 * on|off, --bypass-inbound, --reroute-interface NAME (repeatable),
 * --probe-snat-v4 IP, --probe-snat-v6 IP, --kubelet-uid N ("--flag=value"
 * also works). Errors: AMBIENT_ERR_INVALID_ARGUMENT naming the bad argument
 * (unknown flag, missing or malformed value); `config` is then unchanged.
 * The strings are only read during the call. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_parse_flags(ambient_redirect_config *config,
                                                                  int argc,
                                                                  const char *const *argv);

/* ambient_redirect_config_set_backend sets the backend. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for a NULL config or an unknown backend. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_backend(ambient_redirect_config *config,
                                                                  ambient_redirect_backend backend);

/* ambient_redirect_config_set_host selects node-level probe rules (`on` != 0)
 * or in-pod rules (0, the default). Errors: AMBIENT_ERR_INVALID_ARGUMENT for
 * a NULL config. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_host(ambient_redirect_config *config,
                                                               int on);

/* ambient_redirect_config_set_ipv6 turns the IPv6 rules and IPv6 policy
 * routing on (`on` != 0) or off (the default). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for a NULL config. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_ipv6(ambient_redirect_config *config,
                                                               int on);

/* ambient_redirect_config_set_dns_capture sets mesh-wide DNS capture (default
 * on). Errors: AMBIENT_ERR_INVALID_ARGUMENT for a NULL config. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_dns_capture(
    ambient_redirect_config *config, int on);

/* ambient_redirect_config_set_pod_dns_capture sets the per-pod DNS capture
 * override: 1 on, 0 off, -1 unset (the mesh-wide value applies). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for a NULL config or another value. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_pod_dns_capture(
    ambient_redirect_config *config, int value);

/* ambient_redirect_config_set_bypass_inbound turns ingress mode (no inbound
 * capture) on or off. Errors: AMBIENT_ERR_INVALID_ARGUMENT for a NULL
 * config. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_bypass_inbound(
    ambient_redirect_config *config, int on);

/* ambient_redirect_config_add_reroute_interface appends `name` (a Linux
 * interface name, copied) to the interfaces whose inbound TCP is redirected
 * as outbound. Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments, an
 * invalid name or more than 64 interfaces. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_add_reroute_interface(
    ambient_redirect_config *config, const char *name);

/* ambient_redirect_config_set_probe_snat_v4 sets the IPv4 address kubelet
 * probes are SNATed to (copied). Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL
 * arguments or a string that is not a literal IPv4 address. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_probe_snat_v4(
    ambient_redirect_config *config, const char *address);

/* ambient_redirect_config_set_probe_snat_v6 is the IPv6 twin of
 * ambient_redirect_config_set_probe_snat_v4. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_probe_snat_v6(
    ambient_redirect_config *config, const char *address);

/* ambient_redirect_config_set_kubelet_uid sets the kubelet UID matched by the
 * nftables host rule (otherwise it is looked up in /proc when needed). Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT for a NULL config. */
AMBIENT_EXPORT ambient_error *ambient_redirect_config_set_kubelet_uid(
    ambient_redirect_config *config, uint32_t uid);

/* ambient_redirect_render writes the rules of `config` as text into `buf`
 * and their full length (without the NUL) to *out_len, as every string the
 * library makes is returned (see ambient/c/common.h): at most cap - 1 bytes
 * and a NUL are written (nothing when `buf` is NULL or `cap` 0), so a caller
 * whose *out_len is >= cap calls again with a buffer of *out_len + 1. For
 * iptables: the iptables-restore payload (IPv4, then IPv6 when enabled), with
 * no newline after the last COMMIT; for nftables: the nft script. The bytes
 * are those of istio-cni's goldens for the same settings. Errors (*out_len
 * is then 0 and `buf`, when it has room, holds ""):
 * AMBIENT_ERR_INVALID_ARGUMENT for a NULL config or out_len;
 * AMBIENT_ERR_NOT_FOUND for nftables host rules without a kubelet UID when
 * no kubelet runs here. Nothing on the system is touched. Any thread. */
AMBIENT_EXPORT ambient_error *ambient_redirect_render(const ambient_redirect_config *config,
                                                      char *buf, size_t cap, size_t *out_len);

/* ambient_redirect_render_family writes one family's iptables-restore payload
 * of `config` (`family` 4 or 6) into `buf`, ending in a newline: the input
 * `iptables-restore` (4) or `ip6tables-restore` (6) reads. `buf`, `cap` and
 * *out_len as ambient_redirect_render. Errors: AMBIENT_ERR_INVALID_ARGUMENT
 * for a NULL config or out_len, a family other than 4 or 6, the nftables
 * backend (its inet script covers both families: use
 * ambient_redirect_render), or family 6 without IPv6 enabled. Nothing on the
 * system is touched. Any thread. */
AMBIENT_EXPORT ambient_error *ambient_redirect_render_family(const ambient_redirect_config *config,
                                                             int family, char *buf, size_t cap,
                                                             size_t *out_len);

/* ---- Applying rules inside a network namespace ----
 *
 * The appliers need CAP_NET_ADMIN and CAP_SYS_ADMIN (root). `ns` is a
 * network namespace handle (ambient/c/netns.h: ambient_netns_open takes a
 * name under /var/run/netns or a path such as /proc/PID/ns/net,
 * ambient_netns_open_fd a descriptor); it is only borrowed. The calling
 * thread enters the namespace only to create netlink sockets and returns
 * before the call does; iptables-restore runs in a child process. Calls on
 * distinct namespaces may run at once; calls on one namespace must not
 * overlap. Common errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL arguments),
 * AMBIENT_ERR_NOT_FOUND (an iptables binary is missing),
 * AMBIENT_ERR_PERMISSION_DENIED (not privileged), and
 * AMBIENT_ERR_FAILED_PRECONDITION (the kernel or iptables-restore refused the
 * rules; the message has their reason). */

/* ambient_redirect_apply installs the rules of `config` in `ns`, with the
 * fwmark 0x111/0xfff policy routing (pref 32764, table 100) for in-pod
 * rules, all or nothing: on error the namespace is exactly as before.
 * Applying the same config again is a no-op (iptables) or an atomic replace
 * with the same result (nftables). The other backend's rules already in the
 * namespace make it fail with AMBIENT_ERR_FAILED_PRECONDITION, naming them
 * (iptables rules are seen with iptables-nft, Debian's default): delete
 * those first, both would capture the same traffic. Errors: see above. */
AMBIENT_EXPORT ambient_error *ambient_redirect_apply(const ambient_redirect_config *config,
                                                     const ambient_netns *ns);

/* ambient_redirect_drift is an owned list of differences between a
 * namespace and the expected rules, one line each, such as
 * "missing: iptables ipv4 nat ISTIO_OUTPUT: -A ISTIO_OUTPUT ...". */
typedef struct ambient_redirect_drift ambient_redirect_drift;

/* ambient_redirect_check compares `ns` with the rules (and, in-pod, the
 * policy routing) of `config` and stores the differences in *out_drift (an
 * owned list, empty when there is no drift; free it with
 * ambient_redirect_drift_free). Counters and rule handles are ignored.
 * Nothing is changed. On error *out_drift is NULL. Errors: see above. */
AMBIENT_EXPORT ambient_error *ambient_redirect_check(const ambient_redirect_config *config,
                                                     const ambient_netns *ns,
                                                     ambient_redirect_drift **out_drift);

/* ambient_redirect_drift_count returns the number of differences in `drift`
 * (0 for NULL). */
AMBIENT_EXPORT size_t ambient_redirect_drift_count(const ambient_redirect_drift *drift);

/* ambient_redirect_drift_get0 returns difference `i` as a NUL-terminated
 * line lent by `drift` (valid until it is freed), or NULL when `i` is out of
 * range or `drift` is NULL. */
AMBIENT_EXPORT const char *ambient_redirect_drift_get0(const ambient_redirect_drift *drift,
                                                       size_t i);

/* ambient_redirect_drift_free releases `drift`. NULL is allowed. */
AMBIENT_EXPORT void ambient_redirect_drift_free(ambient_redirect_drift *drift);

/* ambient_redirect_delete removes from `ns` exactly what
 * ambient_redirect_apply installs for `config`'s backend: the ISTIO_* chains
 * and the jumps to them (IPv4 and IPv6), or the istio-ambient-* nftables
 * tables, and for in-pod configs the fwmark rule and table-100 routes. Other
 * rules are left alone; deleting what is not there is not an error. Errors:
 * see above. */
AMBIENT_EXPORT ambient_error *ambient_redirect_delete(const ambient_redirect_config *config,
                                                      const ambient_netns *ns);

/* ---- Host probe sets ----
 *
 * With host rules, kubelet's probes are SNATed only when they go to an
 * enrolled pod: one whose IP is a member of a probe set (the ipsets
 * istio-inpod-probes-v4/-v6 for iptables, the nftables sets of the same
 * names in table inet istio-ambient-nat). Each member carries the pod's UID
 * as its comment, as istio-cni does. ambient_redirect_apply with a host
 * config creates the sets; these functions change and read their members
 * over netlink in `ns` (the node's namespace, e.g. ambient_netns_open of
 * "/proc/1/ns/net"), for `config`'s backend. Privileges, threads and `ns`
 * are as for the appliers above. */

/* ambient_redirect_probe_add adds the pod address `address` (a literal IPv4
 * or IPv6 address; IPv4-mapped IPv6 counts as IPv4) with the UID `pod_uid`
 * to the probe set of its family. When the address is a member already, its
 * UID is replaced. Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments,
 * a bad address, an IPv6 address when the config has IPv6 off, or a UID
 * that is empty, longer than 255 bytes or not printable ASCII without
 * spaces, quotes or backslashes; AMBIENT_ERR_NOT_FOUND when the set does not
 * exist (the host rules were not applied); AMBIENT_ERR_PERMISSION_DENIED.
 * On error the set is unchanged. */
AMBIENT_EXPORT ambient_error *ambient_redirect_probe_add(const ambient_redirect_config *config,
                                                         const ambient_netns *ns,
                                                         const char *address, const char *pod_uid);

/* ambient_redirect_probe_remove removes `address` from its probe set when
 * its UID is `pod_uid` (any UID when `pod_uid` is NULL or empty). An absent
 * address is not an error. Errors: as ambient_redirect_probe_add, plus
 * AMBIENT_ERR_FAILED_PRECONDITION naming the other UID when the address
 * belongs to another pod (nothing is removed). */
AMBIENT_EXPORT ambient_error *ambient_redirect_probe_remove(const ambient_redirect_config *config,
                                                            const ambient_netns *ns,
                                                            const char *address,
                                                            const char *pod_uid);

/* ambient_redirect_probes is an owned list of probe set members. */
typedef struct ambient_redirect_probes ambient_redirect_probes;

/* ambient_redirect_probe_list stores the members of the IPv4 probe set and,
 * when the config has IPv6 on, of the IPv6 set in *out_probes (owned by the
 * caller: free with ambient_redirect_probes_free). On error *out_probes is
 * NULL. Errors: AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments;
 * AMBIENT_ERR_NOT_FOUND when a set does not exist;
 * AMBIENT_ERR_PERMISSION_DENIED. */
AMBIENT_EXPORT ambient_error *ambient_redirect_probe_list(const ambient_redirect_config *config,
                                                          const ambient_netns *ns,
                                                          ambient_redirect_probes **out_probes);

/* ambient_redirect_probes_count returns the number of members in `probes`
 * (0 for NULL). */
AMBIENT_EXPORT size_t ambient_redirect_probes_count(const ambient_redirect_probes *probes);

/* ambient_redirect_probes_get0_address returns the address of member `i`
 * (as inet_ntop spells it), lent by `probes` until it is freed, or NULL when
 * `i` is out of range or `probes` is NULL. */
AMBIENT_EXPORT const char *ambient_redirect_probes_get0_address(
    const ambient_redirect_probes *probes, size_t i);

/* ambient_redirect_probes_get0_pod_uid returns the UID of member `i` ("" when
 * it has none), lent by `probes` until it is freed, or NULL when `i` is out
 * of range or `probes` is NULL. */
AMBIENT_EXPORT const char *ambient_redirect_probes_get0_pod_uid(
    const ambient_redirect_probes *probes, size_t i);

/* ambient_redirect_probes_free releases `probes`. NULL is allowed. */
AMBIENT_EXPORT void ambient_redirect_probes_free(ambient_redirect_probes *probes);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_REDIRECT_H_ */
