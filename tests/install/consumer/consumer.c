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
  printf("ambient %s ok\n", ambient_version());
  return 0;
}
