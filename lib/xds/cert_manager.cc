// The certificate manager's scheduling (see ambient/xds/cert_manager.h).
#include "ambient/xds/cert_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ambient::xds {

CertificateManager::CertificateManager(CertManagerOptions options)
    : options_(std::move(options)),
      rng_(options_.seed != 0 ? options_.seed : std::random_device{}()) {
  if (options_.concurrency == 0) options_.concurrency = 1;
  if (options_.backoff_first <= absl::ZeroDuration()) options_.backoff_first = absl::Seconds(1);
  if (options_.backoff_max < options_.backoff_first) options_.backoff_max = options_.backoff_first;
  options_.backoff_jitter = std::clamp(options_.backoff_jitter, 0.0, 0.9);
}

std::shared_ptr<identity::CredentialHolder> CertificateManager::Acquire(
    const identity::SpiffeId& id, CertPriority priority, absl::Time now) {
  auto [it, fresh] = entries_.try_emplace(id.str(), id);
  Entry& e = it->second;
  ++e.users;
  if (fresh) {
    e.holder = std::make_shared<identity::CredentialHolder>();
    Queue(e, priority, now);
  } else if (e.queued && priority > e.priority && !e.held) {
    // Someone now waits for a certificate that does not exist yet: move it
    // up (and due now, as ztunnel's push_increase does for non-background
    // priorities), but not ahead of a failure's backoff.
    e.priority = priority;
    if (e.failures == 0) e.due = std::min(e.due, now);
  }
  return e.holder;
}

bool CertificateManager::Release(const identity::SpiffeId& id) {
  auto it = entries_.find(id.str());
  if (it == entries_.end() || it->second.users == 0) return false;
  if (--it->second.users > 0) return true;
  // The last user: forget it. An answer still in flight finds no entry and
  // is dropped (its slot is freed when it arrives).
  entries_.erase(it);
  return true;
}

void CertificateManager::Queue(Entry& e, CertPriority priority, absl::Time due) {
  e.queued = true;
  e.priority = priority;
  e.due = due;
}

CertificateManager::Entry* CertificateManager::Best(absl::Time now) {
  Entry* best = nullptr;
  for (auto& [key, e] : entries_) {
    if (!e.queued || e.fetch || e.due > now) continue;
    if (best == nullptr || e.priority > best->priority ||
        (e.priority == best->priority && e.due < best->due)) {
      best = &e;
    }
  }
  return best;
}

std::vector<CertFetch> CertificateManager::StartFetches(absl::Time now) {
  std::vector<CertFetch> out;
  while (in_flight_.size() < options_.concurrency) {
    Entry* e = Best(now);
    if (e == nullptr) break;
    e->queued = false;
    absl::StatusOr<CertificateSigningRequest> csr = MakeCsr(e->id);
    if (!csr.ok()) {
      Failed(*e, csr.status(), now);
      ++stats_.fetches_failed;
      continue;
    }
    uint64_t fetch = next_fetch_++;
    std::string request = EncodeCertificateRequest(*csr, options_.validity, options_.impersonate);
    e->fetch = fetch;
    in_flight_.emplace(fetch, Flight{e->id.str(), *std::move(csr)});
    out.push_back(CertFetch{fetch, e->id, std::move(request)});
    ++stats_.fetches_started;
  }
  return out;
}

absl::Duration CertificateManager::Jitter(absl::Duration d) {
  std::uniform_real_distribution<double> f(1.0 - options_.backoff_jitter,
                                           1.0 + options_.backoff_jitter);
  return d * f(rng_);
}

void CertificateManager::Failed(Entry& e, const absl::Status& why, absl::Time now) {
  ++e.failures;
  e.last_error = std::string(why.message());
  e.backoff = e.backoff == absl::ZeroDuration()
                  ? options_.backoff_first
                  : std::min(e.backoff * 2, options_.backoff_max);
  absl::Time retry = now + Jitter(e.backoff);
  if (e.held) {
    absl::Time expiry = absl::FromUnixSeconds(e.held->not_after());
    if (now > expiry) {
      // Expired (notAfter itself is still inside the validity, RFC 5280
      // 4.1.2.5): no longer presented.
      e.held = nullptr;
      e.holder->Set(nullptr);
    } else if (expiry > now) {
      retry = std::min(retry, expiry);
    }
  }
  // A retry keeps the priority it had: a pod still waiting stays ahead of
  // renewals.
  Queue(e, e.held ? CertPriority::kBackground : e.priority, retry);
}

absl::Status CertificateManager::OnFetchDone(uint64_t fetch,
                                             absl::StatusOr<std::string> response,
                                             absl::Time now) {
  auto f = in_flight_.find(fetch);
  if (f == in_flight_.end()) return absl::NotFoundError(absl::StrCat("no fetch ", fetch));
  Flight flight = std::move(f->second);
  in_flight_.erase(f);
  auto it = entries_.find(flight.key);
  if (it == entries_.end() || it->second.fetch != fetch) {
    ++stats_.dropped_results;
    return absl::NotFoundError(
        absl::StrCat("certificate for ", flight.key, " arrived after its last user went"));
  }
  Entry& e = it->second;
  e.fetch.reset();
  absl::StatusOr<IssuedCertificate> issued =
      response.ok() ? DecodeCertificateResponse(*response, flight.csr, absl::ToUnixSeconds(now))
                    : absl::StatusOr<IssuedCertificate>(response.status());
  if (!issued.ok()) {
    absl::Status why = issued.status();
    if (!response.ok()) {
      why = absl::Status(why.code(), absl::StrCat("CA call failed: ", why.message()));
    }
    ++stats_.fetches_failed;
    Failed(e, why, now);
    return why;
  }
  ++stats_.fetches_ok;
  e.held = issued->credentials;
  e.root_pem = std::move(issued->root_pem);
  e.holder->Set(e.held);
  e.failures = 0;
  e.backoff = absl::ZeroDuration();
  e.last_error.clear();
  // Renew half-way through the validity; a certificate whose half-life has
  // already passed (a CA clock ahead of ours, a very short lifetime) is
  // renewed no sooner than one backoff step from now, so a CA that keeps
  // issuing such certificates is not asked in a loop.
  absl::Time refresh = absl::FromUnixSeconds(e.held->refresh_at());
  if (refresh <= now) refresh = now + options_.backoff_first;
  Queue(e, CertPriority::kBackground, refresh);
  return absl::OkStatus();
}

absl::Time CertificateManager::NextDeadline() const {
  if (in_flight_.size() >= options_.concurrency) return absl::InfiniteFuture();
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [key, e] : entries_) {
    if (e.queued && !e.fetch) next = std::min(next, e.due);
  }
  return next;
}

std::vector<CertStatus> CertificateManager::Status() const {
  std::vector<CertStatus> out;
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) {
    CertStatus s(e.id);
    s.state = e.held            ? CertStatus::State::kAvailable
              : e.failures > 0 ? CertStatus::State::kUnavailable
                               : CertStatus::State::kInitializing;
    s.users = e.users;
    s.in_flight = e.fetch.has_value();
    s.priority = e.priority;
    if (e.queued) s.next_fetch = e.due;
    if (e.held) {
      s.not_before = e.held->not_before();
      s.not_after = e.held->not_after();
    }
    s.failures = e.failures;
    s.last_error = e.last_error;
    s.root_pem = e.root_pem;
    s.credentials = e.held;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace ambient::xds
