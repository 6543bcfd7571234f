// Fuzzes DeltaAdsSession::OnResponse with arbitrary bytes: no crash or leak;
// an accepted response always gives a request back that decodes, and a
// handler only ever sees resources of its own type.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ambient/xds/delta_ads.h"

namespace {

class Check : public ambient::xds::TypeHandler {
 public:
  explicit Check(std::string url) : url_(std::move(url)) {}
  std::vector<ambient::xds::Rejection> Apply(const std::vector<ambient::xds::ResourceUpdate>& u,
                                             const std::vector<std::string>&) override {
    std::vector<ambient::xds::Rejection> out;
    for (const auto& r : u) {
      if (r.type_url != url_ || r.name.empty()) __builtin_trap();
      if (!r.value.empty() && r.value[0] == 'x') out.emplace_back(r.name, "refused");
    }
    return out;
  }

 private:
  std::string url_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Check a(ambient::xds::kAddressType), p(ambient::xds::kAuthorizationType);
  ambient::xds::DeltaAdsSession s(
      {}, {{ambient::xds::kAddressType, &a}, {ambient::xds::kAuthorizationType, &p}});
  s.StreamStarted();
  auto reply = s.OnResponse(std::string(reinterpret_cast<const char*>(data), size));
  if (reply.ok() && reply->empty() && s.stats().responses == 0) __builtin_trap();
  s.StreamStarted();
  return 0;
}
