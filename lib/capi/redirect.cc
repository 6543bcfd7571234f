// extern "C" shims of the redirect layer (ambient/c/redirect.h). No logic.
#include "ambient/c/redirect.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ambient/redirect/config.h"
#include "ambient/redirect/render.h"
#include "capi/error.h"

struct ambient_redirect_config {
  ambient::redirect::Config config;
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

char* CopyText(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out == nullptr) return nullptr;
  std::memcpy(out, text.data(), text.size());
  out[text.size()] = '\0';
  return out;
}

}  // namespace

extern "C" {

ambient_redirect_config* ambient_redirect_config_new(void) {
  try {
    return new ambient_redirect_config;
  } catch (...) {
    return nullptr;
  }
}

void ambient_redirect_config_free(ambient_redirect_config* config) { delete config; }

ambient_error* ambient_redirect_config_parse_flags(ambient_redirect_config* config, int argc,
                                                   const char* const* argv) {
  return Guard([&]() -> absl::Status {
    if (config == nullptr) return NullArgument("config");
    if (argc < 0) return absl::InvalidArgumentError("argc must not be negative");
    if (argc > 0 && argv == nullptr) return NullArgument("argv");
    std::vector<std::string> args;
    for (int i = 0; i < argc; ++i) {
      if (argv[i] == nullptr) return NullArgument("argv[i]");
      args.emplace_back(argv[i]);
    }
    absl::StatusOr<rd::Config> parsed = rd::ParseFlags(args);
    if (!parsed.ok()) return parsed.status();
    config->config = *std::move(parsed);
    return absl::OkStatus();
  });
}

ambient_error* ambient_redirect_config_set_backend(ambient_redirect_config* config,
                                                   ambient_redirect_backend backend) {
  return Guard([&] {
    return Update(config, [&](rd::Config& c) -> absl::Status {
      switch (backend) {
        case AMBIENT_REDIRECT_IPTABLES: c.backend = rd::Backend::kIptables; return absl::OkStatus();
        case AMBIENT_REDIRECT_NFTABLES: c.backend = rd::Backend::kNftables; return absl::OkStatus();
      }
      return absl::InvalidArgumentError("unknown backend");
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

ambient_error* ambient_redirect_render(const ambient_redirect_config* config, char** out_text,
                                       size_t* out_len) {
  if (out_text != nullptr) *out_text = nullptr;
  return Guard([&]() -> absl::Status {
    if (config == nullptr) return NullArgument("config");
    if (out_text == nullptr) return NullArgument("out_text");
    absl::StatusOr<std::string> text = rd::Render(config->config);
    if (!text.ok()) return text.status();
    char* copy = CopyText(*text);
    if (copy == nullptr) return absl::ResourceExhaustedError("out of memory");
    *out_text = copy;
    if (out_len != nullptr) *out_len = text->size();
    return absl::OkStatus();
  });
}

void ambient_redirect_text_free(char* text) { std::free(text); }

}  // extern "C"
