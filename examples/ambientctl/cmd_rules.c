/* ambientctl rules: render, apply, check and delete istio-cni's redirect rules. */
#include <stdio.h>
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
          "usage: ambientctl rules render [CONFIG]\n"
          "       ambientctl rules apply|check|delete --netns NAME_OR_PATH [CONFIG]\n"
          "\n"
          "render  print the rules istio-cni would install (iptables-restore payload,\n"
          "        IPv4 then IPv6, or nft script) on stdout\n"
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
  size_t len = 0;
  int rc;
  if (has_help(argc, argv)) {
    printf("usage: ambientctl rules render [CONFIG]\n\n"
           "Prints the rules on stdout exactly as istio-cni renders them.\n\n%s",
           kConfigHelp);
    return AMBIENTCTL_OK;
  }
  config = ambient_redirect_config_new();
  if (config == NULL) return ambientctl_fail("rules render", NULL);
  rc = parse_config("render", config, argc, argv);
  if (rc != AMBIENTCTL_OK) {
    ambient_redirect_config_free(config);
    return rc;
  }
  err = ambient_redirect_render(config, &text, &len);
  ambient_redirect_config_free(config);
  if (err != NULL) return ambientctl_fail("rules render", err);
  rc = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? AMBIENTCTL_OK : AMBIENTCTL_FAIL;
  if (rc != AMBIENTCTL_OK) fprintf(stderr, "ambientctl rules render: cannot write to stdout\n");
  ambient_redirect_text_free(text);
  return rc;
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
  fprintf(stderr, "ambientctl rules: unknown subcommand '%s'\n", argv[1]);
  usage(stderr);
  return AMBIENTCTL_USAGE;
}
