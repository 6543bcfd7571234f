#include <stdio.h>
#include <string.h>

#include <ambient/ambient.h>

int main(void) {
  ambient_error *err = ambient_check_runtime();
  if (err != NULL) {
    fprintf(stderr, "%s\n", ambient_error_message(err));
    ambient_error_free(err);
    return 1;
  }
  if (strcmp(ambient_version(), AMBIENT_VERSION_STRING) != 0) return 1;
  /* The library, its headers and the package metadata name one TLS library. */
  if (strcmp(ambient_tls_backend(), AMBIENT_TLS_BACKEND) != 0) return 1;
#ifdef PACKAGE_TLS_BACKEND
  if (strcmp(ambient_tls_backend(), PACKAGE_TLS_BACKEND) != 0) return 1;
#endif
  printf("ambient %s (%s) ok\n", ambient_version(), ambient_tls_backend());
  return 0;
}
