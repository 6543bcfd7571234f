// Trust bundles: per-trust-domain X.509 authorities, snapshots and the
// swappable source.
#include "ambient/identity/trust_bundle.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
#include "ambient/base/tls.h"
#include "identity/bundle_json.h"
#include "identity/pem.h"

namespace ambient::identity {
namespace {

absl::StatusOr<std::shared_ptr<const TrustBundle>> Build(const TrustDomain& td,
                                                         std::vector<tls::UniquePtr<X509>> certs,
                                                         std::optional<uint64_t> sequence,
                                                         std::optional<int64_t> refresh_hint) {
  tls::UniquePtr<X509_STORE> store(X509_STORE_new());
  if (store == nullptr) return absl::ResourceExhaustedError("out of memory");
  // Every authority is an anchor, self-signed or not (go-spiffe semantics).
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN);
  std::vector<tls::UniquePtr<X509>> unique;
  for (auto& cert : certs) {
    bool seen = false;
    for (const auto& u : unique) seen = seen || X509_cmp(u.get(), cert.get()) == 0;
    if (seen) continue;
    if (!X509_STORE_add_cert(store.get(), cert.get())) {
      internal::ClearErrors();
      return absl::InternalError(
          absl::StrCat("trust bundle for \"", td.name(), "\": cannot add an authority"));
    }
    unique.push_back(std::move(cert));
  }
  return std::make_shared<const TrustBundle>(td, std::move(unique), std::move(store), sequence,
                                             refresh_hint);
}

absl::StatusOr<std::shared_ptr<const TrustBundle>> FromParsed(const TrustDomain& td,
                                                              internal::ParsedBundle parsed) {
  std::vector<tls::UniquePtr<X509>> certs;
  for (size_t i = 0; i < parsed.x509_authorities.size(); ++i) {
    absl::StatusOr<tls::UniquePtr<X509>> cert = internal::ParseCertificate(
        parsed.x509_authorities[i],
        absl::StrCat("bundle JSON for \"", td.name(), "\": x509-svid authority ", i));
    if (!cert.ok()) return cert.status();
    certs.push_back(*std::move(cert));
  }
  return Build(td, std::move(certs), parsed.sequence, parsed.refresh_hint);
}

}  // namespace

TrustBundle::TrustBundle(TrustDomain td, std::vector<tls::UniquePtr<X509>> authorities,
                         tls::UniquePtr<X509_STORE> store, std::optional<uint64_t> sequence,
                         std::optional<int64_t> refresh_hint)
    : trust_domain_(std::move(td)),
      authorities_(std::move(authorities)),
      store_(std::move(store)),
      sequence_(sequence),
      refresh_hint_(refresh_hint) {}

absl::StatusOr<std::shared_ptr<const TrustBundle>> TrustBundle::FromPem(const TrustDomain& td,
                                                                      absl::string_view pem) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  std::string what = absl::StrCat("trust bundle PEM for \"", td.name(), "\"");
  absl::StatusOr<std::vector<internal::PemCertificate>> read =
      internal::ReadPemCertificates(pem, what);
  if (!read.ok()) return read.status();
  if (read->empty()) return absl::InvalidArgumentError(absl::StrCat(what, ": no certificate"));
  std::vector<tls::UniquePtr<X509>> certs;
  for (internal::PemCertificate& c : *read) certs.push_back(std::move(c.cert));
  return Build(td, std::move(certs), std::nullopt, std::nullopt);
}

absl::StatusOr<std::shared_ptr<const TrustBundle>> TrustBundle::FromSpiffeJson(
    const TrustDomain& td, absl::string_view json) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  absl::StatusOr<internal::ParsedBundle> parsed = internal::ParseBundleJson(json);
  if (!parsed.ok()) return Prefixed(absl::StrCat("trust domain \"", td.name(), "\""), parsed.status());
  return FromParsed(td, *std::move(parsed));
}

absl::StatusOr<std::shared_ptr<const TrustBundle>> TrustBundle::FromAuthorities(
    const TrustDomain& td, const std::vector<X509*>& authorities, std::optional<uint64_t> sequence,
    std::optional<int64_t> refresh_hint_seconds) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  std::vector<tls::UniquePtr<X509>> certs;
  for (X509* cert : authorities) {
    if (cert == nullptr) return absl::InvalidArgumentError("trust bundle: null authority");
    X509_up_ref(cert);
    certs.emplace_back(cert);
  }
  return Build(td, std::move(certs), sequence, refresh_hint_seconds);
}

absl::StatusOr<std::shared_ptr<const TrustBundleSet>> TrustBundleSet::Create(
    std::vector<std::shared_ptr<const TrustBundle>> bundles) {
  std::map<std::string, std::shared_ptr<const TrustBundle>, std::less<>> map;
  for (auto& b : bundles) {
    if (b == nullptr) return absl::InvalidArgumentError("trust bundle set: null bundle");
    std::string name = b->trust_domain().name();
    if (!map.emplace(name, std::move(b)).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("trust bundle set: trust domain \"", name, "\" appears twice"));
    }
  }
  return std::make_shared<const TrustBundleSet>(std::move(map));
}

absl::StatusOr<std::shared_ptr<const TrustBundleSet>> TrustBundleSet::FromSpiffeBundleMapJson(
    absl::string_view json) {
  if (absl::Status s = EnsureTlsBackend(); !s.ok()) return s;
  auto parsed = internal::ParseBundleMapJson(json);
  if (!parsed.ok()) return parsed.status();
  std::vector<std::shared_ptr<const TrustBundle>> bundles;
  for (auto& [name, bundle] : *parsed) {
    absl::StatusOr<TrustDomain> td = TrustDomain::Parse(name);
    if (!td.ok()) return Prefixed("bundle map JSON", td.status());
    absl::StatusOr<std::shared_ptr<const TrustBundle>> b = FromParsed(*td, std::move(bundle));
    if (!b.ok()) return b.status();
    bundles.push_back(*std::move(b));
  }
  return Create(std::move(bundles));
}

std::shared_ptr<const TrustBundleSet> TrustBundleSet::Empty() {
  return std::make_shared<const TrustBundleSet>(
      std::map<std::string, std::shared_ptr<const TrustBundle>, std::less<>>());
}

std::shared_ptr<const TrustBundleSet> TrustBundleSet::With(
    std::shared_ptr<const TrustBundle> bundle) const {
  auto map = bundles_;
  if (bundle != nullptr) {
    std::string name = bundle->trust_domain().name();
    map[name] = std::move(bundle);
  }
  return std::make_shared<const TrustBundleSet>(std::move(map));
}

std::shared_ptr<const TrustBundleSet> TrustBundleSet::Without(const TrustDomain& td) const {
  auto map = bundles_;
  map.erase(td.name());
  return std::make_shared<const TrustBundleSet>(std::move(map));
}

const TrustBundle* TrustBundleSet::Find(absl::string_view trust_domain) const {
  auto it = bundles_.find(trust_domain);
  return it == bundles_.end() ? nullptr : it->second.get();
}

TrustBundleSource::TrustBundleSource(std::shared_ptr<const TrustBundleSet> initial)
    : current_(initial != nullptr ? std::move(initial) : TrustBundleSet::Empty()) {}

std::shared_ptr<const TrustBundleSet> TrustBundleSource::Get() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

void TrustBundleSource::Set(std::shared_ptr<const TrustBundleSet> next) {
  if (next == nullptr) next = TrustBundleSet::Empty();
  std::lock_guard<std::mutex> lock(mu_);
  current_.swap(next);
  // The old snapshot (now in `next`) is released after the lock is dropped.
}

void TrustBundleSource::Update(std::shared_ptr<const TrustBundle> bundle) {
  std::lock_guard<std::mutex> lock(mu_);
  current_ = current_->With(std::move(bundle));
}

bool TrustBundleSource::Remove(const TrustDomain& td) {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_->Find(td.name()) == nullptr) return false;
  current_ = current_->Without(td);
  return true;
}

}  // namespace ambient::identity
