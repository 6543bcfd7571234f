// dns/ldns_headers.h: ldns's API without its OpenSSL parts. Include this
// instead of <ldns/ldns.h>, which pulls in <openssl/ssl.h> for DNSSEC and
// DANE: with BoringSSL's headers on the include path that mixes two TLS
// libraries' declarations. Only the DNSSEC, DANE
// and key headers (dnssec*.h, dane.h, keys.h) test the flag turned off here;
// the message, RR and wire APIs the dns layer uses do not depend on it.
#ifndef AMBIENT_DNS_LDNS_HEADERS_H_
#define AMBIENT_DNS_LDNS_HEADERS_H_

// libstdc++ first: once ldns's headers are in, clang no longer takes
// libstdc++'s own __is_signed members for what they are.
#include <algorithm>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <ldns/common.h>
#undef LDNS_BUILD_CONFIG_HAVE_SSL
#define LDNS_BUILD_CONFIG_HAVE_SSL 0
#include <ldns/ldns.h>

#endif  // AMBIENT_DNS_LDNS_HEADERS_H_
