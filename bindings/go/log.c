// C glue for Go callbacks (log sinks, clocks, tunnel ends, ZDS pods): the
// exported Go functions lack the const qualifiers of the C callback types,
// so their addresses are cast here, in a file of its own (a Go file with
// //export may only declare C functions). Handles travel as uintptr_t.
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
  return ambient_hbone_server_new(loop, tls, listen, allow, n_allow,
                                  log_handle ? (ambient_log_fn)ambientGoLog : NULL,
                                  (void *)log_handle, out);
}

ambient_error *ambientGoClientNew(ambient_runtime_loop *loop, const ambient_hbone_tls *tls,
                                  uintptr_t log_handle, ambient_hbone_client **out) {
  return ambient_hbone_client_new(loop, tls, log_handle ? (ambient_log_fn)ambientGoLog : NULL,
                                  (void *)log_handle, out);
}

int ambientGoClientTunnel(ambient_hbone_client *client, const char *via, const char *authority,
                          const char *const *expected, size_t n_expected, int fd,
                          uintptr_t done_handle) {
  return ambient_hbone_client_tunnel(client, via, authority, expected, n_expected, fd, fd,
                                     (ambient_hbone_tunnel_done_fn)ambientGoTunnelDone,
                                     (void *)done_handle);
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
