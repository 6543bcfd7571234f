/* ambient/c/hbone.h: the C ABI of the hbone layer (not filled in yet). */
#ifndef AMBIENT_C_HBONE_H_
#define AMBIENT_C_HBONE_H_

#include "ambient/c/common.h"

#endif /* AMBIENT_C_HBONE_H_ */
