/* ambientctl spiffe: parse SPIFFE IDs and verify X509-SVID chains. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambientctl.h"

static void spiffe_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl spiffe <command> [args...]\n"
          "\n"
          "commands:\n"
          "  parse ID     validate a SPIFFE ID; prints trust_domain=TD path=PATH\n"
          "  verify       verify an X509-SVID chain; prints identity=ID\n"
          "\n"
          "Run 'ambientctl spiffe <command> --help' for its flags.\n");
}

static void parse_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl spiffe parse ID\n"
          "\n"
          "Validates ID against the SPIFFE-ID rules and prints\n"
          "  trust_domain=TD path=PATH\n"
          "(PATH is empty for a trust domain's own ID). An invalid ID is reported\n"
          "on stderr with the reason, exit status 1.\n");
}

static void verify_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl spiffe verify --bundle FILE --chain FILE [--trust-domain TD]\n"
          "                                [--expect ID]... [--at UNIX_SECONDS]\n"
          "\n"
          "Verifies the X509-SVID chain in --chain (PEM: leaf first, then\n"
          "intermediates) and prints identity=ID.\n"
          "\n"
          "  --bundle FILE       trust anchors: PEM certificates, a SPIFFE trust bundle\n"
          "                      (JSON) of --trust-domain, or a SPIFFE bundle map (JSON)\n"
          "  --chain FILE        the chain to verify\n"
          "  --trust-domain TD   trust domain of a PEM or single JSON bundle\n"
          "                      (default cluster.local)\n"
          "  --expect ID         the peer must be this ID (repeatable: one of them)\n"
          "  --at UNIX_SECONDS   verify at this time instead of now\n"
          "\n"
          "A chain that fails verification is reported on stderr with the broken\n"
          "rule, exit status 1; bad flags exit 2.\n");
}

/* Reads a whole file; returns NULL (with a message on stderr) on failure. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t cap = 0;
  size_t n = 0;
  if (f == NULL) {
    fprintf(stderr, "ambientctl: cannot open %s: %s\n", path, strerror(errno));
    return NULL;
  }
  for (;;) {
    size_t got;
    if (n == cap) {
      char *grown;
      cap = cap == 0 ? 4096 : cap * 2;
      if (cap > (size_t)64 << 20) {
        fprintf(stderr, "ambientctl: %s is larger than 64 MiB\n", path);
        free(buf);
        fclose(f);
        return NULL;
      }
      grown = realloc(buf, cap);
      if (grown == NULL) {
        fprintf(stderr, "ambientctl: out of memory reading %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = grown;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  if (ferror(f)) {
    fprintf(stderr, "ambientctl: cannot read %s: %s\n", path, strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  *len = n;
  return buf;
}

static int looks_like_json(const char *data, size_t len) {
  size_t i;
  for (i = 0; i < len; ++i) {
    if (!isspace((unsigned char)data[i])) return data[i] == '{';
  }
  return 0;
}

static int cmd_parse(int argc, char **argv) {
  ambient_spiffe_id *id = NULL;
  ambient_error *err;
  if (argc == 2 && ambientctl_is_help(argv[1])) {
    parse_usage(stdout);
    return AMBIENTCTL_OK;
  }
  if (argc != 2) {
    fprintf(stderr, "ambientctl spiffe parse: expected exactly one ID\n");
    parse_usage(stderr);
    return AMBIENTCTL_USAGE;
  }
  err = ambient_spiffe_id_parse(argv[1], strlen(argv[1]), &id);
  if (err != NULL) return ambientctl_fail("spiffe parse", err);
  printf("trust_domain=%s path=%s\n", ambient_spiffe_id_get0_trust_domain(id),
         ambient_spiffe_id_get0_path(id));
  ambient_spiffe_id_free(id);
  return AMBIENTCTL_OK;
}

static int parse_seconds(const char *text, int64_t *out) {
  char *end = NULL;
  long long v;
  errno = 0;
  if (text[0] == '\0' || text[0] == '-' || isspace((unsigned char)text[0])) return 0;
  v = strtoll(text, &end, 10);
  if (errno != 0 || end == NULL || *end != '\0') return 0;
  *out = (int64_t)v;
  return 1;
}

/* Reports whether `td` is a valid trust-domain name (or a SPIFFE ID). */
static int valid_trust_domain(const char *td) {
  char buf[300];
  size_t len = strlen(td);
  if (strstr(td, ":/") != NULL) return ambient_spiffe_id_validate(td, len, NULL) == AMBIENT_OK;
  if (len == 0 || len > 255 || strchr(td, '/') != NULL) return 0;
  memcpy(buf, "spiffe://", 9);
  memcpy(buf + 9, td, len);
  return ambient_spiffe_id_validate(buf, 9 + len, NULL) == AMBIENT_OK;
}

static int cmd_verify(int argc, char **argv) {
  const char *bundle_path = NULL;
  const char *chain_path = NULL;
  const char *trust_domain = "cluster.local";
  ambient_verify_options *options = NULL;
  ambient_trust_bundles *bundles = NULL;
  ambient_svid_verifier *verifier = NULL;
  ambient_spiffe_id *peer = NULL;
  ambient_error *err = NULL;
  char *bundle = NULL;
  char *chain = NULL;
  size_t bundle_len = 0;
  size_t chain_len = 0;
  int rc = AMBIENTCTL_FAIL;
  int i;

  options = ambient_verify_options_new();
  if (options == NULL) return ambientctl_fail("spiffe verify", NULL);
  for (i = 1; i < argc; ++i) {
    const char *flag = argv[i];
    if (ambientctl_is_help(flag)) {
      verify_usage(stdout);
      rc = AMBIENTCTL_OK;
      goto done;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "ambientctl spiffe verify: %s needs a value\n", flag);
      rc = AMBIENTCTL_USAGE;
      goto done;
    }
    if (strcmp(flag, "--bundle") == 0) {
      bundle_path = argv[++i];
    } else if (strcmp(flag, "--chain") == 0) {
      chain_path = argv[++i];
    } else if (strcmp(flag, "--trust-domain") == 0) {
      trust_domain = argv[++i];
    } else if (strcmp(flag, "--expect") == 0) {
      const char *expect = argv[++i];
      err = ambient_verify_options_add_expected_id(options, expect, strlen(expect));
      if (err != NULL) {
        fprintf(stderr, "ambientctl spiffe verify: --expect: %s\n", ambient_error_message(err));
        ambient_error_free(err);
        rc = AMBIENTCTL_USAGE;
        goto done;
      }
    } else if (strcmp(flag, "--at") == 0) {
      int64_t at = 0;
      if (!parse_seconds(argv[++i], &at)) {
        fprintf(stderr, "ambientctl spiffe verify: --at needs Unix seconds, got '%s'\n", argv[i]);
        rc = AMBIENTCTL_USAGE;
        goto done;
      }
      ambient_verify_options_set_time(options, at);
    } else {
      fprintf(stderr, "ambientctl spiffe verify: unknown flag '%s'\n", flag);
      verify_usage(stderr);
      rc = AMBIENTCTL_USAGE;
      goto done;
    }
  }
  if (bundle_path == NULL || chain_path == NULL) {
    fprintf(stderr, "ambientctl spiffe verify: --bundle and --chain are required\n");
    verify_usage(stderr);
    rc = AMBIENTCTL_USAGE;
    goto done;
  }

  if (!valid_trust_domain(trust_domain)) {
    fprintf(stderr, "ambientctl spiffe verify: --trust-domain: '%s' is not a valid trust domain\n",
            trust_domain);
    rc = AMBIENTCTL_USAGE;
    goto done;
  }

  bundle = read_file(bundle_path, &bundle_len);
  if (bundle == NULL) goto done;
  chain = read_file(chain_path, &chain_len);
  if (chain == NULL) goto done;

  err = ambient_trust_bundles_new(&bundles);
  if (err != NULL) {
    rc = ambientctl_fail("spiffe verify", err);
    goto done;
  }
  if (looks_like_json(bundle, bundle_len)) {
    /* A SPIFFE bundle of --trust-domain, else a bundle map. */
    err = ambient_trust_bundles_set_spiffe_json(bundles, trust_domain, bundle, bundle_len);
    if (err != NULL) {
      ambient_error *map_err =
          ambient_trust_bundles_set_bundle_map_json(bundles, bundle, bundle_len);
      if (map_err == NULL) {
        ambient_error_free(err);
        err = NULL;
      } else {
        ambient_error_free(map_err);
      }
    }
  } else {
    err = ambient_trust_bundles_set_pem(bundles, trust_domain, bundle, bundle_len);
  }
  if (err != NULL) {
    rc = ambientctl_fail(bundle_path, err);
    goto done;
  }
  err = ambient_svid_verifier_new(bundles, options, &verifier);
  if (err != NULL) {
    rc = ambientctl_fail("spiffe verify", err);
    goto done;
  }
  err = ambient_svid_verifier_verify_pem(verifier, chain, chain_len, &peer);
  if (err != NULL) {
    rc = ambientctl_fail("spiffe verify", err);
    goto done;
  }
  printf("identity=%s\n", ambient_spiffe_id_get0_string(peer));
  rc = AMBIENTCTL_OK;

done:
  ambient_spiffe_id_free(peer);
  ambient_svid_verifier_free(verifier);
  ambient_trust_bundles_free(bundles);
  ambient_verify_options_free(options);
  free(bundle);
  free(chain);
  return rc;
}

int ambientctl_spiffe(int argc, char **argv) {
  if (argc < 2) {
    spiffe_usage(stderr);
    return AMBIENTCTL_USAGE;
  }
  if (ambientctl_is_help(argv[1])) {
    spiffe_usage(stdout);
    return AMBIENTCTL_OK;
  }
  if (strcmp(argv[1], "parse") == 0) return cmd_parse(argc - 1, argv + 1);
  if (strcmp(argv[1], "verify") == 0) return cmd_verify(argc - 1, argv + 1);
  fprintf(stderr, "ambientctl spiffe: unknown command '%s'\n", argv[1]);
  spiffe_usage(stderr);
  return AMBIENTCTL_USAGE;
}
