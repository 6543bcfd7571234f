// tests/xds/test_ca.h: an in-memory Istio CA for the xds tests. It signs a
// CSR the way istiod does (a leaf for the requested identity over the CSR's
// public key) with a CA from tests/support/test_pki.h, and wraps chains in
// an IstioCertificateResponse.
#ifndef AMBIENT_TESTS_XDS_TEST_CA_H_
#define AMBIENT_TESTS_XDS_TEST_CA_H_

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "ambient/base/tls.h"
#include "ca.pb.h"
#include "gtest/gtest.h"
#include "support/test_pki.h"

namespace ambient::xds::test_ca {

// SignCsr is a leaf for `id` over `csr_pem`'s key, signed by `ca`, valid
// from `not_before` to `not_after` (Unix seconds).
inline std::string SignCsr(const std::string& csr_pem, const std::string& id,
                           const test_support::Issued& ca,
                           int64_t not_before = test_support::kNow - test_support::kDay,
                           int64_t not_after = test_support::kNow + test_support::kDay) {
  tls::UniquePtr<BIO> bio(BIO_new_mem_buf(csr_pem.data(), static_cast<int>(csr_pem.size())));
  tls::UniquePtr<X509_REQ> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  EXPECT_TRUE(req);
  if (!req) return "";
  tls::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(req.get()));
  EXPECT_EQ(X509_REQ_verify(req.get(), pub.get()), 1);
  test_support::CertSpec spec = test_support::LeafSpec(id);
  spec.not_before = not_before;
  spec.not_after = not_after;
  return test_support::Issue(spec, &ca, std::move(pub)).CertPem();
}

// Response is the serialized IstioCertificateResponse carrying `chain`.
inline std::string Response(const std::vector<std::string>& chain) {
  ::ambient::wire::istio::ca::IstioCertificateResponse r;
  for (const auto& c : chain) r.add_cert_chain(c);
  return r.SerializeAsString();
}

}  // namespace ambient::xds::test_ca

#endif  // AMBIENT_TESTS_XDS_TEST_CA_H_
