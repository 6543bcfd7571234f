/* ambient/c/identity.h: the C ABI of the identity layer (not filled in yet). */
#ifndef AMBIENT_C_IDENTITY_H_
#define AMBIENT_C_IDENTITY_H_

#include "ambient/c/common.h"

#endif /* AMBIENT_C_IDENTITY_H_ */
