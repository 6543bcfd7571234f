/* ambient/c/address.h: IP socket addresses as the library reads and prints
 * them (the C face of ambient/base/address.h, which every layer uses).
 *
 * Text forms follow Go's net.SplitHostPort and ztunnel: "IPv4:PORT" or
 * "[IPv6]:PORT" with a decimal port 0-65535; brackets only around IPv6; a
 * bare IP has neither brackets nor a port; no zone ids ("fe80::1%eth0"), no
 * host names (nothing is resolved). Canonical text is RFC 5952 for IPv6
 * ("[2001:db8::1]:80"); an IPv4-mapped IPv6 address stays IPv6
 * ("[::ffff:198.18.0.1]:80") and is reported by
 * ambient_socket_address_is_v4_mapped.
 *
 * An ambient_socket_address is an immutable value object: made by a parse
 * call, read with the getters, released with ambient_socket_address_free.
 *
 * Threads: any thread; an object is only read after it is made, so it may be
 * read from several threads at once. */
#ifndef AMBIENT_C_ADDRESS_H_
#define AMBIENT_C_ADDRESS_H_

#include "ambient/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;

/* ambient_socket_address is an IP address with a port. */
typedef struct ambient_socket_address ambient_socket_address;

/* ambient_socket_address_parse reads `len` bytes of `text` (need not be
 * NUL-terminated; a NUL byte inside is refused) as "IPv4:PORT" or
 * "[IPv6]:PORT". On success `*out` owns a new object (free with
 * ambient_socket_address_free). Errors (AMBIENT_ERR_INVALID_ARGUMENT, `*out`
 * untouched), with the text C-escaped in the message:
 *   `invalid address "<t>": want IPv4:PORT or [IPv6]:PORT` (no colon, or an
 *     unbracketed IPv6),
 *   `invalid address "<t>": want [IPv6]:PORT` (unclosed bracket, or no ':'
 *     right after ']'),
 *   `invalid address "<t>": brackets need IPv6` ("[198.18.0.1]:80"),
 *   `invalid port in "<t>": want 0-65535`,
 *   `invalid IP address "<ip>"` (a host name, a zone id, anything not a
 *     numeric IP);
 * and "text: must not be NULL" / "out: must not be NULL" for NULL arguments
 * (`text` may be NULL when `len` is 0, which is then an invalid address). */
AMBIENT_EXPORT ambient_error* ambient_socket_address_parse(const char* text, size_t len,
                                                           ambient_socket_address** out);

/* ambient_socket_address_parse_ip reads `len` bytes of `ip` as a bare IPv4
 * or IPv6 address (no brackets, no zone, no port) and gives it `port`.
 * Ownership as ambient_socket_address_parse. Errors:
 * AMBIENT_ERR_INVALID_ARGUMENT `invalid IP address "<ip>"`, or for NULL
 * arguments as above. */
AMBIENT_EXPORT ambient_error* ambient_socket_address_parse_ip(const char* ip, size_t len,
                                                              uint16_t port,
                                                              ambient_socket_address** out);

/* ambient_socket_address_free releases `addr`. NULL is allowed. */
AMBIENT_EXPORT void ambient_socket_address_free(ambient_socket_address* addr);

/* ambient_socket_address_get0_text returns the canonical "198.18.0.1:80" or
 * "[2001:db8::1]:80" (NUL-terminated, lent: valid while `addr` lives), or ""
 * for a NULL `addr`. */
AMBIENT_EXPORT const char* ambient_socket_address_get0_text(const ambient_socket_address* addr);

/* ambient_socket_address_get0_ip returns the canonical IP alone,
 * "198.18.0.1" or "2001:db8::1" (lent like _get0_text), or "" for NULL. */
AMBIENT_EXPORT const char* ambient_socket_address_get0_ip(const ambient_socket_address* addr);

/* ambient_socket_address_port returns the port (0 for a NULL `addr`). */
AMBIENT_EXPORT uint16_t ambient_socket_address_port(const ambient_socket_address* addr);

/* ambient_socket_address_ip_version returns 4 or 6, or 0 for a NULL
 * `addr`. */
AMBIENT_EXPORT int ambient_socket_address_ip_version(const ambient_socket_address* addr);

/* ambient_socket_address_is_v4_mapped returns 1 when the address is an
 * IPv6 ::ffff:a.b.c.d address, else 0 (also for NULL). */
AMBIENT_EXPORT int ambient_socket_address_is_v4_mapped(const ambient_socket_address* addr);

/* ambient_socket_address_get0_sockaddr lends the address as a sockaddr_in or
 * sockaddr_in6 (for bind/connect, or ambient_authz_request_set_source) and
 * stores its size in `*len` when `len` is not NULL. Valid while `addr`
 * lives; NULL (and *len 0) for a NULL `addr`. */
AMBIENT_EXPORT const struct sockaddr* ambient_socket_address_get0_sockaddr(
    const ambient_socket_address* addr, size_t* len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_ADDRESS_H_ */
