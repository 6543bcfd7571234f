#include "hbone/test_pki.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "ambient/base/tls.h"
#include "ambient/hbone/connection.h"

namespace ambient::hbone::testing {
namespace {

using test_support::CertSpec;
using test_support::Issue;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "HBONE test PKI: %s failed\n", what);
  std::abort();
}

// Valid from an hour ago for a day, on the real clock (the HBONE code under
// test checks certificates against the time it runs at).
CertSpec AroundNow(CertSpec spec) {
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  spec.not_before = now - 3600;
  spec.not_after = now + 86400;
  return spec;
}

}  // namespace

TestCa::TestCa() {
  CertSpec spec;
  spec.common_name = "ambient test CA";
  spec.is_ca = true;
  spec.key_usage = "critical,keyCertSign,cRLSign";
  ca_ = Issue(AroundNow(spec));
}

KeyAndCert TestCa::Leaf(const std::string& spiffe_id) const {
  CertSpec spec;
  spec.common_name = "ambient test leaf";
  spec.uri_sans = {spiffe_id};
  spec.key_usage = "critical,digitalSignature,keyEncipherment";
  spec.ext_key_usage = "serverAuth,clientAuth";
  spec.serial = next_serial_++;
  return Issue(AroundNow(spec), &ca_);
}

tls::UniquePtr<SSL_CTX> TestCa::Context(const KeyAndCert& leaf, bool server) const {
  tls::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  Check(ctx != nullptr, "SSL_CTX_new");
  Check(SSL_CTX_use_certificate(ctx.get(), leaf.cert.get()) == 1, "use cert");
  Check(SSL_CTX_use_PrivateKey(ctx.get(), leaf.key.get()) == 1, "use key");
  Check(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), ca_.cert.get()) == 1, "store");
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  absl::Status st = server ? PrepareServerContext(ctx.get()) : PrepareClientContext(ctx.get());
  Check(st.ok(), "prepare");
  return ctx;
}

std::string TestCa::CaPem() const { return ca_.CertPem(); }
std::string TestCa::CertPem(const KeyAndCert& kc) { return kc.CertPem(); }
std::string TestCa::KeyPem(const KeyAndCert& kc) { return kc.KeyPem(); }

}  // namespace ambient::hbone::testing
