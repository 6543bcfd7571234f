#include "hbone/test_pki.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <cstdlib>

#include "ambient/hbone/connection.h"

namespace ambient::hbone::testing {

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    // Test setup failure: nothing sensible to continue with.
    std::abort();
  }
  (void)what;
}

bssl::UniquePtr<EVP_PKEY> NewKey() {
  bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  Check(ec && EC_KEY_generate_key(ec.get()), "keygen");
  bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
  Check(key && EVP_PKEY_assign_EC_KEY(key.get(), ec.release()), "pkey");
  return key;
}

void AddExt(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  bssl::UniquePtr<X509_EXTENSION> ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
  Check(ext && X509_add_ext(cert, ext.get(), -1), "ext");
}

bssl::UniquePtr<X509> NewCert(EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                              const char* cn) {
  static std::atomic<long> serial{1};
  bssl::UniquePtr<X509> cert(X509_new());
  Check(cert && X509_set_version(cert.get(), X509_VERSION_3), "version");
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
  bssl::UniquePtr<X509_NAME> name(X509_NAME_new());
  if (cn != nullptr) {
    X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_ASC,
                               reinterpret_cast<const uint8_t*>(cn), -1, -1, 0);
    X509_set_subject_name(cert.get(), name.get());
  }
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name.get());
  Check(X509_set_pubkey(cert.get(), key), "pubkey");
  (void)issuer_key;
  return cert;
}

}  // namespace

TestCa::TestCa() {
  ca_.key = NewKey();
  ca_.cert = NewCert(ca_.key.get(), nullptr, nullptr, "ambient test CA");
  AddExt(ca_.cert.get(), ca_.cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExt(ca_.cert.get(), ca_.cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
  AddExt(ca_.cert.get(), ca_.cert.get(), NID_subject_key_identifier, "hash");
  Check(X509_sign(ca_.cert.get(), ca_.key.get(), EVP_sha256()) > 0, "sign ca");
}

KeyAndCert TestCa::Leaf(const std::string& spiffe_id) const {
  KeyAndCert kc;
  kc.key = NewKey();
  kc.cert = NewCert(kc.key.get(), ca_.cert.get(), ca_.key.get(), nullptr);
  AddExt(kc.cert.get(), ca_.cert.get(), NID_basic_constraints, "critical,CA:FALSE");
  AddExt(kc.cert.get(), ca_.cert.get(), NID_key_usage,
         "critical,digitalSignature,keyEncipherment");
  AddExt(kc.cert.get(), ca_.cert.get(), NID_ext_key_usage, "serverAuth,clientAuth");
  std::string san = "critical,URI:" + spiffe_id;
  AddExt(kc.cert.get(), ca_.cert.get(), NID_subject_alt_name, san.c_str());
  AddExt(kc.cert.get(), ca_.cert.get(), NID_authority_key_identifier, "keyid:always");
  Check(X509_sign(kc.cert.get(), ca_.key.get(), EVP_sha256()) > 0, "sign leaf");
  return kc;
}

bssl::UniquePtr<SSL_CTX> TestCa::Context(const KeyAndCert& leaf, bool server) const {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  Check(ctx != nullptr, "ctx");
  Check(SSL_CTX_use_certificate(ctx.get(), leaf.cert.get()) == 1, "use cert");
  Check(SSL_CTX_use_PrivateKey(ctx.get(), leaf.key.get()) == 1, "use key");
  Check(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca_.cert.get()) == 1, "store");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  absl::Status st = server ? PrepareServerContext(ctx.get()) : PrepareClientContext(ctx.get());
  Check(st.ok(), "prepare");
  return ctx;
}

namespace {
template <typename Fn>
std::string ToPem(Fn fn) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  Check(fn(bio.get()) == 1, "pem");
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}
}  // namespace

std::string TestCa::CaPem() const {
  return ToPem([&](BIO* b) { return PEM_write_bio_X509(b, ca_.cert.get()); });
}
std::string TestCa::CertPem(const KeyAndCert& kc) {
  return ToPem([&](BIO* b) { return PEM_write_bio_X509(b, kc.cert.get()); });
}
std::string TestCa::KeyPem(const KeyAndCert& kc) {
  return ToPem([&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, kc.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
}

}  // namespace ambient::hbone::testing
