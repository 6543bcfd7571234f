/* The address calls of the C ABI (ambient/c/address.h and
 * ambient_hbone_authority_check), driven as a C host drives them: good
 * addresses come back canonical with their family and port, bad ones are
 * refused with the library's message and leave *out untouched. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "ambient/ambient.h"

static int failures = 0;

#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (!(cond)) {                                          \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                         \
      fputc('\n', stderr);                                  \
      ++failures;                                           \
    }                                                       \
  } while (0)

/* good parses `len` bytes of `text` and checks every getter. */
static void good(const char* text, size_t len, const char* want_text, const char* want_ip,
                 int want_version, unsigned want_port, int want_mapped) {
  ambient_socket_address* a = NULL;
  ambient_error* err = ambient_socket_address_parse(text, len, &a);
  size_t sa_len = 0;
  const struct sockaddr* sa;
  CHECK(err == NULL, "%.*s: refused: %s", (int)len, text, ambient_error_message(err));
  ambient_error_free(err);
  if (a == NULL) return;
  CHECK(strcmp(ambient_socket_address_get0_text(a), want_text) == 0, "%.*s: text %s, want %s",
        (int)len, text, ambient_socket_address_get0_text(a), want_text);
  CHECK(strcmp(ambient_socket_address_get0_ip(a), want_ip) == 0, "%.*s: ip %s, want %s", (int)len,
        text, ambient_socket_address_get0_ip(a), want_ip);
  CHECK(ambient_socket_address_ip_version(a) == want_version, "%.*s: version %d, want %d", (int)len,
        text, ambient_socket_address_ip_version(a), want_version);
  CHECK(ambient_socket_address_port(a) == want_port, "%.*s: port %u, want %u", (int)len, text,
        (unsigned)ambient_socket_address_port(a), want_port);
  CHECK(ambient_socket_address_is_v4_mapped(a) == want_mapped, "%.*s: v4-mapped %d", (int)len, text,
        ambient_socket_address_is_v4_mapped(a));
  sa = ambient_socket_address_get0_sockaddr(a, &sa_len);
  if (want_version == 4) {
    const struct sockaddr_in* in = (const struct sockaddr_in*)(const void*)sa;
    char buf[INET_ADDRSTRLEN];
    CHECK(sa != NULL && sa->sa_family == AF_INET && sa_len == sizeof(struct sockaddr_in),
          "%.*s: sockaddr family/len", (int)len, text);
    CHECK(ntohs(in->sin_port) == want_port, "%.*s: sockaddr port", (int)len, text);
    CHECK(inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf)) && strcmp(buf, want_ip) == 0,
          "%.*s: sockaddr ip", (int)len, text);
  } else {
    const struct sockaddr_in6* in6 = (const struct sockaddr_in6*)(const void*)sa;
    char buf[INET6_ADDRSTRLEN];
    CHECK(sa != NULL && sa->sa_family == AF_INET6 && sa_len == sizeof(struct sockaddr_in6),
          "%.*s: sockaddr family/len", (int)len, text);
    CHECK(ntohs(in6->sin6_port) == want_port, "%.*s: sockaddr port", (int)len, text);
    CHECK(inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof(buf)) && strcmp(buf, want_ip) == 0,
          "%.*s: sockaddr ip", (int)len, text);
  }
  ambient_socket_address_free(a);
}

/* bad checks that `len` bytes of `text` are refused with a message holding
 * `says`, and that *out is left alone. */
static void bad(const char* text, size_t len, const char* says) {
  ambient_socket_address* sentinel = (ambient_socket_address*)(void*)&failures;
  ambient_socket_address* a = sentinel;
  ambient_error* err = ambient_socket_address_parse(text, len, &a);
  CHECK(err != NULL, "%.*s: accepted as %s", (int)len, text,
        a != sentinel ? ambient_socket_address_get0_text(a) : "?");
  if (err == NULL) {
    if (a != sentinel) ambient_socket_address_free(a);
    return;
  }
  CHECK(ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT, "%.*s: code %d", (int)len, text,
        ambient_error_code(err));
  CHECK(strstr(ambient_error_message(err), says) != NULL, "%.*s: message '%s' lacks '%s'", (int)len,
        text, ambient_error_message(err), says);
  CHECK(a == sentinel, "%.*s: *out changed on failure", (int)len, text);
  ambient_error_free(err);
}

#define GOOD(t, ...) good(t, sizeof(t) - 1, __VA_ARGS__)
#define BAD(t, says) bad(t, sizeof(t) - 1, says)

static void ip_good(const char* ip, unsigned port, const char* want_text, int want_version) {
  ambient_socket_address* a = NULL;
  ambient_error* err = ambient_socket_address_parse_ip(ip, strlen(ip), (uint16_t)port, &a);
  CHECK(err == NULL, "parse_ip %s: %s", ip, ambient_error_message(err));
  ambient_error_free(err);
  CHECK(strcmp(ambient_socket_address_get0_text(a), want_text) == 0, "parse_ip %s: %s, want %s", ip,
        ambient_socket_address_get0_text(a), want_text);
  CHECK(ambient_socket_address_ip_version(a) == want_version, "parse_ip %s: version", ip);
  ambient_socket_address_free(a);
}

static void ip_bad(const char* ip, size_t len, const char* says) {
  ambient_socket_address* a = NULL;
  ambient_error* err = ambient_socket_address_parse_ip(ip, len, 80, &a);
  CHECK(err != NULL && a == NULL, "parse_ip %.*s: accepted", (int)len, ip);
  CHECK(ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT, "parse_ip %.*s: code", (int)len,
        ip);
  CHECK(strstr(ambient_error_message(err), says) != NULL, "parse_ip %.*s: '%s' lacks '%s'",
        (int)len, ip, ambient_error_message(err), says);
  ambient_error_free(err);
  ambient_socket_address_free(a);
}

static void authority(const char* text, size_t len, const char* says /* NULL: good */) {
  ambient_error* err = ambient_hbone_authority_check(text, len);
  if (says == NULL) {
    CHECK(err == NULL, "authority %.*s: refused: %s", (int)len, text, ambient_error_message(err));
  } else {
    CHECK(err != NULL, "authority %.*s: accepted", (int)len, text);
    CHECK(ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT, "authority %.*s: code", (int)len,
          text);
    CHECK(strstr(ambient_error_message(err), says) != NULL, "authority %.*s: '%s' lacks '%s'",
          (int)len, text, ambient_error_message(err), says);
  }
  ambient_error_free(err);
}
#define AUTH(t, says) authority(t, sizeof(t) - 1, says)

int main(void) {
  ambient_error* err;
  ambient_socket_address* a = NULL;

  /* Good: canonical text, family, port, v4-mapped, the ends of the port range. */
  GOOD("198.18.0.1:80", "198.18.0.1:80", "198.18.0.1", 4, 80, 0);
  GOOD("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1", 4, 0, 0);
  GOOD("127.0.0.1:65535", "127.0.0.1:65535", "127.0.0.1", 4, 65535, 0);
  GOOD("198.18.0.1:00080", "198.18.0.1:80", "198.18.0.1", 4, 80, 0);
  GOOD("[2001:DB8:0:0:0::1]:8080", "[2001:db8::1]:8080", "2001:db8::1", 6, 8080, 0);
  GOOD("[::1]:15008", "[::1]:15008", "::1", 6, 15008, 0);
  GOOD("[::]:0", "[::]:0", "::", 6, 0, 0);
  GOOD("[::ffff:198.18.0.1]:15008", "[::ffff:198.18.0.1]:15008", "::ffff:198.18.0.1", 6, 15008, 1);
  /* Only `len` bytes are read: no NUL needed after them. */
  good("10.0.0.1:99junk", 11, "10.0.0.1:99", "10.0.0.1", 4, 99, 0);

  /* Bad: the library's messages. */
  BAD("198.18.0.1:65536", "invalid port in \"198.18.0.1:65536\": want 0-65535");
  BAD("198.18.0.1:99999", "want 0-65535");
  BAD("198.18.0.1:", "want 0-65535");
  BAD("198.18.0.1:-1", "want 0-65535");
  BAD("198.18.0.1:+80", "want 0-65535");
  BAD("198.18.0.1:8 0", "want 0-65535");
  BAD("198.18.0.1", "invalid address \"198.18.0.1\": want IPv4:PORT or [IPv6]:PORT");
  BAD("2001:db8::1:80", "want IPv4:PORT or [IPv6]:PORT");
  BAD("", "want IPv4:PORT or [IPv6]:PORT");
  BAD("[2001:db8::1]", "want [IPv6]:PORT");
  BAD("[2001:db8::1:80", "want [IPv6]:PORT");
  BAD("[2001:db8::1]80", "want [IPv6]:PORT");
  BAD("[198.18.0.1]:80", "invalid address \"[198.18.0.1]:80\": brackets need IPv6");
  BAD("[]:80", "brackets need IPv6");
  BAD("[fe80::1%eth0]:80", "invalid IP address \"fe80::1%eth0\"");
  BAD("[fe80::1%25eth0]:80", "invalid IP address");
  BAD("localhost:80", "invalid IP address \"localhost\"");
  BAD("198.18.0.256:80", "invalid IP address \"198.18.0.256\"");
  BAD(" 198.18.0.1:80", "invalid IP address");
  BAD("[[::1]]:80", "want [IPv6]:PORT");
  /* A NUL inside is refused, not read as the end of the text. */
  BAD("198.18\0.0.1:80", "invalid IP address \"198.18\\x00.0.1\"");
  BAD("198.18.0.1:8\0", "want 0-65535");
  BAD("198.18.0.1:80\0", "want 0-65535");
  BAD("[::1\0]:80", "invalid IP address");

  /* NULL arguments. */
  err = ambient_socket_address_parse(NULL, 5, &a);
  CHECK(err != NULL && strstr(ambient_error_message(err), "text") != NULL && a == NULL,
        "NULL text");
  ambient_error_free(err);
  err = ambient_socket_address_parse("1.2.3.4:5", 9, NULL);
  CHECK(err != NULL && strstr(ambient_error_message(err), "out") != NULL, "NULL out");
  ambient_error_free(err);
  err = ambient_socket_address_parse(NULL, 0, &a);
  CHECK(err != NULL && ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT && a == NULL,
        "NULL, 0");
  ambient_error_free(err);
  CHECK(strcmp(ambient_socket_address_get0_text(NULL), "") == 0, "get0_text(NULL)");
  CHECK(strcmp(ambient_socket_address_get0_ip(NULL), "") == 0, "get0_ip(NULL)");
  CHECK(ambient_socket_address_port(NULL) == 0, "port(NULL)");
  CHECK(ambient_socket_address_ip_version(NULL) == 0, "ip_version(NULL)");
  CHECK(ambient_socket_address_is_v4_mapped(NULL) == 0, "is_v4_mapped(NULL)");
  {
    size_t n = 99;
    CHECK(ambient_socket_address_get0_sockaddr(NULL, &n) == NULL && n == 0, "sockaddr(NULL)");
  }
  ambient_socket_address_free(NULL);

  /* A bare IP with a port. */
  ip_good("198.18.0.7", 15008, "198.18.0.7:15008", 4);
  ip_good("2001:db8:0::7", 0, "[2001:db8::7]:0", 6);
  ip_good("::ffff:10.1.2.3", 443, "[::ffff:10.1.2.3]:443", 6);
  ip_bad("[::1]", 5, "invalid IP address \"[::1]\"");
  ip_bad("fe80::1%eth0", 12, "invalid IP address");
  ip_bad("198.18.0.1:80", 13, "invalid IP address");
  ip_bad("198.18.0.1\0", 11, "invalid IP address");
  ip_bad("", 0, "invalid IP address");
  ip_bad("example.com", 11, "invalid IP address");

  /* The CONNECT :authority check. */
  AUTH("198.18.0.1:80", NULL);
  AUTH("[2001:db8::1]:80", NULL);
  AUTH("echo.default.svc.cluster.local:8080", NULL);
  AUTH("198.18.0.1:0", "bad port (want 1-65535)");
  AUTH("198.18.0.1:65536", "bad port");
  AUTH("198.18.0.1", "missing port");
  AUTH("2001:db8::1:80", "IPv6 address must be in brackets");
  AUTH("[fe80::1%eth0]:80", "bad IPv6 address");
  AUTH("[198.18.0.1]:80", "bad IPv6 address");
  AUTH("user@host:80", "bad host name");
  AUTH("a b:80", "control, space or non-ASCII character");
  AUTH("host\0:80", "control, space or non-ASCII character");
  AUTH("", "empty");
  err = ambient_hbone_authority_check(NULL, 3);
  CHECK(err != NULL && ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT, "authority NULL");
  ambient_error_free(err);

  if (failures != 0) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("address C ABI: all cases passed\n");
  return 0;
}
