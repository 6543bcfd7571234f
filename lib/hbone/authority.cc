#include "ambient/hbone/authority.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/address.h"

namespace ambient::hbone {

namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad :authority \"", absl::CHexEscape(text.substr(0, 300)), "\": ", why));
}

bool ParsePort(absl::string_view s, uint16_t* port) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v == 0 || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

bool ValidHostname(absl::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < h.size(); ++i) {
    char c = h[i];
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) {
      return false;
    }
    if (++label > 63) return false;
  }
  return label > 0 || h.back() == '.';
}

}  // namespace

std::string Authority::ToString() const {
  if (kind == Kind::kIpv6) return absl::StrCat("[", host, "]:", port);
  return absl::StrCat(host, ":", port);
}

absl::StatusOr<Authority> ParseAuthority(absl::string_view text) {
  if (text.empty()) return Bad(text, "empty");
  for (char c : text) {
    if (c <= 0x20 || c >= 0x7f) return Bad(text, "control, space or non-ASCII character");
  }
  Authority a;
  absl::string_view host;
  absl::string_view port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) return Bad(text, "missing ']'");
    host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty() || rest.front() != ':') return Bad(text, "missing port after ']'");
    port = rest.substr(1);
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(host);
    if (!ip.ok() || ip->is_v4()) return Bad(text, "bad IPv6 address");
    a.kind = Authority::Kind::kIpv6;
  } else {
    size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return Bad(text, "missing port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != absl::string_view::npos) {
      return Bad(text, "IPv6 address must be in brackets");
    }
    absl::StatusOr<IpAddress> ip = IpAddress::Parse(host);
    if (ip.ok() && ip->is_v4()) {
      a.kind = Authority::Kind::kIpv4;
    } else {
      if (!ValidHostname(host)) return Bad(text, "bad host name");
      // All-digit-and-dot names that are not valid IPv4 addresses are
      // rejected rather than resolved as names.
      if (host.find_first_not_of("0123456789.") == absl::string_view::npos) {
        return Bad(text, "bad IPv4 address");
      }
      a.kind = Authority::Kind::kHostname;
    }
  }
  if (!ParsePort(port, &a.port)) return Bad(text, "bad port (want 1-65535)");
  a.host = std::string(host);
  return a;
}

}  // namespace ambient::hbone
