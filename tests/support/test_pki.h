// Test support: the one test PKI. X.509 keys and certificates made in code
// with BoringSSL for every X509-SVID case the tests need (CA and leaf specs,
// RSA/P-384 keys, tampered signatures, DER/PEM/base64 forms). Nothing is read
// from disk; every test makes its own. Identity tests use the fixed clock
// kNow; TestCa (tests/hbone/test_pki.h) builds a CA valid around the real
// time on top of these functions for the HBONE, runtime and C ABI tests.
// A failure to make a key or certificate aborts the test program (it is a
// broken test setup, nothing to recover from).
#ifndef AMBIENT_TESTS_SUPPORT_TEST_PKI_H_
#define AMBIENT_TESTS_SUPPORT_TEST_PKI_H_

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "ambient/base/tls.h"

namespace ambient::test_support {

// A fixed "now" for tests: 2030-01-01T00:00:00Z.
inline constexpr int64_t kNow = 1893456000;
inline constexpr int64_t kDay = 86400;

enum class KeyType { kP256, kRsa2048, kP384 };

tls::UniquePtr<EVP_PKEY> MakeKey(KeyType type = KeyType::kP256);

struct CertSpec {
  std::string common_name = "test";
  std::vector<std::string> uri_sans;
  std::vector<std::string> dns_sans;
  bool is_ca = false;
  // keyUsage extension text (e.g. "critical,digitalSignature"); empty: none.
  std::string key_usage = "critical,digitalSignature,keyEncipherment,keyAgreement";
  // extendedKeyUsage extension text (e.g. "serverAuth,clientAuth"); empty: none.
  std::string ext_key_usage;
  int64_t not_before = kNow - kDay;
  int64_t not_after = kNow + kDay;
  uint64_t serial = 1;
};

// A certificate with its key.
struct Issued {
  tls::UniquePtr<X509> cert;
  tls::UniquePtr<EVP_PKEY> key;
  std::string CertPem() const;
  std::string KeyPem() const;  // PKCS#8
};

// Issue makes a certificate for `key` (a new P-256 key when null) signed by
// `issuer` (self-signed when null).
Issued Issue(const CertSpec& spec, const Issued* issuer = nullptr,
             tls::UniquePtr<EVP_PKEY> key = nullptr);

// CaSpec is a CA certificate spec: cA=true, keyCertSign|cRLSign, the SPIFFE
// ID of trust domain `td` as its URI SAN.
CertSpec CaSpec(const std::string& td, uint64_t serial = 1);
// LeafSpec is a valid X509-SVID leaf spec for `id`.
CertSpec LeafSpec(const std::string& id, uint64_t serial = 100);

std::string ToPem(X509* cert);
std::string ToDer(X509* cert);
// PeerLeafDer is the DER of the leaf certificate `ssl`'s peer sent ("" if
// none), on either TLS library.
std::string PeerLeafDer(const SSL* ssl);
// Tampered returns a copy of `cert` with one byte of its signature flipped.
tls::UniquePtr<X509> Tampered(X509* cert);
// Base64 is standard base64 with padding.
std::string Base64(const std::string& bytes);

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_TEST_PKI_H_
