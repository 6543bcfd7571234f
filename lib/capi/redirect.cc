// extern "C" shims of the redirect layer (ambient/c/redirect.h). No logic.
#include "ambient/c/redirect.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ambient/netns/netns.h"
#include "ambient/redirect/apply.h"
#include "ambient/redirect/config.h"
#include "ambient/redirect/probe_set.h"
#include "ambient/redirect/render.h"
#include "capi/internal.h"

struct ambient_redirect_config {
  ambient::redirect::Config config;
};

struct ambient_redirect_drift {
  std::vector<std::string> lines;
};

struct ambient_redirect_probes {
  std::vector<ambient::redirect::ProbeMember> members;
};

namespace {

using ambient::capi::Guard;
using ambient::capi::NullArgument;
namespace rd = ambient::redirect;

// Updates a copy and commits it only when it validates, so a failed setter
// leaves the config unchanged.
template <typename Fn>
absl::Status Update(ambient_redirect_config* config, Fn&& change) {
  if (config == nullptr) return NullArgument("config");
  rd::Config copy = config->config;
  if (absl::Status s = change(copy); !s.ok()) return s;
  if (absl::Status s = rd::Validate(copy); !s.ok()) return s;
  config->config = std::move(copy);
  return absl::OkStatus();
}

absl::Status DoApply(const ambient_redirect_config* config, const ambient_netns* ns) {
  if (config == nullptr) return NullArgument("config");
  if (ns == nullptr) return NullArgument("ns");
  return rd::Apply(config->config, ns->ns);
}

absl::Status DoDelete(const ambient_redirect_config* config, const ambient_netns* ns) {
  if (config == nullptr) return NullArgument("config");
  if (ns == nullptr) return NullArgument("ns");
  return rd::Delete(config->config, ns->ns);
}

absl::Status DoProbe(const ambient_redirect_config* config, const ambient_netns* ns,
                     const char* address, const char* pod_uid, bool add) {
  if (config == nullptr) return NullArgument("config");
  if (address == nullptr) return NullArgument("address");
  if (add && pod_uid == nullptr) return NullArgument("pod_uid");
  if (ns == nullptr) return NullArgument("ns");
  if (add) return rd::AddProbeAddress(config->config, ns->ns, address, pod_uid);
  return rd::RemoveProbeAddress(config->config, ns->ns, address, pod_uid == nullptr ? "" : pod_uid);
}

absl::Status DoProbeList(const ambient_redirect_config* config, const ambient_netns* ns,
                         ambient_redirect_probes** out) {
  if (out == nullptr) return NullArgument("out_probes");
  if (config == nullptr) return NullArgument("config");
  if (ns == nullptr) return NullArgument("ns");
  absl::StatusOr<std::vector<rd::ProbeMember>> members =
      rd::ListProbeAddresses(config->config, ns->ns);
  if (!members.ok()) return members.status();
  auto list = std::make_unique<ambient_redirect_probes>();
  list->members = *std::move(members);
  *out = list.release();
  return absl::OkStatus();
}

absl::Status DoCheck(const ambient_redirect_config* config, const ambient_netns* ns,
                     ambient_redirect_drift** out) {
  if (out == nullptr) return NullArgument("out_drift");
  if (config == nullptr) return NullArgument("config");
  if (ns == nullptr) return NullArgument("ns");
  absl::StatusOr<std::vector<rd::Drift>> drift = rd::Check(config->config, ns->ns);
  if (!drift.ok()) return drift.status();
  auto list = std::make_unique<ambient_redirect_drift>();
  for (const rd::Drift& d : *drift) list->lines.push_back(d.ToString());
  *out = list.release();
  return absl::OkStatus();
}

}  // namespace

extern "C" {

ambient_redirect_config* ambient_redirect_config_new(void) {
  return ambient::capi::NewOrNull<ambient_redirect_config>();
}

void ambient_redirect_config_free(ambient_redirect_config* config) { delete config; }

ambient_error* ambient_redirect_config_parse_flags(ambient_redirect_config* config, int argc,
                                                   const char* const* argv) {
  return Guard([&]() -> absl::Status {
    if (config == nullptr) return NullArgument("config");
    if (argc < 0) return absl::InvalidArgumentError("argc must not be negative");
    std::vector<std::string> args;
    if (absl::Status s =
            ambient::capi::CopyStrings(argv, static_cast<size_t>(argc), "argv", "argv[i]", &args);
        !s.ok()) {
      return s;
    }
    absl::StatusOr<rd::Config> parsed = rd::ParseFlags(args);
    if (!parsed.ok()) return parsed.status();
    config->config = *std::move(parsed);
    return absl::OkStatus();
  });
}

ambient_error* ambient_redirect_config_set_backend(ambient_redirect_config* config,
                                                   ambient_redirect_backend backend) {
  // A C caller may pass any int: copy the bits out instead of reading an
  // out-of-range value as the enum type, which C++ leaves undefined.
  int value;
  std::memcpy(&value, &backend, sizeof(value));
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      switch (value) {
        case AMBIENT_REDIRECT_IPTABLES: c.backend = rd::Backend::kIptables; return absl::OkStatus();
        case AMBIENT_REDIRECT_NFTABLES: c.backend = rd::Backend::kNftables; return absl::OkStatus();
      }
      return absl::InvalidArgumentError(absl::StrCat("unknown backend ", value));
    });
  });
}

#define AMBIENT_REDIRECT_BOOL_SETTER(fn, field)                                          \
  ambient_error* fn(ambient_redirect_config* config, int on) {                           \
    return Guard([&] {                                                                   \
      return Update(config, [&](rd::Config& c) {                                         \
        c.field = on != 0;                                                               \
        return absl::OkStatus();                                                         \
      });                                                                                \
    });                                                                                  \
  }

AMBIENT_REDIRECT_BOOL_SETTER(ambient_redirect_config_set_host, host)
AMBIENT_REDIRECT_BOOL_SETTER(ambient_redirect_config_set_ipv6, ipv6)
AMBIENT_REDIRECT_BOOL_SETTER(ambient_redirect_config_set_dns_capture, dns_capture)
AMBIENT_REDIRECT_BOOL_SETTER(ambient_redirect_config_set_bypass_inbound, bypass_inbound)
#undef AMBIENT_REDIRECT_BOOL_SETTER

ambient_error* ambient_redirect_config_set_pod_dns_capture(ambient_redirect_config* config,
                                                           int value) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      if (value == -1) {
        c.pod_dns_capture.reset();
      } else if (value == 0 || value == 1) {
        c.pod_dns_capture = value == 1;
      } else {
        return absl::InvalidArgumentError("pod DNS capture must be -1, 0 or 1");
      }
      return absl::OkStatus();
    });
  });
}

ambient_error* ambient_redirect_config_add_reroute_interface(ambient_redirect_config* config,
                                                             const char* name) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      if (name == nullptr) return NullArgument("name");
      c.reroute_interfaces.emplace_back(name);
      return absl::OkStatus();
    });
  });
}

ambient_error* ambient_redirect_config_set_probe_snat_v4(ambient_redirect_config* config,
                                                         const char* address) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      if (address == nullptr) return NullArgument("address");
      absl::StatusOr<std::string> a = rd::CanonicalAddress(AF_INET, address);
      if (!a.ok()) return a.status();
      c.probe_snat_v4 = *a;
      return absl::OkStatus();
    });
  });
}

ambient_error* ambient_redirect_config_set_probe_snat_v6(ambient_redirect_config* config,
                                                         const char* address) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      if (address == nullptr) return NullArgument("address");
      absl::StatusOr<std::string> a = rd::CanonicalAddress(AF_INET6, address);
      if (!a.ok()) return a.status();
      c.probe_snat_v6 = *a;
      return absl::OkStatus();
    });
  });
}

ambient_error* ambient_redirect_config_set_kubelet_uid(ambient_redirect_config* config,
                                                       uint32_t uid) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) {
      c.kubelet_uid = uid;
      return absl::OkStatus();
    });
  });
}

ambient_error* ambient_redirect_render(const ambient_redirect_config* config, char* buf, size_t cap,
                                       size_t* out_len) {
  ambient::capi::CopyToBuffer("", buf, cap);
  if (out_len != nullptr) *out_len = 0;
  return Guard([&]() -> absl::Status {
    if (config == nullptr) return NullArgument("config");
    if (out_len == nullptr) return NullArgument("out_len");
    absl::StatusOr<std::string> text = rd::Render(config->config);
    if (!text.ok()) return text.status();
    *out_len = ambient::capi::CopyToBuffer(*text, buf, cap);
    return absl::OkStatus();
  });
}

ambient_error* ambient_redirect_render_family(const ambient_redirect_config* config, int family,
                                              char* buf, size_t cap, size_t* out_len) {
  ambient::capi::CopyToBuffer("", buf, cap);
  if (out_len != nullptr) *out_len = 0;
  return Guard([&]() -> absl::Status {
    if (config == nullptr) return NullArgument("config");
    if (out_len == nullptr) return NullArgument("out_len");
    if (family != 4 && family != 6) return absl::InvalidArgumentError("family must be 4 or 6");
    absl::StatusOr<std::string> text = rd::RenderFamily(
        config->config, family == 4 ? rd::IpFamily::kIPv4 : rd::IpFamily::kIPv6);
    if (!text.ok()) return text.status();
    *out_len = ambient::capi::CopyToBuffer(*text, buf, cap);
    return absl::OkStatus();
  });
}

ambient_error* ambient_redirect_apply(const ambient_redirect_config* config,
                                      const ambient_netns* ns) {
  return Guard([&] { return DoApply(config, ns); });
}

ambient_error* ambient_redirect_check(const ambient_redirect_config* config,
                                      const ambient_netns* ns, ambient_redirect_drift** out_drift) {
  if (out_drift != nullptr) *out_drift = nullptr;
  return Guard([&] { return DoCheck(config, ns, out_drift); });
}

size_t ambient_redirect_drift_count(const ambient_redirect_drift* drift) {
  return drift == nullptr ? 0 : drift->lines.size();
}

const char* ambient_redirect_drift_get0(const ambient_redirect_drift* drift, size_t i) {
  if (drift == nullptr || i >= drift->lines.size()) return nullptr;
  return drift->lines[i].c_str();
}

void ambient_redirect_drift_free(ambient_redirect_drift* drift) { delete drift; }

ambient_error* ambient_redirect_delete(const ambient_redirect_config* config,
                                       const ambient_netns* ns) {
  return Guard([&] { return DoDelete(config, ns); });
}

ambient_error* ambient_redirect_probe_add(const ambient_redirect_config* config,
                                          const ambient_netns* ns, const char* address,
                                          const char* pod_uid) {
  return Guard([&] { return DoProbe(config, ns, address, pod_uid, true); });
}

ambient_error* ambient_redirect_probe_remove(const ambient_redirect_config* config,
                                             const ambient_netns* ns, const char* address,
                                             const char* pod_uid) {
  return Guard([&] { return DoProbe(config, ns, address, pod_uid, false); });
}

ambient_error* ambient_redirect_probe_list(const ambient_redirect_config* config,
                                           const ambient_netns* ns,
                                           ambient_redirect_probes** out_probes) {
  if (out_probes != nullptr) *out_probes = nullptr;
  return Guard([&] { return DoProbeList(config, ns, out_probes); });
}

size_t ambient_redirect_probes_count(const ambient_redirect_probes* probes) {
  return probes == nullptr ? 0 : probes->members.size();
}

const char* ambient_redirect_probes_get0_address(const ambient_redirect_probes* probes, size_t i) {
  if (probes == nullptr || i >= probes->members.size()) return nullptr;
  return probes->members[i].address.c_str();
}

const char* ambient_redirect_probes_get0_pod_uid(const ambient_redirect_probes* probes, size_t i) {
  if (probes == nullptr || i >= probes->members.size()) return nullptr;
  return probes->members[i].pod_uid.c_str();
}

void ambient_redirect_probes_free(ambient_redirect_probes* probes) { delete probes; }

}  // extern "C"
