/* ambientctl: try ambient from a shell. See --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambientctl.h"

typedef struct group {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} group;

static const group kGroups[] = {
#ifdef AMBIENTCTL_HAVE_SPIFFE
    {"spiffe", ambientctl_spiffe, "parse SPIFFE IDs and verify X509-SVIDs"},
#endif
#ifdef AMBIENTCTL_HAVE_RULES
    {"rules", ambientctl_rules, "render, apply, check and delete redirect rules"},
#endif
#ifdef AMBIENTCTL_HAVE_ZDS
    {"zds", ambientctl_zds, "speak the ZDS netns handoff protocol (agent or proxy)"},
#endif
#ifdef AMBIENTCTL_HAVE_HBONE
    {"hbone", ambientctl_hbone, "serve, connect and forward over HBONE tunnels"},
#endif
    {NULL, NULL, NULL},
};

int ambientctl_fail(const char *what, ambient_error *err) {
  fprintf(stderr, "ambientctl: %s: %s\n", what,
          err != NULL ? ambient_error_message(err) : "failed");
  ambient_error_free(err);
  return AMBIENTCTL_FAIL;
}

int ambientctl_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void usage(FILE *out) {
  const group *g;
  fprintf(out,
          "usage: ambientctl <command> [args...]\n"
          "\n"
          "commands:\n"
          "  version      print the versions of ambientctl and of the loaded libambient\n"
          "               (also: ambientctl --version)\n");
  for (g = kGroups; g->name != NULL; ++g) fprintf(out, "  %-12s %s\n", g->name, g->summary);
  fprintf(out,
          "\n"
          "Run 'ambientctl <command> --help' for a command's flags; every flag that\n"
          "takes a value accepts both '--flag value' and '--flag=value'. Exit status:\n"
          "0 on success, 1 on failure (reason on stderr), 2 on a usage error.\n");
}

static int version(int argc, char **argv) {
  ambient_error *err;
  if (argc > 1) {
    if (ambientctl_is_help(argv[1])) {
      printf(
          "usage: ambientctl version\n\nPrints the ambientctl and libambient versions and the TLS "
          "library\nlibambient was built with (boringssl or openssl).\n");
      return AMBIENTCTL_OK;
    }
    fprintf(stderr, "ambientctl version: unexpected argument '%s'\n", argv[1]);
    return AMBIENTCTL_USAGE;
  }
  printf("ambientctl %s\nlibambient %s\ntls %s\n", AMBIENT_VERSION_STRING, ambient_version(),
         ambient_tls_backend());
  err = ambient_check_runtime();
  if (err != NULL) return ambientctl_fail("runtime check", err);
  return AMBIENTCTL_OK;
}

/* split_flag_values returns a copy of argv where every "--name=value" before a
 * bare "--" is two arguments, "--name" and "value", so that every command
 * takes both spellings. The strings are allocated once and live until exit
 * (kept reachable through g_args, so a leak checker does not report them).
 * Returns NULL when out of memory. */
static char **g_args;

static char **split_flag_values(int argc, char **argv, int *out_argc) {
  char **out = (char **)calloc((size_t)argc * 2 + 1, sizeof(char *));
  int i, n = 0, done = 0;
  if (out == NULL) return NULL;
  for (i = 0; i < argc; ++i) {
    const char *arg = argv[i];
    const char *eq = strchr(arg, '=');
    if (strcmp(arg, "--") == 0) done = 1;
    if (!done && strncmp(arg, "--", 2) == 0 && eq != NULL && eq > arg + 2) {
      size_t name_len = (size_t)(eq - arg);
      char *name = (char *)malloc(name_len + 1);
      if (name == NULL) {
        free(out);
        return NULL;
      }
      memcpy(name, arg, name_len);
      name[name_len] = '\0';
      out[n++] = name;
      out[n++] = (char *)(eq + 1);
    } else {
      out[n++] = argv[i];
    }
  }
  *out_argc = n;
  g_args = out;
  return out;
}

int main(int argc, char **argv) {
  const group *g;
  argv = split_flag_values(argc, argv, &argc);
  if (argv == NULL) {
    fprintf(stderr, "ambientctl: out of memory\n");
    return AMBIENTCTL_FAIL;
  }
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) return version(argc - 1, argv + 1);
  if (argc < 2) {
    usage(stderr);
    return AMBIENTCTL_USAGE;
  }
  if (ambientctl_is_help(argv[1])) {
    usage(stdout);
    return AMBIENTCTL_OK;
  }
  if (strcmp(argv[1], "version") == 0) return version(argc - 1, argv + 1);
  for (g = kGroups; g->name != NULL; ++g) {
    if (strcmp(argv[1], g->name) == 0) return g->run(argc - 1, argv + 1);
  }
  fprintf(stderr, "ambientctl: unknown command '%s'\n", argv[1]);
  usage(stderr);
  return AMBIENTCTL_USAGE;
}
