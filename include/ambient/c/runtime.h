/* ambient/c/runtime.h: the C ABI of the optional epoll runtime (not filled in yet). */
#ifndef AMBIENT_C_RUNTIME_H_
#define AMBIENT_C_RUNTIME_H_

#include "ambient/c/common.h"

#endif /* AMBIENT_C_RUNTIME_H_ */
