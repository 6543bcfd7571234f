// Fuzzes DecodeCertificateResponse (the Istio CA's answer) with arbitrary
// bytes against one fixed CSR: no crash or leak, and nothing is accepted
// unless it names the CSR's identity.
#include <cstddef>
#include <cstdint>
#include <string>

#include "ambient/xds/ca_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ambient::xds::CertificateSigningRequest* csr = [] {
    auto id = ambient::identity::SpiffeId::Parse("spiffe://cluster.local/ns/demo/sa/client");
    auto c = ambient::xds::MakeCsr(*id);
    if (!c.ok()) __builtin_trap();
    return new ambient::xds::CertificateSigningRequest(std::move(*c));
  }();
  auto got = ambient::xds::DecodeCertificateResponse(
      std::string(reinterpret_cast<const char*>(data), size), *csr, 1893456000);
  if (got.ok() && got->credentials->id() != csr->id) __builtin_trap();
  return 0;
}
