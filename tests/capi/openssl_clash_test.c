/* Loads the other TLS library's libcrypto (OpenSSL 3's for a BoringSSL-built
 * ambient, BoringSSL's for an OpenSSL-built one) into the global symbol scope
 * first, then libambient.so: the loader binds ambient's libcrypto calls to the
 * wrong library, and ambient_check_runtime() must say so (its message holds
 * EXPECTED). Loaded with RTLD_DEEPBIND, ambient keeps its own library and the
 * check passes. Each case runs in a child process, since a library's bindings
 * are fixed once loaded.
 * usage: capi_openssl_clash_test LIBAMBIENT OTHER_LIBCRYPTO EXPECTED */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void *(*check_fn)(void);
typedef const char *(*msg_fn)(const void *);
typedef void (*free_fn)(void *);

/* Returns 0 when the case behaves as expected. */
static int run_case(const char* lib, const char* other, const char* expected, int deepbind) {
  void *h;
  check_fn check;
  msg_fn msg;
  free_fn fr;
  void *err;
  int ok;
  if (dlopen(other, RTLD_NOW | RTLD_GLOBAL) == NULL) {
    fprintf(stderr, "%s is needed: %s\n", other, dlerror());
    return 1;
  }
  h = dlopen(lib, RTLD_NOW | RTLD_LOCAL | (deepbind ? RTLD_DEEPBIND : 0));
  if (h == NULL) {
    fprintf(stderr, "dlopen %s: %s\n", lib, dlerror());
    return 1;
  }
  *(void **)&check = dlsym(h, "ambient_check_runtime");
  *(void **)&msg = dlsym(h, "ambient_error_message");
  *(void **)&fr = dlsym(h, "ambient_error_free");
  if (check == NULL || msg == NULL || fr == NULL) return 1;
  err = check();
  ok = deepbind ? err == NULL : (err != NULL && strstr(msg(err), expected) != NULL);
  fprintf(stderr, "%s: %s -> %s\n", deepbind ? "RTLD_DEEPBIND" : "other library loaded first",
          err != NULL ? msg(err) : "own library bound", ok ? "as expected" : "WRONG");
  fr(err);
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  int deepbind, failed = 0;
  if (argc != 4) {
    fprintf(stderr, "usage: %s path/to/libambient.so OTHER_LIBCRYPTO EXPECTED\n", argv[0]);
    return 2;
  }
  for (deepbind = 0; deepbind <= 1; ++deepbind) {
    int status = 0;
    pid_t pid = fork();
    if (pid == 0) _exit(run_case(argv[1], argv[2], argv[3], deepbind));
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
      ++failed;
    }
  }
  printf("%d passed, %d failed\n", 2 - failed, failed);
  return failed == 0 ? 0 : 1;
}
