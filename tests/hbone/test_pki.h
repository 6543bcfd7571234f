// Test-only HBONE PKI: a P-256 CA valid around the real time, leaf
// certificates with a SPIFFE URI SAN, and SSL_CTXs prepared for HBONE that
// verify peers against the CA. Certificates come from the shared test PKI
// (tests/support/test_pki.h); this adds the real clock and the HBONE contexts.
#ifndef AMBIENT_TESTS_HBONE_TEST_PKI_H_
#define AMBIENT_TESTS_HBONE_TEST_PKI_H_

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <string>

#include "ambient/base/tls.h"
#include "support/test_pki.h"

namespace ambient::hbone::testing {

// A key with its certificate.
using KeyAndCert = test_support::Issued;

class TestCa {
 public:
  TestCa();
  // Leaf issues an ECDSA P-256 end-entity certificate with `spiffe_id` as its
  // only URI SAN (serverAuth and clientAuth), valid from an hour ago for a day.
  KeyAndCert Leaf(const std::string& spiffe_id) const;
  X509* cert() const { return ca_.cert.get(); }

  // Context makes an SSL_CTX presenting `leaf`, trusting this CA, verifying
  // peers, with the HBONE policy for `server` or client applied.
  tls::UniquePtr<SSL_CTX> Context(const KeyAndCert& leaf, bool server) const;

  // PEM writes the CA certificate, or a leaf's key and certificate, as PEM.
  std::string CaPem() const;
  static std::string CertPem(const KeyAndCert& kc);
  static std::string KeyPem(const KeyAndCert& kc);

 private:
  KeyAndCert ca_;
  mutable std::atomic<uint64_t> next_serial_{2};
};

}  // namespace ambient::hbone::testing

#endif  // AMBIENT_TESTS_HBONE_TEST_PKI_H_
