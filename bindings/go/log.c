// C glue for Go log sinks: the exported Go function lacks the const
// qualifiers of ambient_log_fn, so its address is cast here, in a file of
// its own (a Go file with //export may only declare C functions).
#include <stdint.h>

#include "_cgo_export.h"
#include "ambient/ambient.h"

void ambientGoSetAgentLog(ambient_zds_agent_options *opts, uintptr_t handle) {
  ambient_zds_agent_options_set_log(opts, (ambient_log_fn)ambientGoLog, (void *)handle);
}

void ambientGoSetClock(ambient_verify_options *opts, uintptr_t handle) {
  ambient_verify_options_set_clock(opts, (ambient_clock_fn)ambientGoClock, (void *)handle);
}
