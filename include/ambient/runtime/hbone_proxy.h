// ambient/runtime/hbone_proxy.h: turnkey HBONE server, pooled client and
// forwarder running on an EventLoop, in one include (kept for source
// compatibility): ambient/runtime/hbone_server.h, hbone_client.h and
// hbone_forwarder.h say what each does.
#ifndef AMBIENT_RUNTIME_HBONE_PROXY_H_
#define AMBIENT_RUNTIME_HBONE_PROXY_H_

#include "ambient/runtime/hbone_client.h"     // IWYU pragma: export
#include "ambient/runtime/hbone_forwarder.h"  // IWYU pragma: export
#include "ambient/runtime/hbone_server.h"     // IWYU pragma: export

#endif  // AMBIENT_RUNTIME_HBONE_PROXY_H_
