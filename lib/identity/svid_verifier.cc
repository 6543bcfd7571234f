// X509-SVID verification (SPIFFE X509-SVID §4, §5) on BoringSSL.
#include "ambient/identity/svid_verifier.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "identity/pem.h"

namespace ambient::identity {
namespace {

absl::Status Reject(SvidError e, absl::string_view message) {
  absl::Status s = (e == SvidError::kUnexpectedIdentity || e == SvidError::kTrustDomainNotAllowed)
                       ? absl::PermissionDeniedError(message)
                       : absl::UnauthenticatedError(message);
  return WithDetail(std::move(s), static_cast<int>(e));
}

struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
};

absl::Status PathValidationError(int err, int depth, absl::string_view td) {
  std::string where = absl::StrCat(" (certificate at depth ", depth, ")");
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Reject(SvidError::kExpired, absl::StrCat("X509-SVID: certificate has expired", where));
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Reject(SvidError::kNotYetValid,
                    absl::StrCat("X509-SVID: certificate is not yet valid", where));
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return Reject(SvidError::kUntrusted,
                    absl::StrCat("X509-SVID: no chain to an authority of trust domain \"", td,
                                 "\" (", X509_verify_cert_error_string(err),
                                 "; an intermediate may be missing)", where));
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY:
      return Reject(SvidError::kBadSignature,
                    absl::StrCat("X509-SVID: certificate signature does not verify", where));
    default:
      return Reject(SvidError::kChainInvalid,
                    absl::StrCat("X509-SVID: path validation failed: ",
                                 X509_verify_cert_error_string(err), where));
  }
}

}  // namespace

int64_t SystemUnixClock() { return static_cast<int64_t>(std::time(nullptr)); }

VerifyPolicy VerifyPolicy::ExpectIdentities(std::vector<SpiffeId> ids) {
  VerifyPolicy p;
  p.expected_ids = std::move(ids);
  return p;
}

VerifyPolicy VerifyPolicy::SameTrustDomain(TrustDomain ours) {
  VerifyPolicy p;
  p.allowed_trust_domains.push_back(std::move(ours));
  return p;
}

absl::StatusOr<SpiffeId> LeafSpiffeId(X509* cert) {
  int critical = -1;
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, nullptr)));
  if (names == nullptr) {
    internal::ClearErrors();
    if (critical == -1) {
      return Reject(SvidError::kNoUriSan, "X509-SVID: leaf has no subjectAltName, so no URI SAN");
    }
    return Reject(SvidError::kMalformedCertificate,
                  critical == -2 ? "X509-SVID: leaf has more than one subjectAltName extension"
                                 : "X509-SVID: leaf subjectAltName does not parse");
  }
  const ASN1_STRING* uri = nullptr;
  size_t uris = 0;
  const size_t count = static_cast<size_t>(sk_GENERAL_NAME_num(names.get()));
  for (size_t i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_URI) continue;
    ++uris;
    uri = name->d.uniformResourceIdentifier;
  }
  if (uris == 0) return Reject(SvidError::kNoUriSan, "X509-SVID: leaf has no URI SAN");
  if (uris > 1) {
    return Reject(SvidError::kMultipleUriSans,
                  absl::StrCat("X509-SVID: leaf has ", uris, " URI SANs, exactly one is allowed"));
  }
  absl::string_view text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                         static_cast<size_t>(ASN1_STRING_length(uri)));
  absl::StatusOr<SpiffeId> id = SpiffeId::Parse(text);
  if (!id.ok()) {
    return Reject(SvidError::kInvalidSpiffeId,
                  absl::StrCat("X509-SVID: URI SAN is not a SPIFFE ID: ", id.status().message()));
  }
  return id;
}

absl::StatusOr<SpiffeId> VerifyX509Svid(absl::Span<X509* const> chain,
                                        const TrustBundleSet& bundles, const VerifyPolicy& policy,
                                        int64_t now) {
  if (chain.empty() || chain[0] == nullptr) {
    return Reject(SvidError::kEmptyChain, "X509-SVID: no certificate presented");
  }
  X509* leaf = chain[0];
  uint32_t flags = X509_get_extension_flags(leaf);
  if (flags & EXFLAG_INVALID) {
    internal::ClearErrors();
    return Reject(SvidError::kMalformedCertificate,
                  "X509-SVID: leaf has malformed or duplicated extensions");
  }
  absl::StatusOr<SpiffeId> id = LeafSpiffeId(leaf);
  if (!id.ok()) return id.status();
  if (id->path().empty()) {
    return Reject(SvidError::kLeafIdWithoutPath,
                  absl::StrCat("X509-SVID: leaf SPIFFE ID \"", id->str(),
                               "\" has no path (a trust domain's ID cannot authenticate)"));
  }
  if (flags & EXFLAG_CA) {
    return Reject(SvidError::kLeafIsCa, "X509-SVID: leaf certificate has the CA flag set");
  }
  if (!(flags & EXFLAG_KUSAGE)) {
    return Reject(SvidError::kNoKeyUsage, "X509-SVID: leaf has no keyUsage extension");
  }
  uint32_t usage = X509_get_key_usage(leaf);
  if (usage & KU_KEY_CERT_SIGN) {
    return Reject(SvidError::kLeafKeyCertSign, "X509-SVID: leaf keyUsage has keyCertSign");
  }
  if (usage & KU_CRL_SIGN) {
    return Reject(SvidError::kLeafCrlSign, "X509-SVID: leaf keyUsage has cRLSign");
  }
  if (!(usage & KU_DIGITAL_SIGNATURE)) {
    return Reject(SvidError::kNoDigitalSignature,
                  "X509-SVID: leaf keyUsage lacks digitalSignature");
  }
  absl::string_view td = id->trust_domain_name();
  if (!policy.allowed_trust_domains.empty()) {
    bool allowed = false;
    for (const TrustDomain& t : policy.allowed_trust_domains) allowed = allowed || t.name() == td;
    if (!allowed) {
      return Reject(SvidError::kTrustDomainNotAllowed,
                    absl::StrCat("peer \"", id->str(), "\" is in trust domain \"", td,
                                 "\", which is not accepted here"));
    }
  }
  const TrustBundle* bundle = bundles.Find(td);
  if (bundle == nullptr) {
    return Reject(SvidError::kNoBundle,
                  absl::StrCat("X509-SVID: no trust bundle for trust domain \"", td, "\""));
  }
  tls::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  if (untrusted == nullptr) return absl::ResourceExhaustedError("out of memory");
  for (size_t i = 1; i < chain.size(); ++i) {
    if (chain[i] == nullptr || !sk_X509_push(untrusted.get(), chain[i])) {
      return absl::ResourceExhaustedError("out of memory");
    }
    X509_up_ref(chain[i]);  // the stack owns one reference (freed with it)
  }
  // verify_at validates the path at time `t`: OK, or the error and depth.
  auto verify_at = [&](int64_t t, int* err, int* depth) -> absl::Status {
    tls::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    if (ctx == nullptr || !X509_STORE_CTX_init(ctx.get(), bundle->store(), leaf, untrusted.get())) {
      internal::ClearErrors();
      return absl::ResourceExhaustedError("out of memory");
    }
    X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(t));
    *err = X509_V_OK;
    if (X509_verify_cert(ctx.get()) != 1) {
      *err = X509_STORE_CTX_get_error(ctx.get());
      *depth = X509_STORE_CTX_get_error_depth(ctx.get());
      internal::ClearErrors();
    }
    return absl::OkStatus();
  };
  int err = X509_V_OK;
  int depth = 0;
  if (absl::Status st = verify_at(now, &err, &depth); !st.ok()) return st;
  if (err == X509_V_ERR_CERT_HAS_EXPIRED) {
    // The library counts notAfter itself as expired; RFC 5280 4.1.2.5 puts
    // it inside the validity period (as go-spiffe and Go do). A path valid
    // one second earlier has every notAfter >= now and every notBefore <
    // now, so it is valid now.
    int err2 = X509_V_OK;
    int depth2 = 0;
    if (absl::Status st = verify_at(now - 1, &err2, &depth2); !st.ok()) return st;
    if (err2 == X509_V_OK) err = X509_V_OK;
  }
  if (err != X509_V_OK) return PathValidationError(err, depth, td);
  if (!policy.expected_ids.empty()) {
    bool expected = false;
    for (const SpiffeId& e : policy.expected_ids) expected = expected || e == *id;
    if (!expected) {
      std::string list;
      for (const SpiffeId& e : policy.expected_ids) {
        absl::StrAppend(&list, list.empty() ? "" : ", ", e.str());
      }
      return Reject(SvidError::kUnexpectedIdentity,
                    absl::StrCat("peer identity \"", id->str(), "\" is not one of the expected: ",
                                 list));
    }
  }
  return id;
}

absl::StatusOr<std::shared_ptr<const SvidVerifier>> SvidVerifier::Create(
    std::shared_ptr<TrustBundleSource> bundles, VerifyPolicy policy, UnixClock clock) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  if (bundles == nullptr) return absl::InvalidArgumentError("SvidVerifier: null bundle source");
  return std::make_shared<const SvidVerifier>(std::move(bundles), std::move(policy),
                                              std::move(clock));
}

absl::StatusOr<SpiffeId> SvidVerifier::Verify(absl::Span<X509* const> chain) const {
  std::shared_ptr<const TrustBundleSet> snapshot = bundles_->Get();
  return VerifyX509Svid(chain, *snapshot, policy_, Now());
}

absl::StatusOr<SpiffeId> SvidVerifier::VerifyDer(absl::Span<const absl::string_view> chain) const {
  if (chain.empty()) return Reject(SvidError::kEmptyChain, "X509-SVID: no certificate presented");
  std::vector<tls::UniquePtr<X509>> owned;
  std::vector<X509*> certs;
  owned.reserve(chain.size());
  certs.reserve(chain.size());
  for (size_t i = 0; i < chain.size(); ++i) {
    absl::StatusOr<tls::UniquePtr<X509>> cert = internal::ParseCertificate(chain[i], "");
    if (!cert.ok()) {
      return Reject(SvidError::kMalformedCertificate,
                    absl::StrCat("X509-SVID: certificate at depth ", i, " does not parse"));
    }
    certs.push_back(cert->get());
    owned.push_back(*std::move(cert));
  }
  return Verify(certs);
}

absl::StatusOr<SpiffeId> SvidVerifier::VerifyPem(absl::string_view pem) const {
  absl::StatusOr<std::vector<internal::PemCertificate>> read =
      internal::ReadPemCertificates(pem, "certificate chain PEM");
  if (!read.ok()) {
    return WithDetail(Prefixed("X509-SVID", read.status()),
                      static_cast<int>(SvidError::kMalformedCertificate));
  }
  std::vector<X509*> certs;  // empty: VerifyX509Svid's kEmptyChain
  for (const internal::PemCertificate& c : *read) certs.push_back(c.cert.get());
  return Verify(certs);
}

}  // namespace ambient::identity
