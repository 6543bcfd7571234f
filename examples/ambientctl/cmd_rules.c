/* ambientctl rules: render, apply, check and delete istio-cni's redirect rules. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ambientctl.h"

static const char kConfigHelp[] =
    "CONFIG flags:\n"
    "  --backend iptables|nftables   rule backend (default iptables)\n"
    "  --host                        node-level probe SNAT rules instead of in-pod rules\n"
    "  --ipv6                        IPv6 rules and policy routing too\n"
    "  --dns-capture on|off          mesh-wide DNS capture (default on)\n"
    "  --pod-dns-capture on|off      per-pod DNS capture override\n"
    "  --bypass-inbound              ingress mode: no inbound capture\n"
    "  --reroute-interface NAME      treat inbound TCP on NAME as outbound (repeatable)\n"
    "  --probe-snat-v4 IP            probe SNAT address (default 169.254.7.127)\n"
    "  --probe-snat-v6 IP            (default fd16:9254:7127:1337:ffff:ffff:ffff:ffff)\n"
    "  --kubelet-uid N               kubelet UID for nftables host rules (default: found in /proc)\n";

static void usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl rules render [--family 4|6] [CONFIG]\n"
          "       ambientctl rules apply|check|delete --netns NAME_OR_PATH [CONFIG]\n"
          "\n"
          "render  print the rules istio-cni would install (iptables-restore payload,\n"
          "        IPv4 then IPv6, or nft script) on stdout; --family 4|6 prints one\n"
          "        family's payload for iptables-restore / ip6tables-restore\n"
          "apply   install the rules and policy routing in a network namespace, all or\n"
          "        nothing; re-applying is a no-op\n"
          "check   report drift from the expected rules; exit status 1 when drifted\n"
          "delete  remove exactly what apply installs, leaving other rules alone\n"
          "\n"
          "--netns takes a name under /var/run/netns or a path such as /proc/PID/ns/net.\n"
          "\n%s",
          kConfigHelp);
}

static int has_help(int argc, char **argv) {
  int i;
  for (i = 0; i < argc; ++i) {
    if (ambientctl_is_help(argv[i])) return 1;
  }
  return 0;
}

/* parse_config fills `config` from argv; on failure prints the reason and
 * returns the exit status to use. */
static int parse_config(const char *cmd, ambient_redirect_config *config, int argc, char **argv) {
  ambient_error *err =
      ambient_redirect_config_parse_flags(config, argc, (const char *const *)argv);
  if (err != NULL) {
    fprintf(stderr, "ambientctl rules %s: %s\n", cmd, ambient_error_message(err));
    ambient_error_free(err);
    return AMBIENTCTL_USAGE;
  }
  return AMBIENTCTL_OK;
}

static int render(int argc, char **argv) {
  ambient_redirect_config *config;
  ambient_error *err;
  char *text = NULL;
  char **rest;
  size_t len = 0;
  int rc, i, nrest = 0, family = 0;
  if (has_help(argc, argv)) {
    printf("usage: ambientctl rules render [--family 4|6] [CONFIG]\n\n"
           "Prints the rules on stdout exactly as istio-cni renders them: for iptables\n"
           "the restore payload (with --ipv6: the IPv4 payload, then the IPv6 one, as\n"
           "in istio's goldens), for nftables the nft script.\n\n"
           "  --family 4|6   only that family's iptables payload, ending in a newline,\n"
           "                 ready for the restore tool of that family:\n"
           "                   ambientctl rules render --ipv6 --family 4 | iptables-restore\n"
           "                   ambientctl rules render --ipv6 --family 6 | ip6tables-restore\n"
           "                 (nftables: nft -f reads the whole script, both families)\n\n%s",
           kConfigHelp);
    return AMBIENTCTL_OK;
  }
  rest = (char **)calloc((size_t)argc + 1, sizeof(char *));
  if (rest == NULL) return ambientctl_fail("rules render", NULL);
  for (i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--family") == 0) {
      if (i + 1 >= argc || (strcmp(argv[i + 1], "4") != 0 && strcmp(argv[i + 1], "6") != 0)) {
        fprintf(stderr, "ambientctl rules render: --family takes 4 or 6\n");
        free(rest);
        return AMBIENTCTL_USAGE;
      }
      family = argv[++i][0] - '0';
    } else {
      rest[nrest++] = argv[i];
    }
  }
  config = ambient_redirect_config_new();
  if (config == NULL) {
    free(rest);
    return ambientctl_fail("rules render", NULL);
  }
  rc = parse_config("render", config, nrest, rest);
  free(rest);
  if (rc != AMBIENTCTL_OK) {
    ambient_redirect_config_free(config);
    return rc;
  }
  /* The text goes into our buffer: ask for its length, then fetch it. */
  err = family != 0 ? ambient_redirect_render_family(config, family, NULL, 0, &len)
                    : ambient_redirect_render(config, NULL, 0, &len);
  if (err == NULL) {
    text = malloc(len + 1);
    if (text == NULL) {
      ambient_redirect_config_free(config);
      fprintf(stderr, "ambientctl rules render: out of memory\n");
      return AMBIENTCTL_FAIL;
    }
    err = family != 0 ? ambient_redirect_render_family(config, family, text, len + 1, &len)
                      : ambient_redirect_render(config, text, len + 1, &len);
  }
  ambient_redirect_config_free(config);
  if (err != NULL && family != 0 && ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT) {
    fprintf(stderr, "ambientctl rules render: --family %d: %s\n", family,
            ambient_error_message(err));
    ambient_error_free(err);
    free(text);
    return AMBIENTCTL_USAGE;
  }
  if (err != NULL) {
    free(text);
    return ambientctl_fail("rules render", err);
  }
  rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? AMBIENTCTL_OK : AMBIENTCTL_FAIL;
  if (rc != AMBIENTCTL_OK) fprintf(stderr, "ambientctl rules render: cannot write to stdout\n");
  free(text);
  return rc;
}

/* netns_op runs apply, check or delete: --netns NAME_OR_PATH plus CONFIG. */
static int netns_op(const char *cmd, int argc, char **argv) {
  const char *netns = NULL;
  char **rest;
  int nrest = 0, i, rc;
  ambient_redirect_config *config;
  ambient_netns *ns = NULL;
  ambient_error *err = NULL;
  if (has_help(argc, argv)) {
    printf("usage: ambientctl rules %s --netns NAME_OR_PATH [CONFIG]\n\n%s\n%s", cmd,
           strcmp(cmd, "apply") == 0
               ? "Installs the rules and, for in-pod rules, the fwmark policy routing, all or\n"
                 "nothing. Applying again changes nothing.\n"
           : strcmp(cmd, "check") == 0
               ? "Prints each difference from the expected rules on stdout; exit status 1\n"
                 "when there is any.\n"
               : "Removes exactly what apply installs; other rules stay.\n",
           kConfigHelp);
    return AMBIENTCTL_OK;
  }
  rest = (char **)calloc((size_t)argc + 1, sizeof(char *));
  if (rest == NULL) return ambientctl_fail(cmd, NULL);
  for (i = 0; i < argc; ++i) {
    if (strcmp(argv[i], "--netns") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "ambientctl rules %s: --netns needs a value\n", cmd);
        free(rest);
        return AMBIENTCTL_USAGE;
      }
      netns = argv[++i];
    } else if (strncmp(argv[i], "--netns=", 8) == 0) {
      netns = argv[i] + 8;
    } else {
      rest[nrest++] = argv[i];
    }
  }
  if (netns == NULL || netns[0] == '\0') {
    fprintf(stderr, "ambientctl rules %s: --netns NAME_OR_PATH is required\n", cmd);
    free(rest);
    return AMBIENTCTL_USAGE;
  }
  config = ambient_redirect_config_new();
  if (config == NULL) {
    free(rest);
    return ambientctl_fail(cmd, NULL);
  }
  rc = parse_config(cmd, config, nrest, rest);
  free(rest);
  if (rc != AMBIENTCTL_OK) {
    ambient_redirect_config_free(config);
    return rc;
  }
  err = ambient_netns_open(netns, &ns);
  if (err == NULL && strcmp(cmd, "apply") == 0) {
    err = ambient_redirect_apply(config, ns);
  } else if (err == NULL && strcmp(cmd, "delete") == 0) {
    err = ambient_redirect_delete(config, ns);
  } else if (err == NULL) {
    ambient_redirect_drift *drift = NULL;
    err = ambient_redirect_check(config, ns, &drift);
    if (err == NULL) {
      size_t n = ambient_redirect_drift_count(drift), k;
      for (k = 0; k < n; ++k) printf("%s\n", ambient_redirect_drift_get0(drift, k));
      ambient_redirect_drift_free(drift);
      ambient_redirect_config_free(config);
      ambient_netns_free(ns);
      if (n > 0) {
        fprintf(stderr, "ambientctl rules check: %lu difference(s) in %s\n", (unsigned long)n, netns);
        return AMBIENTCTL_FAIL;
      }
      return AMBIENTCTL_OK;
    }
  }
  ambient_netns_free(ns);
  ambient_redirect_config_free(config);
  if (err != NULL) {
    char what[64];
    snprintf(what, sizeof(what), "rules %s", cmd);
    return ambientctl_fail(what, err);
  }
  return AMBIENTCTL_OK;
}

int ambientctl_rules(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return AMBIENTCTL_USAGE;
  }
  if (ambientctl_is_help(argv[1])) {
    usage(stdout);
    return AMBIENTCTL_OK;
  }
  if (strcmp(argv[1], "render") == 0) return render(argc - 2, argv + 2);
  if (strcmp(argv[1], "apply") == 0 || strcmp(argv[1], "check") == 0 ||
      strcmp(argv[1], "delete") == 0) {
    return netns_op(argv[1], argc - 2, argv + 2);
  }
  fprintf(stderr, "ambientctl rules: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return AMBIENTCTL_USAGE;
}
