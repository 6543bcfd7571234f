#include "support/test_pki.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "ambient/base/tls.h"

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
  tls::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
  Check(ext != nullptr, "extension");
  Check(X509_add_ext(cert, ext.get(), -1) == 1, "add extension");
}

std::string BioToString(BIO* bio) { return std::string(tls::MemBioContents(bio)); }

}  // namespace

tls::UniquePtr<EVP_PKEY> MakeKey(KeyType type) {
  // EVP_PKEY keygen: the same calls on BoringSSL and OpenSSL 3.
  bool rsa = type == KeyType::kRsa2048;
  tls::UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_id(rsa ? EVP_PKEY_RSA : EVP_PKEY_EC, nullptr));
  Check(ctx != nullptr && EVP_PKEY_keygen_init(ctx.get()) == 1, "keygen init");
  if (rsa) {
    Check(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), 2048) == 1, "rsa bits");
  } else {
    int nid = type == KeyType::kP384 ? NID_secp384r1 : NID_X9_62_prime256v1;
    Check(EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx.get(), nid) == 1, "ec curve");
  }
  EVP_PKEY* key = nullptr;
  Check(EVP_PKEY_keygen(ctx.get(), &key) == 1, "keygen");
  return tls::UniquePtr<EVP_PKEY>(key);
}

Issued Issue(const CertSpec& spec, const Issued* issuer, tls::UniquePtr<EVP_PKEY> key) {
  if (key == nullptr) key = MakeKey();
  tls::UniquePtr<X509> cert(X509_new());
  Check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "version");
  Check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), spec.serial) == 1, "serial");
  tls::UniquePtr<X509_NAME> name(X509_NAME_new());
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
  tls::UniquePtr<ASN1_TIME> nb(ASN1_TIME_set(nullptr, static_cast<time_t>(spec.not_before)));
  tls::UniquePtr<ASN1_TIME> na(ASN1_TIME_set(nullptr, static_cast<time_t>(spec.not_after)));
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
  tls::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "write key");
  return BioToString(bio.get());
}

std::string ToPem(X509* cert) {
  tls::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
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

tls::UniquePtr<X509> Tampered(X509* cert) {
  std::string der = ToDer(cert);
  // The signature BIT STRING is last; flip a bit in its final bytes (inside
  // the ECDSA s value or the RSA signature), keeping the DER well-formed.
  der[der.size() - 2] = static_cast<char>(der[der.size() - 2] ^ 0x01);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(der.data());
  tls::UniquePtr<X509> out(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  Check(out != nullptr, "reparse tampered");
  return out;
}

std::string PeerLeafDer(const SSL* ssl) {
#if AMBIENT_TLS_OPENSSL
  X509* leaf = SSL_get0_peer_certificate(ssl);
#else
  tls::UniquePtr<X509> owned(SSL_get_peer_certificate(ssl));
  X509* leaf = owned.get();
#endif
  return leaf == nullptr ? std::string() : ToDer(leaf);
}

std::string Base64(const std::string& bytes) { return absl::Base64Escape(bytes); }

}  // namespace ambient::test_support
