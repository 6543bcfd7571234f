// Internal to lib/netns: the ZDS files still include this name; errno to
// Status is ambient::ErrnoStatus (ambient/base/errno_status.h), which code in
// namespace ambient::netns finds unqualified. New code includes the base header.
#ifndef AMBIENT_LIB_NETNS_ERRNO_STATUS_H_
#define AMBIENT_LIB_NETNS_ERRNO_STATUS_H_

#include "ambient/base/errno_status.h"

#endif  // AMBIENT_LIB_NETNS_ERRNO_STATUS_H_
