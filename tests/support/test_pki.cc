#include "support/test_pki.h"

#include <openssl/base64.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

namespace ambient::test_support {
namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "test PKI: %s failed\n", what);
  std::abort();
}

void AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  Check(ext != nullptr, "extension");
  Check(X509_add_ext(cert, ext.get(), -1) == 1, "add extension");
}

std::string BioToString(BIO* bio) {
  const uint8_t* data = nullptr;
  size_t len = 0;
  Check(BIO_mem_contents(bio, &data, &len) == 1, "bio contents");
  return std::string(reinterpret_cast<const char*>(data), len);
}

}  // namespace

bssl::UniquePtr<EVP_PKEY> MakeKey(KeyType type) {
  bssl::UniquePtr<EVP_PKEY> pkey(EVP_PKEY_new());
  if (type == KeyType::kRsa2048) {
    bssl::UniquePtr<RSA> rsa(RSA_new());
    bssl::UniquePtr<BIGNUM> e(BN_new());
    Check(BN_set_word(e.get(), RSA_F4) == 1, "bn");
    Check(RSA_generate_key_ex(rsa.get(), 2048, e.get(), nullptr) == 1, "rsa keygen");
    Check(EVP_PKEY_assign_RSA(pkey.get(), rsa.release()) == 1, "assign rsa");
    return pkey;
  }
  int nid = type == KeyType::kP384 ? NID_secp384r1 : NID_X9_62_prime256v1;
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(nid));
  Check(ec != nullptr && EC_KEY_generate_key(ec.get()) == 1, "ec keygen");
  Check(EVP_PKEY_assign_EC_KEY(pkey.get(), ec.release()) == 1, "assign ec");
  return pkey;
}

Issued Issue(const CertSpec& spec, const Issued* issuer, bssl::UniquePtr<EVP_PKEY> key) {
  if (key == nullptr) key = MakeKey();
  bssl::UniquePtr<X509> cert(X509_new());
  Check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "version");
  Check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), spec.serial) == 1, "serial");
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  Check(X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8,
                                   reinterpret_cast<const uint8_t*>("ambient-test"), -1, -1, 0),
        "name O");
  Check(X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const uint8_t*>(spec.common_name.c_str()), -1,
                                   -1, 0),
        "name CN");
  Check(X509_set_subject_name(cert.get(), name.get()) == 1, "subject");
  X509* issuer_cert = issuer != nullptr ? issuer->cert.get() : cert.get();
  Check(X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) == 1, "issuer");
  bssl::UniquePtr<ASN1_TIME> nb(ASN1_TIME_set(nullptr, static_cast<time_t>(spec.not_before)));
  bssl::UniquePtr<ASN1_TIME> na(ASN1_TIME_set(nullptr, static_cast<time_t>(spec.not_after)));
  Check(X509_set1_notBefore(cert.get(), nb.get()) == 1, "notBefore");
  Check(X509_set1_notAfter(cert.get(), na.get()) == 1, "notAfter");
  Check(X509_set_pubkey(cert.get(), key.get()) == 1, "pubkey");
  AddExt(cert.get(), issuer_cert, NID_basic_constraints,
         spec.is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (!spec.key_usage.empty()) AddExt(cert.get(), issuer_cert, NID_key_usage, spec.key_usage);
  if (!spec.ext_key_usage.empty()) {
    AddExt(cert.get(), issuer_cert, NID_ext_key_usage, spec.ext_key_usage);
  }
  AddExt(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) AddExt(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  std::string san;
  for (const auto& u : spec.uri_sans) san += (san.empty() ? "" : ",") + std::string("URI:") + u;
  for (const auto& d : spec.dns_sans) san += (san.empty() ? "" : ",") + std::string("DNS:") + d;
  if (!san.empty()) AddExt(cert.get(), issuer_cert, NID_subject_alt_name, san);
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : key.get();
  Check(X509_sign(cert.get(), signer, EVP_sha256()) != 0, "sign");
  return Issued{std::move(cert), std::move(key)};
}

CertSpec CaSpec(const std::string& td, uint64_t serial) {
  CertSpec spec;
  spec.common_name = "ca " + td + " " + std::to_string(serial);
  spec.uri_sans = {"spiffe://" + td};
  spec.is_ca = true;
  spec.key_usage = "critical,keyCertSign,cRLSign";
  spec.not_before = kNow - 30 * kDay;
  spec.not_after = kNow + 365 * kDay;
  spec.serial = serial;
  return spec;
}

CertSpec LeafSpec(const std::string& id, uint64_t serial) {
  CertSpec spec;
  spec.common_name = "leaf";
  spec.uri_sans = {id};
  spec.serial = serial;
  return spec;
}

std::string Issued::CertPem() const { return ToPem(cert.get()); }

std::string Issued::KeyPem() const {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "write key");
  return BioToString(bio.get());
}

std::string ToPem(X509* cert) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_X509(bio.get(), cert) == 1, "write cert");
  return BioToString(bio.get());
}

std::string ToDer(X509* cert) {
  uint8_t* der = nullptr;
  int len = i2d_X509(cert, &der);
  Check(len > 0, "i2d");
  std::string out(reinterpret_cast<const char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bssl::UniquePtr<X509> Tampered(X509* cert) {
  std::string der = ToDer(cert);
  // The signature BIT STRING is last; flip a bit in its final bytes (inside
  // the ECDSA s value or the RSA signature), keeping the DER well-formed.
  der[der.size() - 2] = static_cast<char>(der[der.size() - 2] ^ 0x01);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der.data());
  bssl::UniquePtr<X509> out(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  Check(out != nullptr, "reparse tampered");
  return out;
}

std::string Base64(const std::string& bytes) {
  size_t len = 0;
  Check(EVP_EncodedLength(&len, bytes.size()) == 1, "b64 len");
  std::string out(len, '\0');
  size_t n = EVP_EncodeBlock(reinterpret_cast<uint8_t*>(out.data()),
                             reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  out.resize(n);
  return out;
}

}  // namespace ambient::test_support
