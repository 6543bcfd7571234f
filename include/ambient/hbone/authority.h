// ambient/hbone/authority.h: the :authority of an HBONE CONNECT request.
//
// ztunnel sends `ip:port` (IPv4), `[ipv6]:port`, or `host:port` (a service
// FQDN through an east-west gateway). ParseAuthority accepts exactly those
// three shapes and nothing else: no userinfo, no empty host, no zone ids, a
// decimal port 1-65535 without sign or leading '+'.
#ifndef AMBIENT_HBONE_AUTHORITY_H_
#define AMBIENT_HBONE_AUTHORITY_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ambient::hbone {

struct Authority {
  enum class Kind { kIpv4, kIpv6, kHostname };
  Kind kind = Kind::kHostname;
  // The host without brackets: "10.0.0.1", "2001:db8::1" or "echo.ns.svc".
  std::string host;
  uint16_t port = 0;

  // ToString formats the authority as it goes on the wire ("[v6]:port").
  std::string ToString() const;
};

// ParseAuthority parses `text`; InvalidArgument (with the reason) when it is
// not one of the three shapes above. Hostnames must be at most 253 bytes of
// letters, digits, '-', '.' and '_', with labels of 1-63 bytes.
absl::StatusOr<Authority> ParseAuthority(absl::string_view text);

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_AUTHORITY_H_
