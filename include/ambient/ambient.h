/* ambient/ambient.h: the ambient C ABI, all of it.
 *
 * ambient gives a proxy the data plane of Istio ambient mode: SPIFFE
 * identities, in-pod traffic redirection, network namespaces and the ZDS
 * handoff, HBONE tunnels and L4 authorization. This header pulls in one header
 * per part; each opens with a paragraph on its object model. Conventions that
 * hold everywhere (ownership, errors, threads) are in ambient/c/common.h.
 *
 * The header compiles as C11 (with -pedantic) and as C++. Link with
 * -lambient (pkg-config ambient) or the CMake target ambient::ambient. */
#ifndef AMBIENT_AMBIENT_H_
#define AMBIENT_AMBIENT_H_

#include "ambient/version.h"
#include "ambient/c/common.h"
#include "ambient/c/address.h"
#include "ambient/c/workload.h"
#include "ambient/c/identity.h"
#include "ambient/c/redirect.h"
#include "ambient/c/netns.h"
#include "ambient/c/hbone.h"
#include "ambient/c/runtime.h"
#include "ambient/c/authz.h"
#include "ambient/c/xds.h"

#endif /* AMBIENT_AMBIENT_H_ */
