// ambient.h must also compile as C++ (-pedantic -Werror) and link from C++.
#include "ambient/ambient.h"

#include <cstdio>
#include <cstring>

int main() {
  if (std::strcmp(ambient_version(), AMBIENT_VERSION_STRING) != 0) {
    std::fprintf(stderr, "version mismatch\n");
    return 1;
  }
  return 0;
}
