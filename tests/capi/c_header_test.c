/* Compiled with -std=c11 -pedantic-errors -Werror: proves ambient.h is strict
 * C, and checks the common C ABI behaves as documented. */
#include <stdio.h>
#include <string.h>

#include "ambient/ambient.h"

static int failures = 0;
#define CHECK(cond)                                               \
  do {                                                            \
    if (!(cond)) {                                                \
      fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                 \
    }                                                             \
  } while (0)

int main(void) {
  ambient_error *err;
  CHECK(strcmp(ambient_version(), AMBIENT_VERSION_STRING) == 0);
  CHECK(ambient_version_num() == AMBIENT_VERSION_NUM);
  CHECK(AMBIENT_VERSION_NUM >= AMBIENT_VERSION_CHECK(0, 1, 0));
  CHECK(strcmp(ambient_strerror(AMBIENT_ERR_INVALID_ARGUMENT), "invalid argument") == 0);
  CHECK(strcmp(ambient_strerror(12345), "unknown error code") == 0);
  CHECK(ambient_error_code(NULL) == AMBIENT_OK);
  CHECK(ambient_error_detail(NULL) == 0);
  CHECK(strcmp(ambient_error_message(NULL), "") == 0);
  ambient_error_free(NULL);
  err = ambient_check_runtime();
  if (err != NULL) fprintf(stderr, "runtime check: %s\n", ambient_error_message(err));
  CHECK(err == NULL);
  ambient_error_free(err);
  printf("%d passed, %d failed\n", failures == 0 ? 1 : 0, failures == 0 ? 0 : 1);
  return failures == 0 ? 0 : 1;
}
