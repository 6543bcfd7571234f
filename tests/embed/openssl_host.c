/* An OpenSSL 3 host with libambient in the same process: the case the
 * OpenSSL build exists for (nginx, HAProxy, any C program linking libssl).
 *
 * usage: openssl_host PKI_DIR VIA AUTHORITY MODE
 *   PKI_DIR   files from bindings/rust/testdata/gencerts.go (ca.pem, db.pem,
 *             db.key, leaf.pem, leaf.key, other_leaf.pem)
 *   VIA       an HBONE server (ambientctl hbone serve with db.pem) ip:port
 *   AUTHORITY the echo server behind it
 *   MODE      "works": libambient is built with OpenSSL 3, so everything
 *             below works side by side; "refused": libambient is built with
 *             BoringSSL, and every ambient call that needs TLS must fail with
 *             the clear FAILED_PRECONDITION refusal (no crash) while the
 *             host's own TLS keeps working.
 *
 * The program is compiled against OpenSSL 3's headers and linked with its
 * libssl/libcrypto ahead of libambient, as such hosts are. Steps:
 *   1. the host's own TLS 1.3 connection (libssl, its own X509 verification);
 *   2. ambient_check_runtime;
 *   3. an SVID verified through ambient, and a foreign one refused;
 *   4. ambient's SPIFFE verifier installed on the host's own SSL_CTX, then a
 *      handshake with it (and one refused for an unexpected identity);
 *   5. an HBONE tunnel through libambient's client to VIA, echoing bytes.
 * Exit 0 when every step behaves as MODE says. */
#define _GNU_SOURCE
#include <ambient/ambient.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(OPENSSL_IS_BORINGSSL) || OPENSSL_VERSION_MAJOR < 3
#error "this host must be compiled against OpenSSL 3"
#endif

static int failures = 0;

static void check(int ok, const char* what) {
  printf("%s: %s\n", ok ? "ok" : "FAIL", what);
  if (!ok) ++failures;
}

static char* slurp(const char* dir, const char* name, size_t* len) {
  char path[4096];
  FILE* f;
  char* buf;
  long n;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "cannot open %s\n", path);
    exit(2);
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) exit(2);
  buf[n] = 0;
  fclose(f);
  *len = (size_t)n;
  return buf;
}

static char* path_of(const char* dir, const char* name) {
  static char paths[8][4096];
  static int next = 0;
  char* p = paths[next++ % 8];
  snprintf(p, 4096, "%s/%s", dir, name);
  return p;
}

/* Returns 1 when `err` is the refusal of a BoringSSL-built ambient. */
static int is_refusal(ambient_error* err) {
  return err != NULL && ambient_error_code(err) == AMBIENT_ERR_FAILED_PRECONDITION &&
         strstr(ambient_error_message(err), "TLS library bound to ambient") != NULL;
}

/* Drives a client and a server SSL over a socketpair until both finished
 * the handshake or one failed; returns 1 on success. Then the client sends
 * "ping" and reads the server's "pong". */
static int handshake_and_talk(SSL_CTX* cctx, SSL_CTX* sctx) {
  int sv[2];
  SSL *c, *s;
  int c_done = 0, s_done = 0, i, ok = 0;
  char buf[8];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  fcntl(sv[0], F_SETFL, O_NONBLOCK);
  fcntl(sv[1], F_SETFL, O_NONBLOCK);
  c = SSL_new(cctx);
  s = SSL_new(sctx);
  SSL_set_fd(c, sv[0]);
  SSL_set_fd(s, sv[1]);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  for (i = 0; i < 200 && !(c_done && s_done); ++i) {
    int r;
    if (!c_done) {
      r = SSL_do_handshake(c);
      if (r == 1)
        c_done = 1;
      else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
        break;
    }
    if (!s_done) {
      r = SSL_do_handshake(s);
      if (r == 1)
        s_done = 1;
      else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
        break;
    }
  }
  if (c_done && s_done && SSL_write(c, "ping", 4) == 4) {
    for (i = 0; i < 200; ++i) {
      int r = SSL_read(s, buf, sizeof buf);
      if (r == 4 && memcmp(buf, "ping", 4) == 0) {
        SSL_write(s, "pong", 4);
        break;
      }
    }
    for (i = 0; i < 200; ++i) {
      int r = SSL_read(c, buf, sizeof buf);
      if (r == 4) {
        ok = memcmp(buf, "pong", 4) == 0;
        break;
      }
      if (r <= 0 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ) break;
    }
  }
  SSL_free(c);
  SSL_free(s);
  close(sv[0]);
  close(sv[1]);
  ERR_clear_error();
  return ok;
}

static SSL_CTX* host_ctx(const char* dir, int server) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  if (server) {
    if (SSL_CTX_use_certificate_chain_file(ctx, path_of(dir, "db.pem")) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, path_of(dir, "db.key"), SSL_FILETYPE_PEM) != 1) {
      fprintf(stderr, "host: cannot load db.pem/db.key\n");
      exit(2);
    }
  }
  return ctx;
}

struct tunnel_state {
  int done;
  int code;
};

static void tunnel_done(void* user, int code, int http_status, const char* message) {
  struct tunnel_state* st = user;
  (void)http_status;
  (void)message;
  st->done = 1;
  st->code = code;
}

int main(int argc, char** argv) {
  const char *dir, *via, *authority;
  int works;
  ambient_error* err;
  size_t len = 0;
  char* pem;
  ambient_trust_bundles* bundles = NULL;
  ambient_svid_verifier* verifier = NULL;
  ambient_spiffe_id* id = NULL;
  if (argc != 5 || (strcmp(argv[4], "works") != 0 && strcmp(argv[4], "refused") != 0)) {
    fprintf(stderr, "usage: %s PKI_DIR VIA AUTHORITY works|refused\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  via = argv[2];
  authority = argv[3];
  works = strcmp(argv[4], "works") == 0;
  printf("host: %s, libambient %s built with %s\n", OpenSSL_version(OPENSSL_VERSION),
         ambient_version(), ambient_tls_backend());

  /* 1. The host's own TLS, verified by OpenSSL against the CA. */
  {
    SSL_CTX* sctx = host_ctx(dir, 1);
    SSL_CTX* cctx = host_ctx(dir, 0);
    X509_STORE_load_file(SSL_CTX_get_cert_store(cctx), path_of(dir, "ca.pem"));
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    check(handshake_and_talk(cctx, sctx), "host's own TLS 1.3 connection (libssl verifies)");
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
  }

  /* 2. The run-time check. */
  err = ambient_check_runtime();
  if (works) {
    check(err == NULL, "ambient_check_runtime passes");
  } else {
    check(is_refusal(err) && strstr(ambient_error_message(err), "not BoringSSL") != NULL,
          "ambient_check_runtime refuses: bound to OpenSSL, not BoringSSL");
  }
  if (err != NULL) printf("  (%s)\n", ambient_error_message(err));
  ambient_error_free(err);

  /* 3. SVID verification through ambient. */
  err = ambient_trust_bundles_new(&bundles);
  if (!works) {
    check(is_refusal(err) && bundles == NULL, "trust bundles refused with FAILED_PRECONDITION");
    ambient_error_free(err);
    err = ambient_hbone_tls_new_from_files(AMBIENT_HBONE_CLIENT, path_of(dir, "leaf.pem"),
                                           path_of(dir, "leaf.key"), path_of(dir, "ca.pem"),
                                           &(ambient_hbone_tls*){NULL});
    check(is_refusal(err), "HBONE TLS refused with FAILED_PRECONDITION");
    ambient_error_free(err);
    /* The host's TLS still works after ambient refused. */
    {
      SSL_CTX* sctx = host_ctx(dir, 1);
      SSL_CTX* cctx = host_ctx(dir, 0);
      check(handshake_and_talk(cctx, sctx), "host's TLS still works afterwards");
      SSL_CTX_free(cctx);
      SSL_CTX_free(sctx);
    }
    printf("%d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
  }
  check(err == NULL, "trust bundles made");
  pem = slurp(dir, "ca.pem", &len);
  err = ambient_trust_bundles_set_pem(bundles, "example.org", pem, len);
  check(err == NULL, "CA set as example.org's bundle");
  ambient_error_free(err);
  free(pem);
  err = ambient_svid_verifier_new(bundles, NULL, &verifier);
  check(err == NULL, "verifier made");
  ambient_error_free(err);
  pem = slurp(dir, "leaf.pem", &len);
  err = ambient_svid_verifier_verify_pem(verifier, pem, len, &id);
  check(err == NULL && id != NULL, "leaf.pem verifies");
  ambient_error_free(err);
  ambient_spiffe_id_free(id);
  id = NULL;
  free(pem);
  pem = slurp(dir, "other_leaf.pem", &len);
  err = ambient_svid_verifier_verify_pem(verifier, pem, len, &id);
  check(err != NULL && ambient_error_code(err) == AMBIENT_ERR_UNAUTHENTICATED,
        "a foreign SVID is refused");
  ambient_error_free(err);
  free(pem);

  /* 4. ambient's verifier on the host's own OpenSSL SSL_CTX. */
  {
    SSL_CTX* sctx = host_ctx(dir, 1);
    SSL_CTX* cctx = host_ctx(dir, 0);
    ambient_verify_options* opts = ambient_verify_options_new();
    ambient_svid_verifier* want_web = NULL;
    SSL_CTX* cctx2 = host_ctx(dir, 0);
    err = ambient_ssl_ctx_set_verifier(cctx, verifier);
    check(err == NULL, "ambient verifier installed on the host's SSL_CTX");
    ambient_error_free(err);
    check(handshake_and_talk(cctx, sctx), "host TLS connection verified by ambient (db's SVID)");
    /* A verifier that expects another identity refuses the same server. */
    const char* web = "spiffe://example.org/ns/default/sa/web";
    ambient_error_free(ambient_verify_options_add_expected_id(opts, web, strlen(web)));
    ambient_error_free(ambient_svid_verifier_new(bundles, opts, &want_web));
    ambient_error_free(ambient_ssl_ctx_set_verifier(cctx2, want_web));
    check(!handshake_and_talk(cctx2, sctx), "an unexpected server identity fails the handshake");
    ambient_svid_verifier_free(want_web);
    ambient_verify_options_free(opts);
    SSL_CTX_free(cctx2);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
  }

  /* 5. An HBONE tunnel through libambient. */
  {
    ambient_hbone_tls* tls = NULL;
    ambient_runtime_loop* loop = NULL;
    ambient_hbone_client* client = NULL;
    ambient_hbone_target* target = ambient_hbone_target_new();
    struct tunnel_state st = {0, 0};
    int sv[2];
    char buf[64];
    ssize_t got = 0;
    int i;
    err = ambient_hbone_tls_new_from_files(AMBIENT_HBONE_CLIENT, path_of(dir, "leaf.pem"),
                                           path_of(dir, "leaf.key"), path_of(dir, "ca.pem"), &tls);
    check(err == NULL, "HBONE client TLS from files");
    ambient_error_free(err);
    ambient_error_free(ambient_runtime_loop_new(&loop));
    ambient_hbone_client_options* copts = ambient_hbone_client_options_new();
    ambient_error_free(ambient_hbone_client_new(loop, tls, copts, &client));
    ambient_hbone_client_options_free(copts);
    ambient_error_free(ambient_hbone_target_set_via(target, via));
    ambient_error_free(ambient_hbone_target_set_authority(target, authority));
    ambient_error_free(
        ambient_hbone_target_add_expected(target, "spiffe://example.org/ns/default/sa/db"));
    if (client == NULL || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 2;
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    check(ambient_hbone_client_tunnel(client, target, sv[0], sv[0], tunnel_done, &st) == 0,
          "tunnel started");
    if (write(sv[1], "hello-from-an-openssl-host", 26) != 26) return 2;
    for (i = 0; i < 100 && got < 26; ++i) {
      ssize_t n;
      ambient_runtime_loop_run_for(loop, 50);
      n = read(sv[1], buf + got, sizeof buf - (size_t)got);
      if (n > 0) got += n;
    }
    check(got == 26 && memcmp(buf, "hello-from-an-openssl-host", 26) == 0,
          "bytes echoed through the HBONE tunnel");
    shutdown(sv[1], SHUT_WR);
    for (i = 0; i < 100 && !st.done; ++i) ambient_runtime_loop_run_for(loop, 50);
    check(st.done && st.code == AMBIENT_OK, "tunnel ended cleanly");
    ambient_hbone_client_free(client);
    ambient_runtime_loop_free(loop);
    ambient_hbone_target_free(target);
    ambient_hbone_tls_free(tls);
    close(sv[0]);
    close(sv[1]);
  }

  /* The host's TLS after all of it. */
  {
    SSL_CTX* sctx = host_ctx(dir, 1);
    SSL_CTX* cctx = host_ctx(dir, 0);
    check(handshake_and_talk(cctx, sctx), "host's own TLS still works afterwards");
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
  }
  ambient_svid_verifier_free(verifier);
  ambient_trust_bundles_free(bundles);
  printf("%d failure(s)\n", failures);
  return failures == 0 ? 0 : 1;
}
