// The redirect C ABI: config setters validate and leave the config unchanged
// on error, render gives istio's bytes, NULL arguments are errors, and the
// appliers work on a namespace descriptor.
#include "ambient/c/redirect.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ambient/netns/netns.h"
#include "redirect/golden_cases.h"
#include "support/privileged.h"

extern "C" ambient_error* set_backend_from_c(ambient_redirect_config* config, int backend);

namespace {

struct ConfigDeleter {
  void operator()(ambient_redirect_config* c) const { ambient_redirect_config_free(c); }
};
using ConfigPtr = std::unique_ptr<ambient_redirect_config, ConfigDeleter>;

std::string RenderOf(const ambient_redirect_config* config) {
  size_t len = 0;
  ambient_error* err = ambient_redirect_render(config, nullptr, 0, &len);
  EXPECT_EQ(err, nullptr) << ambient_error_message(err);
  ambient_error_free(err);
  std::string out(len + 1, '\0');
  size_t again = 0;
  err = ambient_redirect_render(config, out.data(), out.size(), &again);
  EXPECT_EQ(err, nullptr) << ambient_error_message(err);
  ambient_error_free(err);
  EXPECT_EQ(again, len);
  EXPECT_EQ(out[len], '\0');
  out.resize(len);
  return out;
}

TEST(RedirectCapi, SettersRenderIstioGolden) {
  ConfigPtr c(ambient_redirect_config_new());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(ambient_redirect_config_set_ipv6(c.get(), 1), nullptr);
  EXPECT_EQ(ambient_redirect_config_set_dns_capture(c.get(), 0), nullptr);
  EXPECT_EQ(ambient_redirect_config_add_reroute_interface(c.get(), "fake1s0f0"), nullptr);
  EXPECT_EQ(ambient_redirect_config_add_reroute_interface(c.get(), "fake1s0f1"), nullptr);
  EXPECT_EQ(ambient_redirect_config_set_probe_snat_v6(c.get(), ambient::redirect::testing::kGoldenV6),
            nullptr);
  EXPECT_EQ(ambient_redirect_config_set_backend(c.get(), AMBIENT_REDIRECT_NFTABLES), nullptr);
  std::string want;
  ambient::redirect::testing::GoldenCase gc{"virtual_interfaces_ipv6", {}};
  ASSERT_TRUE(ambient::redirect::testing::GoldenPayload(gc, true, &want));
  EXPECT_EQ(RenderOf(c.get()), want);
}

TEST(RedirectCapi, BadInputIsAnErrorAndChangesNothing) {
  ConfigPtr c(ambient_redirect_config_new());
  const std::string before = RenderOf(c.get());
  ambient_error* err = ambient_redirect_config_set_probe_snat_v4(c.get(), "::1");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  err = ambient_redirect_config_add_reroute_interface(c.get(), "eth0 -j ACCEPT");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  err = ambient_redirect_config_set_pod_dns_capture(c.get(), 7);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  // A C host may pass any int as the enum; the library must not read it as
  // an out-of-range C++ enum (UBSan in make asan-test checks that).
  err = set_backend_from_c(c.get(), 7);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_STREQ(ambient_error_message(err), "unknown backend 7");
  ambient_error_free(err);
  const char* args[] = {"--ipv6", "--backend", "pf"};
  err = ambient_redirect_config_parse_flags(c.get(), 3, args);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ambient_error_message(err)).find("--backend"), std::string::npos);
  ambient_error_free(err);
  EXPECT_EQ(RenderOf(c.get()), before);

  err = ambient_redirect_config_set_host(nullptr, 1);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  char text[8] = "garbage";
  size_t len = 99;
  err = ambient_redirect_render(nullptr, text, sizeof(text), &len);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(len, 0u);
  EXPECT_STREQ(text, "");
  ambient_error_free(err);
  err = ambient_redirect_render(c.get(), nullptr, 0, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  // A buffer too small gets the start of the text, NUL-terminated, and the
  // full length.
  std::string full = RenderOf(c.get());
  ASSERT_GT(full.size(), 8u);
  err = ambient_redirect_render(c.get(), text, sizeof(text), &len);
  EXPECT_EQ(err, nullptr);
  EXPECT_EQ(len, full.size());
  EXPECT_EQ(std::string(text), full.substr(0, 7));
  ambient_redirect_drift* drift = reinterpret_cast<ambient_redirect_drift*>(1);
  err = ambient_redirect_check(c.get(), nullptr, &drift);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(drift, nullptr);
  ambient_error_free(err);
  for (ambient_error* e :
       {ambient_redirect_apply(c.get(), nullptr), ambient_redirect_delete(c.get(), nullptr)}) {
    EXPECT_EQ(ambient_error_code(e), AMBIENT_ERR_INVALID_ARGUMENT);
    ambient_error_free(e);
  }
  EXPECT_EQ(ambient_redirect_drift_count(nullptr), 0u);
  EXPECT_EQ(ambient_redirect_drift_get0(nullptr, 0), nullptr);
  ambient_redirect_config_free(nullptr);
  ambient_redirect_drift_free(nullptr);
}

// Handle is an ambient_netns for a namespace descriptor, freed with it.
struct Handle {
  ambient_netns* ns = nullptr;
  explicit Handle(int fd) { EXPECT_EQ(ambient_netns_open_fd(fd, &ns), nullptr); }
  ~Handle() { ambient_netns_free(ns); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
};

TEST(RedirectCapi, ApplyCheckDeleteOnAHandle) {
  AMBIENT_REQUIRE_ROOT();
  absl::StatusOr<ambient::netns::Netns> ns = ambient::netns::Netns::CreateUnnamed();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ambient::netns::BringUpLoopback(*ns).ok());
  Handle h(ns->fd());
  ASSERT_NE(h.ns, nullptr);
  ConfigPtr c(ambient_redirect_config_new());
  ASSERT_EQ(ambient_redirect_config_set_backend(c.get(), AMBIENT_REDIRECT_NFTABLES), nullptr);
  ambient_redirect_drift* drift = nullptr;
  ASSERT_EQ(ambient_redirect_check(c.get(), h.ns, &drift), nullptr);
  EXPECT_GT(ambient_redirect_drift_count(drift), 0u);
  EXPECT_NE(std::string(ambient_redirect_drift_get0(drift, 0)).find("missing"), std::string::npos);
  ambient_redirect_drift_free(drift);
  ASSERT_EQ(ambient_redirect_apply(c.get(), h.ns), nullptr);
  ASSERT_EQ(ambient_redirect_check(c.get(), h.ns, &drift), nullptr);
  EXPECT_EQ(ambient_redirect_drift_count(drift), 0u);
  ambient_redirect_drift_free(drift);
  ASSERT_EQ(ambient_redirect_delete(c.get(), h.ns), nullptr);
  ASSERT_EQ(ambient_redirect_check(c.get(), h.ns, &drift), nullptr);
  EXPECT_GT(ambient_redirect_drift_count(drift), 0u);
  ambient_redirect_drift_free(drift);
}

// The probe set calls through the C ABI: add, list, refused removal for
// another pod's UID, removal, and NULL arguments.
TEST(RedirectCapi, ProbeSetMembers) {
  AMBIENT_REQUIRE_ROOT();
  absl::StatusOr<ambient::netns::Netns> ns = ambient::netns::Netns::CreateUnnamed();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ConfigPtr c(ambient_redirect_config_new());
  ASSERT_EQ(ambient_redirect_config_set_backend(c.get(), AMBIENT_REDIRECT_NFTABLES), nullptr);
  ASSERT_EQ(ambient_redirect_config_set_host(c.get(), 1), nullptr);
  ASSERT_EQ(ambient_redirect_config_set_kubelet_uid(c.get(), 1000), nullptr);
  Handle h(ns->fd());
  ASSERT_NE(h.ns, nullptr);
  ambient_error* err = ambient_redirect_probe_add(c.get(), h.ns, "198.18.0.9", "uid-a");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_NOT_FOUND);  // no host rules yet
  ambient_error_free(err);
  ASSERT_EQ(ambient_redirect_apply(c.get(), h.ns), nullptr);
  ASSERT_EQ(ambient_redirect_probe_add(c.get(), h.ns, "198.18.0.9", "uid-a"), nullptr);

  ambient_redirect_probes* probes = nullptr;
  ASSERT_EQ(ambient_redirect_probe_list(c.get(), h.ns, &probes), nullptr);
  ASSERT_EQ(ambient_redirect_probes_count(probes), 1u);
  EXPECT_STREQ(ambient_redirect_probes_get0_address(probes, 0), "198.18.0.9");
  EXPECT_STREQ(ambient_redirect_probes_get0_pod_uid(probes, 0), "uid-a");
  EXPECT_EQ(ambient_redirect_probes_get0_address(probes, 1), nullptr);
  ambient_redirect_probes_free(probes);

  err = ambient_redirect_probe_remove(c.get(), h.ns, "198.18.0.9", "uid-b");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_FAILED_PRECONDITION);
  ambient_error_free(err);
  ASSERT_EQ(ambient_redirect_probe_remove(c.get(), h.ns, "198.18.0.9", nullptr), nullptr);
  ASSERT_EQ(ambient_redirect_probe_list(c.get(), h.ns, &probes), nullptr);
  EXPECT_EQ(ambient_redirect_probes_count(probes), 0u);
  ambient_redirect_probes_free(probes);

  for (ambient_error* e : {ambient_redirect_probe_add(nullptr, h.ns, "198.18.0.9", "u"),
                           ambient_redirect_probe_add(c.get(), h.ns, nullptr, "u"),
                           ambient_redirect_probe_add(c.get(), h.ns, "198.18.0.9", nullptr),
                           ambient_redirect_probe_add(c.get(), nullptr, "198.18.0.9", "u"),
                           ambient_redirect_probe_remove(c.get(), nullptr, "198.18.0.9", "u"),
                           ambient_redirect_probe_list(c.get(), h.ns, nullptr)}) {
    EXPECT_EQ(ambient_error_code(e), AMBIENT_ERR_INVALID_ARGUMENT);
    ambient_error_free(e);
  }
  probes = reinterpret_cast<ambient_redirect_probes*>(1);
  err = ambient_redirect_probe_list(c.get(), nullptr, &probes);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(probes, nullptr);
  ambient_error_free(err);
  EXPECT_EQ(ambient_redirect_probes_count(nullptr), 0u);
  ambient_redirect_probes_free(nullptr);
}

}  // namespace
