/* Calls the C ABI the way a C host does, where any int converts to an enum
 * type without complaint (C++ callers cannot even form such a value). */
#include "ambient/c/redirect.h"

ambient_error *set_backend_from_c(ambient_redirect_config *config, int backend) {
  return ambient_redirect_config_set_backend(config, (ambient_redirect_backend)backend);
}
