// libFuzzer target: the iptables-save parser used by the drift check and
// the reconciler (the text comes from inside a pod's namespace). Whatever it
// parses must turn into a reconcile payload without trouble.
#include <cstddef>
#include <cstdint>
#include <string>

#include "redirect/iptables_backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 65536) return 0;
  std::string text(reinterpret_cast<const char*>(data), size);
  for (bool host : {false, true}) {
    ambient::redirect::internal::IptState state =
        ambient::redirect::internal::ParseSave(text, ambient::redirect::internal::OurChains(host));
    std::string payload = ambient::redirect::internal::ReconcilePayload(
        state, ambient::redirect::internal::IptState{}, ambient::redirect::internal::SnapshotLines(state));
    std::vector<ambient::redirect::Drift> drift;
    ambient::redirect::internal::DiffState(ambient::redirect::IpFamily::kIPv4, state, state, &drift);
    if (!drift.empty()) __builtin_trap();  // a state never drifts from itself
    // Against the rules istio would install: missing, extra and misplaced
    // (the host jump must be rule 1) are all reported without trouble.
    ambient::redirect::Config config;
    config.host = host;
    absl::StatusOr<std::vector<ambient::redirect::IptRuleset>> want =
        ambient::redirect::BuildIptables(config);
    if (!want.ok()) __builtin_trap();
    ambient::redirect::internal::DiffState(ambient::redirect::IpFamily::kIPv4,
                                           ambient::redirect::internal::Expected(want->front()), state,
                                           &drift);
    (void)payload;
  }
  return 0;
}
