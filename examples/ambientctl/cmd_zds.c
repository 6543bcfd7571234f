/* ambientctl zds: both ends of the ZDS netns handoff, for trying it by hand.
 *
 *   ambientctl zds proxy --socket PATH   node proxy: opens the in-pod listener
 *                                        set in each added pod, accepts and
 *                                        closes connections (no credentials)
 *   ambientctl zds agent --socket PATH --pod UID=NETNS...
 *                                        node agent: hands those pods over
 *
 * Written against the C ABI only. One line per event on stdout. */
#define _GNU_SOURCE 1 /* pipe2, accept4, strndup */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ambientctl.h"

static volatile sig_atomic_t g_stop = 0;
static int g_signal_pipe[2] = {-1, -1};

static void on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;
  g_stop = 1;
  if (g_signal_pipe[1] >= 0) (void)!write(g_signal_pipe[1], &c, 1);
  errno = saved;
}

static int install_signals(void) {
  struct sigaction sa;
  if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

static pthread_mutex_t g_print_mu = PTHREAD_MUTEX_INITIALIZER;

/* say prints one event line and flushes, so a reader sees it at once. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  pthread_mutex_lock(&g_print_mu);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&g_print_mu);
}

static void log_to_stderr(void *user_data, ambient_log_level level, const char *component,
                          const char *message, size_t message_len) {
  static const char *const kLevels[] = {"debug", "info", "warn", "error"};
  (void)user_data;
  pthread_mutex_lock(&g_print_mu);
  fprintf(stderr, "%s %s: %.*s\n", component, kLevels[level & 3], (int)message_len, message);
  pthread_mutex_unlock(&g_print_mu);
}

/* Without --verbose: info and above only (e.g. "waiting for the node agent"). */
static void log_to_stderr_quiet(void *user_data, ambient_log_level level, const char *component,
                                const char *message, size_t message_len) {
  if (level == AMBIENT_LOG_DEBUG) return;
  log_to_stderr(user_data, level, component, message, message_len);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  unsigned long v;
  if (s == NULL || *s == '\0' || *s == '-') return -1;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return -1;
  *out = v;
  return 0;
}

/* ------------------------------------------------------------------ */
/* proxy                                                               */

typedef struct pod {
  char *uid;
  ambient_pod_listeners *listeners;
} pod;

typedef struct proxy_state {
  pthread_mutex_t mu;
  pod *pods;
  size_t n_pods, cap_pods;
  pod *graveyard; /* deleted pods: closed and freed by the main thread only */
  size_t n_graveyard, cap_graveyard;
  int wake[2];
  ambient_pod_listener_options *listener_opts;
  unsigned long events;
} proxy_state;

static void wake_main(proxy_state *st) {
  char c = 1;
  (void)!write(st->wake[1], &c, 1);
}

static void free_pod(pod *p) {
  ambient_pod_listeners_free(p->listeners);
  free(p->uid);
}

/* bury hands a deleted pod to the main thread, which may still be polling
 * its sockets and using its uid; falls back to freeing it here. */
static void bury(proxy_state *st, pod dead) {
  if (st->n_graveyard == st->cap_graveyard) {
    size_t cap = st->cap_graveyard ? st->cap_graveyard * 2 : 16;
    pod *g = realloc(st->graveyard, cap * sizeof(*g));
    if (g == NULL) {
      free_pod(&dead);
      return;
    }
    st->graveyard = g;
    st->cap_graveyard = cap;
  }
  st->graveyard[st->n_graveyard++] = dead;
}

static int proxy_add(void *user_data, const char *uid, const ambient_zds_workload *w,
                     ambient_netns *netns, char *reason, size_t reason_cap) {
  proxy_state *st = user_data;
  ambient_pod_listeners *set = NULL;
  ambient_error *err = ambient_pod_listeners_open(netns, st->listener_opts, &set);
  uint64_t dev, ino;
  ambient_netns_id(netns, &dev, &ino);
  ambient_netns_free(netns); /* the sockets keep the namespace alive */
  if (err != NULL) {
    snprintf(reason, reason_cap, "opening listeners: %s", ambient_error_message(err));
    say("add-failed uid=%s error=%s", uid, ambient_error_message(err));
    ambient_error_free(err);
    return 1;
  }
  pthread_mutex_lock(&st->mu);
  if (st->n_pods == st->cap_pods) {
    size_t cap = st->cap_pods ? st->cap_pods * 2 : 16;
    pod *p = realloc(st->pods, cap * sizeof(*p));
    if (p == NULL) {
      pthread_mutex_unlock(&st->mu);
      ambient_pod_listeners_free(set);
      snprintf(reason, reason_cap, "out of memory");
      return 1;
    }
    st->pods = p;
    st->cap_pods = cap;
  }
  st->pods[st->n_pods].uid = strdup(uid);
  if (st->pods[st->n_pods].uid == NULL) {
    pthread_mutex_unlock(&st->mu);
    ambient_pod_listeners_free(set);
    snprintf(reason, reason_cap, "out of memory");
    return 1;
  }
  st->pods[st->n_pods].listeners = set;
  st->n_pods++;
  st->events++;
  pthread_mutex_unlock(&st->mu);
  say("add uid=%s name=%s namespace=%s service_account=%s netns=%llu:%llu listeners=%zu", uid,
      ambient_zds_workload_name(w), ambient_zds_workload_namespace(w),
      ambient_zds_workload_service_account(w), (unsigned long long)dev, (unsigned long long)ino,
      ambient_pod_listeners_count(set));
  wake_main(st);
  return 0;
}

static void proxy_remove(void *user_data, const char *uid) {
  proxy_state *st = user_data;
  size_t i;
  pthread_mutex_lock(&st->mu);
  for (i = 0; i < st->n_pods; ++i) {
    if (strcmp(st->pods[i].uid, uid) != 0) continue;
    bury(st, st->pods[i]);
    st->pods[i] = st->pods[--st->n_pods];
    break;
  }
  st->events++;
  pthread_mutex_unlock(&st->mu);
  say("del uid=%s", uid);
  wake_main(st);
}

static void proxy_event(void *user_data, ambient_zds_event event, const char *detail) {
  proxy_state *st = user_data;
  if (event == AMBIENT_ZDS_SNAPSHOT_COMPLETE) {
    size_t n;
    pthread_mutex_lock(&st->mu);
    n = st->n_pods;
    pthread_mutex_unlock(&st->mu);
    say("snapshot-complete pods=%zu", n);
  } else {
    say("disconnected reason=%s", detail);
  }
}

/* Accept-and-close (no credentials): TCP connections are closed at once, DNS
 * datagrams are read and dropped. */
static void drain_listener(int fd, int kind, const char *uid) {
  for (;;) {
    if (kind == AMBIENT_LISTENER_DNS_UDP) {
      char buf[512];
      if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) < 0) return;
      say("dns-datagram-dropped uid=%s", uid);
    } else {
      int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) return;
      close(c);
      say("accepted-and-closed uid=%s listener=%s", uid, ambient_listener_kind_name(kind));
    }
  }
}

static int zds_proxy_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl zds proxy --socket PATH [--no-dns] [--max-events N] [--verbose]\n"
          "\n"
          "The node proxy end of ZDS (ztunnel's role). Connects to the node agent's\n"
          "socket (retrying: 10 ms doubling to 15 s), says hello, and for each pod the\n"
          "agent adds opens the in-pod listener set inside the pod's netns (TCP 15001,\n"
          "15006, 15008 on the wildcard address, DNS 15053 UDP+TCP on loopback; SO_MARK\n"
          "0x539). Without credentials it accepts and closes connections. A deleted pod's\n"
          "listeners are closed. One line per event on stdout:\n"
          "  add uid=... name=... namespace=... service_account=... netns=DEV:INO listeners=N\n"
          "  add-failed uid=... error=...   del uid=...   snapshot-complete pods=N\n"
          "  disconnected reason=...        accepted-and-closed uid=... listener=KIND\n"
          "\n"
          "  --socket PATH     the agent's unix socket (istio: /var/run/ztunnel/ztunnel.sock)\n"
          "  --no-dns          do not open the DNS listeners\n"
          "  --max-events N    exit after N add/del events (for scripts)\n"
          "  --verbose         debug log lines on stderr too (info and above always are,\n"
          "                    e.g. 'waiting for the node agent on PATH', once, then\n"
          "                    about every 10 s while it is not reachable)\n"
          "Runs until SIGINT/SIGTERM. Needs root (setns, SO_MARK).\n");
  return out == stdout ? AMBIENTCTL_OK : AMBIENTCTL_USAGE;
}

static int zds_proxy(int argc, char **argv) {
  const char *socket_path = NULL;
  unsigned long max_events = 0;
  int dns = 1, verbose = 0, i, rc = AMBIENTCTL_OK;
  proxy_state st;
  ambient_zds_proxy_options *opts = NULL;
  ambient_zds_proxy *proxy = NULL;
  ambient_error *err = NULL;
  struct pollfd *pfds = NULL;
  int *kinds = NULL;
  char **uids = NULL;
  size_t cap = 0;

  for (i = 1; i < argc; ++i) {
    if (ambientctl_is_help(argv[i])) return zds_proxy_usage(stdout);
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (strcmp(argv[i], "--no-dns") == 0) {
      dns = 0;
    } else if (strcmp(argv[i], "--verbose") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "--max-events") == 0 && i + 1 < argc) {
      if (parse_uint(argv[++i], 1000000000UL, &max_events) != 0 || max_events == 0) {
        fprintf(stderr, "ambientctl zds proxy: --max-events wants a positive number\n");
        return AMBIENTCTL_USAGE;
      }
    } else {
      fprintf(stderr, "ambientctl zds proxy: unexpected argument '%s'\n", argv[i]);
      return zds_proxy_usage(stderr);
    }
  }
  if (socket_path == NULL) {
    fprintf(stderr, "ambientctl zds proxy: --socket is required\n");
    return zds_proxy_usage(stderr);
  }

  memset(&st, 0, sizeof(st));
  pthread_mutex_init(&st.mu, NULL);
  if (pipe2(st.wake, O_CLOEXEC | O_NONBLOCK) != 0 || install_signals() != 0) {
    perror("ambientctl zds proxy: pipe");
    return AMBIENTCTL_FAIL;
  }
  st.listener_opts = ambient_pod_listener_options_new();
  opts = ambient_zds_proxy_options_new();
  if (st.listener_opts == NULL || opts == NULL) {
    fprintf(stderr, "ambientctl zds proxy: out of memory\n");
    rc = AMBIENTCTL_FAIL;
    goto done;
  }
  ambient_pod_listener_options_set_dns(st.listener_opts, dns);
  err = ambient_zds_proxy_options_set_socket_path(opts, socket_path);
  if (err != NULL) {
    rc = ambientctl_fail("--socket", err);
    goto done;
  }
  ambient_zds_proxy_options_set_callbacks(opts, proxy_add, proxy_remove, proxy_event, &st);
  ambient_zds_proxy_options_set_log(opts, verbose ? log_to_stderr : log_to_stderr_quiet, NULL);
  err = ambient_zds_proxy_new(opts, &proxy);
  if (err == NULL) err = ambient_zds_proxy_start(proxy);
  if (err != NULL) {
    rc = ambientctl_fail("starting the ZDS proxy", err);
    goto done;
  }

  while (!g_stop) {
    size_t n = 2, p, k;
    int ready;
    pthread_mutex_lock(&st.mu);
    /* Close what was deleted: only this thread closes listener sockets. */
    for (k = 0; k < st.n_graveyard; ++k) free_pod(&st.graveyard[k]);
    st.n_graveyard = 0;
    for (p = 0; p < st.n_pods; ++p) n += ambient_pod_listeners_count(st.pods[p].listeners);
    if (n > cap) {
      struct pollfd *np = realloc(pfds, n * sizeof(*np));
      int *nk = np ? realloc(kinds, n * sizeof(*nk)) : NULL;
      char **nu = nk ? realloc(uids, n * sizeof(*nu)) : NULL;
      if (np) pfds = np;
      if (nk) kinds = nk;
      if (nu) uids = nu;
      if (nu == NULL) {
        pthread_mutex_unlock(&st.mu);
        fprintf(stderr, "ambientctl zds proxy: out of memory\n");
        rc = AMBIENTCTL_FAIL;
        break;
      }
      cap = n;
    }
    pfds[0].fd = g_signal_pipe[0];
    pfds[1].fd = st.wake[0];
    pfds[0].events = pfds[1].events = POLLIN;
    n = 2;
    for (p = 0; p < st.n_pods; ++p) {
      size_t count = ambient_pod_listeners_count(st.pods[p].listeners);
      for (k = 0; k < count; ++k) {
        pfds[n].fd = ambient_pod_listeners_fd(st.pods[p].listeners, k);
        pfds[n].events = POLLIN;
        kinds[n] = ambient_pod_listeners_kind(st.pods[p].listeners, k);
        uids[n] = st.pods[p].uid;
        ++n;
      }
    }
    ready = (max_events != 0 && st.events >= max_events);
    pthread_mutex_unlock(&st.mu);
    if (ready) break;
    if (poll(pfds, n, -1) < 0) {
      if (errno == EINTR) continue;
      perror("ambientctl zds proxy: poll");
      rc = AMBIENTCTL_FAIL;
      break;
    }
    if (pfds[1].revents) {
      char buf[64];
      while (read(st.wake[0], buf, sizeof(buf)) > 0) {
      }
    }
    /* Sockets and uids in pfds/uids stay valid: deleted pods wait in the
     * graveyard until the top of the next round. */
    for (p = 2; p < n; ++p) {
      if (pfds[p].revents & POLLIN) drain_listener(pfds[p].fd, kinds[p], uids[p]);
    }
  }

done:
  ambient_zds_proxy_free(proxy); /* stops the thread: no more callbacks */
  ambient_zds_proxy_options_free(opts);
  ambient_pod_listener_options_free(st.listener_opts);
  {
    size_t k;
    for (k = 0; k < st.n_pods; ++k) free_pod(&st.pods[k]);
    for (k = 0; k < st.n_graveyard; ++k) free_pod(&st.graveyard[k]);
  }
  free(st.pods);
  free(st.graveyard);
  free(pfds);
  free(kinds);
  free(uids);
  if (st.wake[0] >= 0) close(st.wake[0]);
  if (st.wake[1] >= 0) close(st.wake[1]);
  pthread_mutex_destroy(&st.mu);
  return rc;
}

/* ------------------------------------------------------------------ */
/* agent                                                               */

static int zds_agent_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl zds agent --socket PATH --pod UID=NETNS [--pod UID=NETNS]...\n"
          "                            [--oneshot] [--hold-ms N] [--timeout-ms N] [--verbose]\n"
          "\n"
          "The node agent end of ZDS (istio-cni's role), for trying the protocol by hand.\n"
          "Listens on PATH (a stale socket file there is replaced), opens each pod's\n"
          "netns (NETNS: a name under /var/run/netns, or a path such as /proc/PID/ns/net)\n"
          "and hands the pods to every node proxy that connects: the snapshot on\n"
          "connect, then adds. One line per event on stdout.\n"
          "\n"
          "  --pod UID=NETNS   a pod to hand over (repeatable, at least one)\n"
          "  --oneshot         wait for one proxy, hold, then delete every pod and exit\n"
          "                    (status 0 only when every add and delete was acked)\n"
          "  --hold-ms N       with --oneshot: time between snapshot and deletes (default 0)\n"
          "  --timeout-ms N    per-message ack timeout, and --oneshot's wait for a proxy\n"
          "                    (default 5000)\n"
          "  --verbose         library log lines on stderr\n"
          "Without --oneshot, runs until SIGINT/SIGTERM.\n");
  return out == stdout ? AMBIENTCTL_OK : AMBIENTCTL_USAGE;
}

typedef struct agent_pod {
  char *uid;
  ambient_netns *netns;
} agent_pod;

/* add_pod hands pod `uid` (workload name = uid, namespace and service account
 * "default") with `ns` to the agent. */
static ambient_error *add_pod(ambient_zds_agent *agent, const char *uid, const ambient_netns *ns) {
  ambient_workload_info *pod = ambient_workload_info_new();
  ambient_error *err;
  if (pod == NULL) return ambient_zds_agent_add(agent, NULL, ns); /* reports the NULL */
  err = ambient_workload_info_set(pod, AMBIENT_WORKLOAD_UID, uid);
  if (err == NULL) err = ambient_workload_info_set(pod, AMBIENT_WORKLOAD_NAME, uid);
  if (err == NULL) err = ambient_workload_info_set(pod, AMBIENT_WORKLOAD_NAMESPACE, "default");
  if (err == NULL) err = ambient_workload_info_set(pod, AMBIENT_WORKLOAD_SERVICE_ACCOUNT, "default");
  if (err == NULL) err = ambient_zds_agent_add(agent, pod, ns);
  ambient_workload_info_free(pod);
  return err;
}

static int zds_agent(int argc, char **argv) {
  const char *socket_path = NULL;
  unsigned long hold_ms = 0, timeout_ms = 5000;
  int oneshot = 0, verbose = 0, i, rc = AMBIENTCTL_OK;
  agent_pod *pods = NULL;
  size_t n_pods = 0, k;
  ambient_zds_agent_options *opts = NULL;
  ambient_zds_agent *agent = NULL;
  ambient_error *err = NULL;

  pods = calloc((size_t)argc, sizeof(*pods));
  if (pods == NULL) return ambientctl_fail("agent", NULL);
  for (i = 1; i < argc; ++i) {
    if (ambientctl_is_help(argv[i])) {
      free(pods);
      return zds_agent_usage(stdout);
    }
    if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
      socket_path = argv[++i];
    } else if (strcmp(argv[i], "--oneshot") == 0) {
      oneshot = 1;
    } else if (strcmp(argv[i], "--verbose") == 0) {
      verbose = 1;
    } else if (strcmp(argv[i], "--hold-ms") == 0 && i + 1 < argc) {
      if (parse_uint(argv[++i], 3600000UL, &hold_ms) != 0) {
        fprintf(stderr, "ambientctl zds agent: --hold-ms wants 0-3600000\n");
        rc = AMBIENTCTL_USAGE;
        goto done;
      }
    } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
      if (parse_uint(argv[++i], 3600000UL, &timeout_ms) != 0 || timeout_ms == 0) {
        fprintf(stderr, "ambientctl zds agent: --timeout-ms wants 1-3600000\n");
        rc = AMBIENTCTL_USAGE;
        goto done;
      }
    } else if (strcmp(argv[i], "--pod") == 0 && i + 1 < argc) {
      const char *spec = argv[++i];
      const char *eq = strchr(spec, '=');
      if (eq == NULL || eq == spec || eq[1] == '\0') {
        fprintf(stderr, "ambientctl zds agent: --pod wants UID=NETNS, got '%s'\n", spec);
        rc = AMBIENTCTL_USAGE;
        goto done;
      }
      pods[n_pods].uid = strndup(spec, (size_t)(eq - spec));
      if (pods[n_pods].uid == NULL) {
        rc = ambientctl_fail("agent", NULL);
        goto done;
      }
      err = ambient_netns_open(eq + 1, &pods[n_pods].netns);
      n_pods++;
      if (err != NULL) {
        fprintf(stderr, "ambientctl: pod %s: netns '%s': %s\n", pods[n_pods - 1].uid, eq + 1,
                ambient_error_message(err));
        ambient_error_free(err);
        rc = AMBIENTCTL_FAIL;
        goto done;
      }
    } else {
      fprintf(stderr, "ambientctl zds agent: unexpected argument '%s'\n", argv[i]);
      rc = zds_agent_usage(stderr);
      goto done;
    }
  }
  if (socket_path == NULL || n_pods == 0) {
    fprintf(stderr, "ambientctl zds agent: --socket and at least one --pod are required\n");
    rc = zds_agent_usage(stderr);
    goto done;
  }
  if (install_signals() != 0) {
    perror("ambientctl zds agent: pipe");
    rc = AMBIENTCTL_FAIL;
    goto done;
  }
  opts = ambient_zds_agent_options_new();
  if (opts == NULL) {
    rc = ambientctl_fail("agent", NULL);
    goto done;
  }
  err = ambient_zds_agent_options_set_socket_path(opts, socket_path);
  if (err == NULL) err = ambient_zds_agent_options_set_timeout(opts, (uint32_t)timeout_ms);
  if (err != NULL) {
    rc = ambientctl_fail("agent options", err);
    goto done;
  }
  if (verbose) ambient_zds_agent_options_set_log(opts, log_to_stderr, NULL);
  err = ambient_zds_agent_new(opts, &agent);
  if (err != NULL) {
    rc = ambientctl_fail("starting the ZDS agent", err);
    goto done;
  }
  say("listening socket=%s", socket_path);
  for (k = 0; k < n_pods; ++k) {
    uint64_t dev, ino;
    ambient_netns_id(pods[k].netns, &dev, &ino);
    err = add_pod(agent, pods[k].uid, pods[k].netns);
    /* No proxy yet is expected: the pod goes out with the snapshot. */
    if (err != NULL && ambient_error_code(err) != AMBIENT_ERR_UNAVAILABLE) {
      rc = ambientctl_fail("add", err);
      goto done;
    }
    ambient_error_free(err);
    say("pod uid=%s netns=%llu:%llu", pods[k].uid, (unsigned long long)dev,
        (unsigned long long)ino);
  }

  if (oneshot) {
    struct timespec ts;
    err = ambient_zds_agent_wait_for_proxies(agent, 1, (uint32_t)timeout_ms);
    if (err != NULL) {
      rc = ambientctl_fail("waiting for a node proxy", err);
      goto done;
    }
    say("proxy-connected proxies=%zu snapshot-pods=%zu", ambient_zds_agent_proxy_count(agent),
        n_pods);
    ts.tv_sec = (time_t)(hold_ms / 1000);
    ts.tv_nsec = (long)(hold_ms % 1000) * 1000000L;
    while (!g_stop && nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    for (k = 0; k < n_pods; ++k) {
      err = ambient_zds_agent_del(agent, pods[k].uid);
      if (err != NULL) {
        say("del uid=%s error=%s", pods[k].uid, ambient_error_message(err));
        ambient_error_free(err);
        rc = AMBIENTCTL_FAIL;
      } else {
        say("del uid=%s acked", pods[k].uid);
      }
    }
  } else {
    size_t last = (size_t)-1;
    while (!g_stop) {
      struct pollfd p;
      size_t now = ambient_zds_agent_proxy_count(agent);
      if (now != last) say("proxies=%zu", now);
      last = now;
      p.fd = g_signal_pipe[0];
      p.events = POLLIN;
      (void)poll(&p, 1, 100);
    }
  }

done:
  ambient_zds_agent_free(agent);
  ambient_zds_agent_options_free(opts);
  for (k = 0; k < n_pods; ++k) {
    free(pods[k].uid);
    ambient_netns_free(pods[k].netns);
  }
  free(pods);
  return rc;
}

/* ------------------------------------------------------------------ */

static int zds_usage(FILE *out) {
  fprintf(out,
          "usage: ambientctl zds proxy --socket PATH [flags]\n"
          "       ambientctl zds agent --socket PATH --pod UID=NETNS... [flags]\n"
          "\n"
          "Speak istio's ZDS protocol (node agent -> node proxy netns handoff over a\n"
          "unix SOCK_SEQPACKET socket). 'ambientctl zds proxy --help' and\n"
          "'ambientctl zds agent --help' describe each end.\n");
  return out == stdout ? AMBIENTCTL_OK : AMBIENTCTL_USAGE;
}

int ambientctl_zds(int argc, char **argv) {
  if (argc < 2) return zds_usage(stderr);
  if (ambientctl_is_help(argv[1])) return zds_usage(stdout);
  if (strcmp(argv[1], "proxy") == 0) return zds_proxy(argc - 1, argv + 1);
  if (strcmp(argv[1], "agent") == 0) return zds_agent(argc - 1, argv + 1);
  fprintf(stderr, "ambientctl zds: unknown subcommand '%s'\n", argv[1]);
  return zds_usage(stderr);
}
