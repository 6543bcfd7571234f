// The Istio CA's CreateCertificate, sans I/O: ambient/xds/ca_client.h.
#include "ambient/xds/ca_client.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <vector>

#include <google/protobuf/stubs/logging.h>
#include "absl/strings/str_cat.h"
#include "ambient/base/tls.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/trust_bundle.h"
#include "ca.pb.h"

namespace ambient::xds {
namespace {

namespace wire = ::ambient::wire::istio::ca;

constexpr size_t kMaxChain = 16;
constexpr size_t kMaxResponseBytes = 1 << 20;

std::string BioText(BIO* bio) { return std::string(tls::MemBioContents(bio)); }

}  // namespace

absl::StatusOr<CertificateSigningRequest> MakeCsr(const identity::SpiffeId& id) {
  // EVP_PKEY keygen: the same calls on BoringSSL and OpenSSL 3.
  tls::UniquePtr<EVP_PKEY_CTX> kctx(EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr));
  EVP_PKEY* raw_key = nullptr;
  if (!kctx || EVP_PKEY_keygen_init(kctx.get()) != 1 ||
      EVP_PKEY_CTX_set_ec_paramgen_curve_nid(kctx.get(), NID_X9_62_prime256v1) != 1 ||
      EVP_PKEY_keygen(kctx.get(), &raw_key) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot make a P-256 key");
  }
  tls::UniquePtr<EVP_PKEY> key(raw_key);
  tls::UniquePtr<X509_REQ> req(X509_REQ_new());
  tls::UniquePtr<GENERAL_NAMES> names(sk_GENERAL_NAME_new_null());
  tls::UniquePtr<GENERAL_NAME> uri(GENERAL_NAME_new());
  tls::UniquePtr<ASN1_STRING> text(ASN1_IA5STRING_new());
  if (!req || !names || !uri || !text || !X509_REQ_set_version(req.get(), 0) ||
      !X509_REQ_set_pubkey(req.get(), key.get()) ||
      !ASN1_STRING_set(text.get(), id.str().data(), static_cast<int>(id.str().size()))) {
    return absl::InternalError("cannot build the CSR");
  }
  GENERAL_NAME_set0_value(uri.get(), GEN_URI, text.release());
  if (!sk_GENERAL_NAME_push(names.get(), uri.get())) return absl::InternalError("CSR SAN");
  uri.release();
  tls::UniquePtr<X509_EXTENSION> san(X509V3_EXT_i2d(NID_subject_alt_name, /*crit=*/1, names.get()));
  tls::UniquePtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
  if (!san || !exts || !sk_X509_EXTENSION_push(exts.get(), san.get())) {
    return absl::InternalError("cannot build the CSR's SAN extension");
  }
  san.release();  // owned by exts
  tls::UniquePtr<BIO> csr_bio(BIO_new(BIO_s_mem()));
  tls::UniquePtr<BIO> key_bio(BIO_new(BIO_s_mem()));
  if (!X509_REQ_add_extensions(req.get(), exts.get()) ||
      !X509_REQ_sign(req.get(), key.get(), EVP_sha256()) || !csr_bio || !key_bio ||
      !PEM_write_bio_X509_REQ(csr_bio.get(), req.get()) ||
      !PEM_write_bio_PKCS8PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                     nullptr)) {
    return absl::InternalError("cannot sign or write the CSR");
  }
  return CertificateSigningRequest{id, BioText(csr_bio.get()), BioText(key_bio.get())};
}

std::string EncodeCertificateRequest(const CertificateSigningRequest& csr, absl::Duration validity,
                                     bool impersonate) {
  wire::IstioCertificateRequest req;
  req.set_csr(csr.csr_pem);
  req.set_validity_duration(std::max<int64_t>(1, absl::ToInt64Seconds(validity)));
  if (impersonate) {
    (*req.mutable_metadata()->mutable_fields())["ImpersonatedIdentity"].set_string_value(
        csr.id.str());
  }
  return req.SerializeAsString();
}

absl::StatusOr<IssuedCertificate> DecodeCertificateResponse(absl::string_view bytes,
                                                            const CertificateSigningRequest& csr,
                                                            int64_t now_unix) {
  // Not UTF-8 where the schema says string: the parse fails, and protobuf
  // would also log it to the host's stderr; the library prints nothing.
  google::protobuf::LogSilencer quiet;
  wire::IstioCertificateResponse res;
  if (bytes.size() > kMaxResponseBytes ||
      !res.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError("CA response does not decode");
  }
  const int n = res.cert_chain_size();
  if (n == 0) return absl::InvalidArgumentError("CA response carries no certificate");
  if (n < 2) {
    return absl::InvalidArgumentError("CA response carries no root after the leaf");
  }
  if (static_cast<size_t>(n) > kMaxChain) {
    return absl::InvalidArgumentError(absl::StrCat("CA chain of ", n, " certificates is too long"));
  }
  std::string chain;  // leaf + intermediates
  for (int i = 0; i + 1 < n; ++i) {
    chain += res.cert_chain(i);
    if (chain.empty() || chain.back() != '\n') chain += '\n';
  }
  IssuedCertificate out;
  out.root_pem = res.cert_chain(n - 1);
  absl::StatusOr<std::shared_ptr<const identity::Credentials>> creds =
      identity::Credentials::FromPem(chain, csr.key_pem);
  if (!creds.ok()) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate from the CA for ", csr.id.str(), ": ", creds.status().message()));
  }
  if ((*creds)->id() != csr.id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the CA issued a certificate for ", (*creds)->id().str(), ", asked for ", csr.id.str()));
  }
  absl::StatusOr<std::shared_ptr<const identity::TrustBundle>> root =
      identity::TrustBundle::FromPem(csr.id.trust_domain(), out.root_pem);
  if (!root.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CA's root certificate: ", root.status().message()));
  }
  absl::StatusOr<std::shared_ptr<const identity::TrustBundleSet>> set =
      identity::TrustBundleSet::Create({*root});
  if (!set.ok()) return set.status();
  absl::StatusOr<std::shared_ptr<const identity::SvidVerifier>> verifier =
      identity::SvidVerifier::Create(std::make_shared<identity::TrustBundleSource>(*set),
                                     identity::VerifyPolicy::ExpectIdentities({csr.id}),
                                     [now_unix] { return now_unix; });
  if (!verifier.ok()) return verifier.status();
  absl::StatusOr<identity::SpiffeId> verified = (*verifier)->VerifyPem(chain);
  if (!verified.ok()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the CA's chain for ", csr.id.str(), " does not verify: ", verified.status().message()));
  }
  out.credentials = std::move(*creds);
  return out;
}

}  // namespace ambient::xds
