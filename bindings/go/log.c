// C glue for Go callbacks (log sinks, clocks, tunnel ends, ZDS pods): the
// exported Go functions lack the const qualifiers of the C callback types,
// so their addresses are cast here, in a file of its own (a Go file with
// //export may only declare C functions). Handles travel as uintptr_t. The
// option objects the calls take are filled here too, from flat arguments,
// so each Go call crosses into C once.
#include <stdint.h>

#include "_cgo_export.h"
#include "ambient/ambient.h"

void ambientGoSetAgentLog(ambient_zds_agent_options *opts, uintptr_t handle) {
  ambient_zds_agent_options_set_log(opts, (ambient_log_fn)ambientGoLog, (void *)handle);
}

void ambientGoSetClock(ambient_verify_options *opts, uintptr_t handle) {
  ambient_verify_options_set_clock_owned(opts, (ambient_clock_fn)ambientGoClock, (void *)handle,
                                         (void (*)(void *))ambientGoDeleteHandle);
}

ambient_error *ambientGoServerNew(ambient_runtime_loop *loop, const ambient_hbone_tls *tls,
                                  const char *listen, const char *const *allow, size_t n_allow,
                                  uintptr_t log_handle, ambient_hbone_server **out) {
  ambient_hbone_server_options *o = ambient_hbone_server_options_new();
  ambient_error *err;
  size_t i;
  if (o == NULL) return NULL;  // out of memory: *out stays NULL
  err = ambient_hbone_server_options_set_listen(o, listen);
  for (i = 0; err == NULL && i < n_allow; ++i) err = ambient_hbone_server_options_add_allow(o, allow[i]);
  ambient_hbone_server_options_set_log(o, log_handle ? (ambient_log_fn)ambientGoLog : NULL,
                                       (void *)log_handle);
  if (err == NULL) err = ambient_hbone_server_new(loop, tls, o, out);
  ambient_hbone_server_options_free(o);
  return err;
}

// ambientGoTarget makes the target of a tunnel or forwarder; NULL when out
// of memory or when an argument is NULL (*err says which, when it can).
static ambient_hbone_target *ambientGoTarget(const char *via, const char *authority,
                                             const char *const *expected, size_t n_expected,
                                             ambient_error **err) {
  ambient_hbone_target *t = ambient_hbone_target_new();
  size_t i;
  *err = NULL;
  if (t == NULL) return NULL;
  *err = ambient_hbone_target_set_via(t, via);
  if (*err == NULL) *err = ambient_hbone_target_set_authority(t, authority);
  for (i = 0; *err == NULL && i < n_expected; ++i) {
    *err = ambient_hbone_target_add_expected(t, expected[i]);
  }
  if (*err != NULL) {
    ambient_hbone_target_free(t);
    return NULL;
  }
  return t;
}

ambient_error *ambientGoForwarderNew(ambient_runtime_loop *loop, ambient_hbone_client *client,
                                     const char *listen, const char *via, const char *authority,
                                     const char *const *expected, size_t n_expected,
                                     ambient_hbone_forwarder **out) {
  ambient_error *err;
  ambient_hbone_target *t = ambientGoTarget(via, authority, expected, n_expected, &err);
  if (t == NULL) return err;  // NULL too when out of memory: *out stays NULL
  err = ambient_hbone_forwarder_new(loop, client, listen, t, out);
  ambient_hbone_target_free(t);
  return err;
}

// ambientGoWorkload makes a workload description (NULL when out of memory);
// NULL strings stay unknown.
ambient_workload_info *ambientGoWorkload(const char *uid, const char *name, const char *ns,
                                         const char *service_account, const char *trust_domain,
                                         const char *const *addresses, size_t n_addresses,
                                         int hbone) {
  ambient_workload_info *w = ambient_workload_info_new();
  size_t i;
  if (w == NULL) return NULL;
  // The fields are valid enumerators and w is not NULL: these cannot fail.
  ambient_error_free(ambient_workload_info_set(w, AMBIENT_WORKLOAD_UID, uid));
  ambient_error_free(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAME, name));
  ambient_error_free(ambient_workload_info_set(w, AMBIENT_WORKLOAD_NAMESPACE, ns));
  ambient_error_free(ambient_workload_info_set(w, AMBIENT_WORKLOAD_SERVICE_ACCOUNT, service_account));
  ambient_error_free(ambient_workload_info_set(w, AMBIENT_WORKLOAD_TRUST_DOMAIN, trust_domain));
  for (i = 0; i < n_addresses; ++i) {
    ambient_error *err = ambient_workload_info_add_address(w, addresses[i]);
    if (err != NULL) {
      ambient_error_free(err);
      ambient_workload_info_free(w);
      return NULL;
    }
  }
  ambient_workload_info_set_hbone(w, hbone);
  return w;
}

ambient_error *ambientGoClientNew(ambient_runtime_loop *loop, const ambient_hbone_tls *tls,
                                  uintptr_t log_handle, ambient_hbone_client **out) {
  ambient_hbone_client_options *opts = ambient_hbone_client_options_new();
  ambient_error *err;
  if (opts == NULL) return NULL; /* *out stays NULL: the Go side reports out of memory */
  ambient_hbone_client_options_set_log(opts, log_handle ? (ambient_log_fn)ambientGoLog : NULL,
                                       (void *)log_handle);
  err = ambient_hbone_client_new(loop, tls, opts, out);
  ambient_hbone_client_options_free(opts);
  return err;
}

int ambientGoClientTunnel(ambient_hbone_client *client, const char *via, const char *authority,
                          const char *const *expected, size_t n_expected, int fd,
                          uintptr_t done_handle) {
  ambient_error *err;
  ambient_hbone_target *t = ambientGoTarget(via, authority, expected, n_expected, &err);
  int rc;
  if (t == NULL) {
    rc = err != NULL ? ambient_error_code(err) : AMBIENT_ERR_RESOURCE_EXHAUSTED;
    ambient_error_free(err);
    return rc;
  }
  rc = ambient_hbone_client_tunnel(client, t, fd, fd,
                                   (ambient_hbone_tunnel_done_fn)ambientGoTunnelDone,
                                   (void *)done_handle);
  ambient_hbone_target_free(t);
  return rc;
}

void ambientGoSetProxyCallbacks(ambient_zds_proxy_options *opts, uintptr_t handle) {
  ambient_zds_proxy_options_set_callbacks(opts, (ambient_zds_add_fn)ambientGoZDSAdd,
                                          (ambient_zds_remove_fn)ambientGoZDSRemove,
                                          (ambient_zds_event_fn)ambientGoZDSEvent,
                                          (void *)handle);
}

void ambientGoSetProxyLog(ambient_zds_proxy_options *opts, uintptr_t handle) {
  ambient_zds_proxy_options_set_log(opts, (ambient_log_fn)ambientGoLog, (void *)handle);
}

void ambientGoSetNodeProxyLog(ambient_node_proxy_options *opts, uintptr_t handle) {
  ambient_node_proxy_options_set_log(opts, (ambient_log_fn)ambientGoLog, (void *)handle);
}

int ambientGoPost(ambient_runtime_loop *loop, uintptr_t task_handle) {
  return ambient_runtime_loop_post(loop, (void (*)(void *))ambientGoRunTask, (void *)task_handle);
}

ambient_error *ambientGoTlsNew(ambient_hbone_role role, const char *cert, size_t cert_len,
                               const char *key, size_t key_len, const char *bundle,
                               size_t bundle_len, ambient_hbone_tls **out) {
  ambient_hbone_tls_options *o = ambient_hbone_tls_options_new();
  ambient_error *err;
  if (o == NULL) return NULL; /* out of memory: *out stays NULL */
  err = ambient_hbone_tls_options_set_cert_chain_pem(o, cert, cert_len);
  if (err == NULL) err = ambient_hbone_tls_options_set_private_key_pem(o, key, key_len);
  if (err == NULL) err = ambient_hbone_tls_options_set_trust_bundle(o, bundle, bundle_len);
  if (err == NULL) err = ambient_hbone_tls_new(role, o, out);
  ambient_hbone_tls_options_free(o);
  return err;
}

int ambientGoAuthzCheck(const ambient_authz_store *store, const char *ns, const char *const *keys,
                        size_t n_keys, const struct sockaddr *src, const struct sockaddr *dst,
                        const char *src_identity, ambient_authz_decision *decision) {
  ambient_authz_request *r = ambient_authz_request_new();
  ambient_error *err;
  int rc;
  if (r == NULL) return AMBIENT_ERR_RESOURCE_EXHAUSTED;
  err = ambient_authz_request_set_workload_namespace(r, ns);
  if (err == NULL) err = ambient_authz_request_set_workload_policies(r, keys, n_keys);
  if (err == NULL) err = ambient_authz_request_set_source(r, src);
  if (err == NULL) err = ambient_authz_request_set_destination(r, dst);
  if (err == NULL) err = ambient_authz_request_set_source_identity(r, src_identity);
  if (err != NULL) {
    rc = ambient_error_code(err);
    ambient_error_free(err);
  } else {
    rc = ambient_authz_check(store, r, decision);
  }
  ambient_authz_request_free(r);
  return rc;
}
