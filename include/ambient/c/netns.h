/* ambient/c/netns.h: the C ABI of the netns layer (not filled in yet). */
#ifndef AMBIENT_C_NETNS_H_
#define AMBIENT_C_NETNS_H_

#include "ambient/c/common.h"

#endif /* AMBIENT_C_NETNS_H_ */
