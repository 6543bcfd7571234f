/* ambient/c/redirect.h: the C ABI of the redirect layer (not filled in yet). */
#ifndef AMBIENT_C_REDIRECT_H_
#define AMBIENT_C_REDIRECT_H_

#include "ambient/c/common.h"

#endif /* AMBIENT_C_REDIRECT_H_ */
