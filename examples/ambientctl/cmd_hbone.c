/* ambientctl hbone: serve, connect and forward over HBONE tunnels. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ambientctl.h"

#define MAX_IDS 64

typedef struct hbone_flags {
  const char *listen;
  const char *via;
  const char *authority;
  const char *cert;
  const char *key;
  const char *bundle;
  const char *ids[MAX_IDS]; /* --allow (serve) or --expect (connect, forward) */
  size_t n_ids;
  int verbose;
} hbone_flags;

static ambient_runtime_loop *g_loop = NULL;

static void on_signal(int sig) {
  (void)sig;
  if (g_loop != NULL) ambient_runtime_loop_stop(g_loop);
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
}

static const char *level_name(ambient_log_level level) {
  switch (level) {
    case AMBIENT_LOG_DEBUG: return "debug";
    case AMBIENT_LOG_INFO: return "info";
    case AMBIENT_LOG_WARN: return "warn";
    default: return "error";
  }
}

/* Log lines go to stderr (stdout may carry tunnel data), in node-proxy's
 * format: "2026-01-02T03:04:05.123456Z  info  access  message". Debug lines
 * only with --verbose; access lines of `connect` only with --verbose too. */
static void log_line(void *user, ambient_log_level level, const char *component,
                     const char *message, size_t len) {
  const hbone_flags *f = (const hbone_flags *)user;
  struct timespec ts;
  struct tm t;
  char when[32];
  if (level == AMBIENT_LOG_DEBUG && !f->verbose) return;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &t);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &t);
  fprintf(stderr, "%s.%06ldZ  %-5s %s  %.*s\n", when, ts.tv_nsec / 1000, level_name(level),
          component, (int)len, message);
}

static void quiet_log(void *user, ambient_log_level level, const char *component,
                      const char *message, size_t len) {
  const hbone_flags *f = (const hbone_flags *)user;
  if (!f->verbose) return;
  log_line(user, level, component, message, len);
}

static const char kServeHelp[] =
    "usage: ambientctl hbone serve --listen ADDR TLS [--allow ID]... [--verbose]\n"
    "\n"
    "Accepts HBONE tunnels on --listen and forwards each CONNECT to its :authority\n"
    "(a numeric ip:port), answering 401 to clients not named by --allow (when given)\n"
    "and 503 when the target cannot be reached. Prints 'listening on ADDR' on stdout\n"
    "and runs until SIGINT/SIGTERM; one access log line per tunnel on stderr.\n"
    "\n"
    "  --allow ID   a client's full SPIFFE ID, e.g. spiffe://cluster.local/ns/default/sa/demo\n"
    "               (repeatable). Anything else (no 'spiffe://', a trailing '/') is\n"
    "               refused at start with the reason.\n";

static const char kConnectHelp[] =
    "usage: ambientctl hbone connect --via ADDR --authority HOST:PORT TLS [--expect ID]...\n"
    "                                [--verbose]\n"
    "\n"
    "Carries stdin/stdout through one tunnel, like nc. Exit 0 after a clean close; 1\n"
    "when the tunnel cannot be made, the server's identity is not one of --expect, or\n"
    "the tunnel breaks. Access log lines on stderr only with --verbose.\n"
    "\n"
    "  --via ADDR             the HBONE server, a numeric ip:port (no host names)\n"
    "  --authority HOST:PORT  where the server should connect, e.g. 127.0.0.1:8080\n"
    "  --expect ID            a SPIFFE ID the server may have (repeatable; default: any\n"
    "                         identity in the bundle's trust domain)\n";

static const char kForwardHelp[] =
    "usage: ambientctl hbone forward --listen ADDR --via ADDR --authority HOST:PORT TLS\n"
    "                                [--expect ID]... [--verbose]\n"
    "\n"
    "Turns each TCP connection accepted on --listen into one tunnel on a pooled HBONE\n"
    "connection to --via. Prints 'listening on ADDR' on stdout and runs until\n"
    "SIGINT/SIGTERM; one access log line per tunnel on stderr.\n";

static const char kCommonHelp[] =
    "\n"
    "TLS:   --cert FILE --key FILE --bundle FILE\n"
    "ADDR is ip:port or [ipv6]:port (port 0 picks one for --listen). --cert is our\n"
    "certificate chain (PEM, leaf first, one SPIFFE ID URI SAN), --key its private\n"
    "key (PEM), --bundle the trust anchors of our trust domain (PEM, or SPIFFE bundle\n"
    "JSON). Every flag also takes the --flag=value form.\n";

/* usage prints the help of subcommand `cmd`, or of all three when NULL. */
static void usage(FILE *out, const char *cmd) {
  if (cmd == NULL) {
    fprintf(out,
            "usage: ambientctl hbone serve   --listen ADDR TLS [--allow ID]...\n"
            "       ambientctl hbone connect --via ADDR --authority HOST:PORT TLS [--expect ID]...\n"
            "       ambientctl hbone forward --listen ADDR --via ADDR --authority HOST:PORT TLS\n"
            "                                [--expect ID]...\n"
            "\n"
            "HBONE tunnels: TLS 1.3 mutual TLS with SPIFFE identities, HTTP/2 CONNECT.\n"
            "  serve    accept tunnels and forward each CONNECT to its :authority\n"
            "  connect  carry stdin/stdout through one tunnel, like nc\n"
            "  forward  turn each accepted TCP connection into one tunnel\n"
            "Run 'ambientctl hbone <subcommand> --help' for its flags.\n%s",
            kCommonHelp);
    return;
  }
  fprintf(out, "%s%s",
          strcmp(cmd, "serve") == 0     ? kServeHelp
          : strcmp(cmd, "connect") == 0 ? kConnectHelp
                                        : kForwardHelp,
          kCommonHelp);
}

/* parse reads flags into `f`; returns 0, or AMBIENTCTL_USAGE after printing
 * why. `ids_flag` is "--allow" or "--expect". */
static int parse(int argc, char **argv, const char *cmd, const char *ids_flag, hbone_flags *f) {
  int i;
  memset(f, 0, sizeof(*f));
  for (i = 0; i < argc; ++i) {
    const char *arg = argv[i];
    const char **slot = NULL;
    const char *value;
    const char *eq;
    size_t name_len;
    if (ambientctl_is_help(arg)) {
      usage(stdout, cmd);
      return -1;
    }
    if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
      f->verbose = 1;
      continue;
    }
    eq = strchr(arg, '=');
    name_len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
#define IS(name) (strlen(name) == name_len && strncmp(arg, name, name_len) == 0)
    if (IS("--listen")) slot = &f->listen;
    else if (IS("--via")) slot = &f->via;
    else if (IS("--authority")) slot = &f->authority;
    else if (IS("--cert")) slot = &f->cert;
    else if (IS("--key")) slot = &f->key;
    else if (IS("--bundle")) slot = &f->bundle;
    else if (!IS(ids_flag)) {
      fprintf(stderr, "ambientctl hbone %s: unknown flag '%s'\n", cmd, arg);
      return AMBIENTCTL_USAGE;
    }
#undef IS
    if (eq != NULL) {
      value = eq + 1;
    } else {
      if (i + 1 >= argc) {
        fprintf(stderr, "ambientctl hbone %s: %s needs a value\n", cmd, arg);
        return AMBIENTCTL_USAGE;
      }
      value = argv[++i];
    }
    if (slot != NULL) {
      *slot = value;
    } else {
      if (f->n_ids == MAX_IDS) {
        fprintf(stderr, "ambientctl hbone %s: at most %d %s flags\n", cmd, MAX_IDS, ids_flag);
        return AMBIENTCTL_USAGE;
      }
      f->ids[f->n_ids++] = value;
    }
  }
  return 0;
}

static int require(const char *cmd, const char *flag, const char *value) {
  if (value != NULL) return 0;
  fprintf(stderr, "ambientctl hbone %s: %s is required (see --help)\n", cmd, flag);
  return AMBIENTCTL_USAGE;
}

/* check_address asks the library whether `value` is an address it takes: a
 * numeric ip:port (`numeric`: --listen, --via) or a CONNECT authority
 * (--authority, where a host name is allowed). On refusal it prints the
 * library's reason and what to write instead, and returns AMBIENTCTL_USAGE;
 * else 0. */
static int check_address(const char *cmd, const char *flag, const char *value, int numeric) {
  ambient_socket_address *addr = NULL;
  ambient_error *err = numeric ? ambient_socket_address_parse(value, strlen(value), &addr)
                               : ambient_hbone_authority_check(value, strlen(value));
  ambient_socket_address_free(addr);
  if (err == NULL) return 0;
  fprintf(stderr, "ambientctl hbone %s: %s: %s (%s)\n", cmd, flag, ambient_error_message(err),
          numeric ? "a numeric IP:port is needed, e.g. 127.0.0.1:15008 or [::1]:15008; host "
                    "names are not resolved"
                  : "write HOST:PORT with a port from 1 to 65535, e.g. 127.0.0.1:8080, "
                    "[::1]:8080 or echo.default.svc.cluster.local:8080");
  ambient_error_free(err);
  return AMBIENTCTL_USAGE;
}

static int require_tls(const char *cmd, const hbone_flags *f) {
  int rc = require(cmd, "--cert", f->cert);
  if (rc == 0) rc = require(cmd, "--key", f->key);
  if (rc == 0) rc = require(cmd, "--bundle", f->bundle);
  return rc;
}

/* new_target makes the tunnel target of --via, --authority and --expect;
 * NULL with *err set on failure. */
static ambient_hbone_target *new_target(const hbone_flags *f, ambient_error **err) {
  ambient_hbone_target *t = ambient_hbone_target_new();
  size_t i;
  *err = NULL;
  if (t == NULL) {
    fprintf(stderr, "ambientctl: out of memory\n");
    return NULL;
  }
  *err = ambient_hbone_target_set_via(t, f->via);
  if (*err == NULL) *err = ambient_hbone_target_set_authority(t, f->authority);
  for (i = 0; *err == NULL && i < f->n_ids; ++i) {
    *err = ambient_hbone_target_add_expected(t, f->ids[i]);
  }
  if (*err != NULL) {
    ambient_hbone_target_free(t);
    return NULL;
  }
  return t;
}

/* new_server makes the server of --listen and --allow, logging to
 * log_line. */
static ambient_error *new_server(const ambient_hbone_tls *tls, hbone_flags *f,
                                 ambient_hbone_server **out) {
  ambient_hbone_server_options *o = ambient_hbone_server_options_new();
  ambient_error *err;
  size_t i;
  if (o == NULL) {
    fprintf(stderr, "ambientctl: out of memory\n");
    return NULL;
  }
  err = ambient_hbone_server_options_set_listen(o, f->listen);
  for (i = 0; err == NULL && i < f->n_ids; ++i) {
    err = ambient_hbone_server_options_add_allow(o, f->ids[i]);
  }
  ambient_hbone_server_options_set_log(o, log_line, f);
  if (err == NULL) err = ambient_hbone_server_new(g_loop, tls, o, out);
  ambient_hbone_server_options_free(o);
  return err;
}

static int serve(int argc, char **argv) {
  hbone_flags f;
  ambient_hbone_tls *tls = NULL;
  ambient_hbone_server *server = NULL;
  ambient_error *err;
  int rc = parse(argc, argv, "serve", "--allow", &f);
  if (rc < 0) return AMBIENTCTL_OK;
  if (rc == 0) rc = require("serve", "--listen", f.listen);
  if (rc == 0) rc = require_tls("serve", &f);
  if (rc != 0) return rc;
  if (f.via != NULL || f.authority != NULL) {
    fprintf(stderr, "ambientctl hbone serve: --via/--authority belong to connect and forward\n");
    return AMBIENTCTL_USAGE;
  }
  rc = check_address("serve", "--listen", f.listen, 1);
  if (rc != 0) return rc;
  err = ambient_hbone_tls_new_from_files(AMBIENT_HBONE_SERVER, f.cert, f.key, f.bundle, &tls);
  if (err != NULL) return ambientctl_fail("hbone serve: TLS setup", err);
  err = ambient_runtime_loop_new(&g_loop);
  if (err != NULL) {
    ambient_hbone_tls_free(tls);
    return ambientctl_fail("hbone serve", err);
  }
  err = new_server(tls, &f, &server);
  ambient_hbone_tls_free(tls);
  if (err != NULL || server == NULL) {
    ambient_runtime_loop_free(g_loop);
    g_loop = NULL;
    return ambientctl_fail("hbone serve", err);
  }
  install_signals();
  printf("listening on %s\n", ambient_hbone_server_get0_address(server));
  fflush(stdout);
  ambient_runtime_loop_run(g_loop);
  ambient_hbone_server_free(server);
  ambient_runtime_loop_run_for(g_loop, 10);
  ambient_runtime_loop_free(g_loop);
  g_loop = NULL;
  return AMBIENTCTL_OK;
}

typedef struct tunnel_outcome {
  int done;
  int code;
  int http_status;
  char message[512];
} tunnel_outcome;

static void on_tunnel_done(void *user, int code, int http_status, const char *message) {
  tunnel_outcome *o = (tunnel_outcome *)user;
  o->done = 1;
  o->code = code;
  o->http_status = http_status;
  snprintf(o->message, sizeof(o->message), "%s", message != NULL ? message : "");
  ambient_runtime_loop_stop(g_loop);
}

static int setup_client(const char *cmd, hbone_flags *f, ambient_hbone_client **client,
                        ambient_log_fn log) {
  ambient_hbone_tls *tls = NULL;
  ambient_error *err =
      ambient_hbone_tls_new_from_files(AMBIENT_HBONE_CLIENT, f->cert, f->key, f->bundle, &tls);
  char what[64];
  snprintf(what, sizeof(what), "hbone %s: TLS setup", cmd);
  if (err != NULL) return ambientctl_fail(what, err);
  err = ambient_runtime_loop_new(&g_loop);
  if (err == NULL) {
    ambient_hbone_client_options *opts = ambient_hbone_client_options_new();
    if (opts == NULL) {
      fprintf(stderr, "ambientctl: out of memory\n");
      ambient_hbone_tls_free(tls);
      ambient_runtime_loop_free(g_loop);
      g_loop = NULL;
      return 1;
    }
    ambient_hbone_client_options_set_log(opts, log, f);
    err = ambient_hbone_client_new(g_loop, tls, opts, client);
    ambient_hbone_client_options_free(opts);
  }
  ambient_hbone_tls_free(tls);
  if (err != NULL) {
    ambient_runtime_loop_free(g_loop);
    g_loop = NULL;
    snprintf(what, sizeof(what), "hbone %s", cmd);
    return ambientctl_fail(what, err);
  }
  return 0;
}

static int connect_cmd(int argc, char **argv) {
  hbone_flags f;
  ambient_hbone_client *client = NULL;
  ambient_hbone_target *target;
  ambient_error *err = NULL;
  tunnel_outcome outcome;
  int rc = parse(argc, argv, "connect", "--expect", &f);
  if (rc < 0) return AMBIENTCTL_OK;
  if (rc == 0) rc = require("connect", "--via", f.via);
  if (rc == 0) rc = require("connect", "--authority", f.authority);
  if (rc == 0) rc = require_tls("connect", &f);
  if (rc != 0) return rc;
  if (f.listen != NULL) {
    fprintf(stderr, "ambientctl hbone connect: --listen belongs to serve and forward\n");
    return AMBIENTCTL_USAGE;
  }
  rc = check_address("connect", "--via", f.via, 1);
  if (rc == 0) rc = check_address("connect", "--authority", f.authority, 0);
  if (rc != 0) return rc;
  rc = setup_client("connect", &f, &client, quiet_log);
  if (rc != 0) return rc;
  memset(&outcome, 0, sizeof(outcome));
  install_signals();
  target = new_target(&f, &err);
  rc = target == NULL ? AMBIENT_ERR_INVALID_ARGUMENT
                      : ambient_hbone_client_tunnel(client, target, 0, 1, on_tunnel_done, &outcome);
  ambient_hbone_target_free(target);
  if (rc != 0) {
    if (err != NULL) {
      fprintf(stderr, "ambientctl: hbone connect: %s\n", ambient_error_message(err));
      ambient_error_free(err);
    } else {
      fprintf(stderr, "ambientctl: hbone connect: %s\n", ambient_strerror(rc));
    }
    ambient_hbone_client_free(client);
    ambient_runtime_loop_free(g_loop);
    g_loop = NULL;
    return AMBIENTCTL_USAGE;
  }
  ambient_runtime_loop_run(g_loop);
  ambient_hbone_client_free(client);
  ambient_runtime_loop_run_for(g_loop, 10);
  ambient_runtime_loop_free(g_loop);
  g_loop = NULL;
  fflush(stdout);
  if (!outcome.done) {
    fprintf(stderr, "ambientctl: hbone connect: interrupted\n");
    return AMBIENTCTL_FAIL;
  }
  if (outcome.code != AMBIENT_OK) {
    fprintf(stderr, "ambientctl: hbone connect: %s\n", outcome.message);
    return AMBIENTCTL_FAIL;
  }
  return AMBIENTCTL_OK;
}

static int forward(int argc, char **argv) {
  hbone_flags f;
  ambient_hbone_client *client = NULL;
  ambient_hbone_forwarder *fwd = NULL;
  ambient_hbone_target *target;
  ambient_error *err = NULL;
  int rc = parse(argc, argv, "forward", "--expect", &f);
  if (rc < 0) return AMBIENTCTL_OK;
  if (rc == 0) rc = require("forward", "--listen", f.listen);
  if (rc == 0) rc = require("forward", "--via", f.via);
  if (rc == 0) rc = require("forward", "--authority", f.authority);
  if (rc == 0) rc = require_tls("forward", &f);
  if (rc == 0) rc = check_address("forward", "--listen", f.listen, 1);
  if (rc == 0) rc = check_address("forward", "--via", f.via, 1);
  if (rc == 0) rc = check_address("forward", "--authority", f.authority, 0);
  if (rc != 0) return rc;
  rc = setup_client("forward", &f, &client, log_line);
  if (rc != 0) return rc;
  target = new_target(&f, &err);
  if (target != NULL) err = ambient_hbone_forwarder_new(g_loop, client, f.listen, target, &fwd);
  ambient_hbone_target_free(target);
  if (fwd == NULL) {
    ambient_hbone_client_free(client);
    ambient_runtime_loop_free(g_loop);
    g_loop = NULL;
    return ambientctl_fail("hbone forward", err);
  }
  install_signals();
  printf("listening on %s\n", ambient_hbone_forwarder_get0_address(fwd));
  fflush(stdout);
  ambient_runtime_loop_run(g_loop);
  ambient_hbone_forwarder_free(fwd);
  ambient_hbone_client_free(client);
  ambient_runtime_loop_run_for(g_loop, 10);
  ambient_runtime_loop_free(g_loop);
  g_loop = NULL;
  return AMBIENTCTL_OK;
}

int ambientctl_hbone(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr, NULL);
    return AMBIENTCTL_USAGE;
  }
  if (ambientctl_is_help(argv[1])) {
    usage(stdout, NULL);
    return AMBIENTCTL_OK;
  }
  if (strcmp(argv[1], "serve") == 0) return serve(argc - 2, argv + 2);
  if (strcmp(argv[1], "connect") == 0) return connect_cmd(argc - 2, argv + 2);
  if (strcmp(argv[1], "forward") == 0) return forward(argc - 2, argv + 2);
  fprintf(stderr, "ambientctl hbone: unknown subcommand '%s'\n", argv[1]);
  usage(stderr, NULL);
  return AMBIENTCTL_USAGE;
}
