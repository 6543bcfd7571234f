// ambient/xds/cert_manager.h: the workload certificates a node proxy holds,
// fetched from the Istio CA and renewed as ztunnel renews them, sans I/O.
//
// Object model. A CertificateManager keeps one entry per SPIFFE ID that some
// user (a captured pod, a connection about to start) needs. Acquire counts a
// user in and hands back the entry's CredentialHolder, empty until the first
// certificate arrives; Release counts one out, and the entry (with anything
// queued or in flight for it) is dropped with its last user. The holder is
// the one TLS contexts read at each handshake (identity/credentials.h), so a
// renewal reaches new handshakes while established connections keep the
// certificate they started with.
//
// The manager never talks to the CA. StartFetches returns the requests to
// send now (a fresh P-256 key and CSR per request; the key never leaves the
// process), serialized as the IstioCertificateRequest that
// /istio.v1.auth.IstioCertificateService/CreateCertificate takes; the host
// sends each (a grpc::Channel unary call, with its bearer and clusterid
// headers) and hands the answer, or the call's error, to OnFetchDone. The
// answer is checked before use (ca_client.h DecodeCertificateResponse: the
// key is ours, the leaf names exactly the requested identity, the chain
// verifies up to its own root). Time comes in as arguments; NextDeadline
// says when StartFetches has work again.
//
// Scheduling follows ztunnel's secret manager (src/identity/manager.rs):
// - at most `concurrency` (8) fetches in flight; the queue is ordered by
//   priority (kRealtime, then kWarmup, then kBackground) and then by due
//   time; an Acquire with a higher priority raises a queued entry's;
// - a new identity is due at once; a certificate is renewed (kBackground)
//   half-way through its validity, not_before + (not_after - not_before) / 2;
// - a failed fetch is retried after a per-identity exponential backoff
//   (first 1 s, doubling, at most 150 s, each delay randomized by +-20 %),
//   reset by a success; while the previous certificate is still valid it
//   stays in the holder and the retry comes no later than its expiry; an
//   expired certificate is taken out of the holder (handshakes then fail
//   with "no credentials" instead of presenting it).
//
// Threads: one thread at a time (the host's loop). The holders it returns
// may be read from any thread.
#ifndef AMBIENT_XDS_CERT_MANAGER_H_
#define AMBIENT_XDS_CERT_MANAGER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/xds/ca_client.h"

namespace ambient::xds {

// Priority of a fetch, lowest first (ztunnel's order).
enum class CertPriority {
  kBackground,  // renewals
  kWarmup,      // a pod was captured: fetch before its first connection
  kRealtime,    // a connection is waiting for this certificate
};

struct CertManagerOptions {
  // Fetches in flight at most (ztunnel: 8). At least 1.
  size_t concurrency = 8;
  // validity_duration asked of the CA (ztunnel's SECRET_TTL, 24 h).
  absl::Duration validity = absl::Hours(24);
  // Send ImpersonatedIdentity metadata (a node proxy asking for its pods).
  bool impersonate = true;
  // Retry backoff after a failed fetch.
  absl::Duration backoff_first = absl::Seconds(1);
  absl::Duration backoff_max = absl::Seconds(150);
  double backoff_jitter = 0.2;  // each delay times a random factor in [1-j, 1+j]
  // Seed of the jitter's generator (tests); 0: a random seed.
  uint64_t seed = 0;
};

// One request to send to the CA.
struct CertFetch {
  uint64_t fetch = 0;  // hand back to OnFetchDone
  identity::SpiffeId id;
  std::string request;  // serialized IstioCertificateRequest
};

// What the manager knows about one identity (for an admin page).
struct CertStatus {
  enum class State { kInitializing, kAvailable, kUnavailable };
  explicit CertStatus(identity::SpiffeId i) : id(std::move(i)) {}
  identity::SpiffeId id;
  State state = State::kInitializing;
  size_t users = 0;
  bool in_flight = false;
  CertPriority priority = CertPriority::kBackground;  // of the queued or running fetch
  std::optional<absl::Time> next_fetch;  // when queued
  int64_t not_before = 0;                // of the certificate held (Unix s), 0 if none
  int64_t not_after = 0;
  uint32_t failures = 0;   // fetches failed in a row
  std::string last_error;  // of the last failed fetch
  std::string root_pem;    // the workload trust root the CA's chain ended with
  // The certificate held (chain and key; null if none), e.g. for an admin
  // page's config dump.
  std::shared_ptr<const identity::Credentials> credentials;
};

struct CertManagerStats {
  uint64_t fetches_started = 0;
  uint64_t fetches_ok = 0;
  uint64_t fetches_failed = 0;
  uint64_t dropped_results = 0;  // answers for identities nobody needs any more
};

class CertificateManager {
 public:
  // Errors of the constructor: none; a concurrency of 0 counts as 1.
  explicit CertificateManager(CertManagerOptions options = {});
  CertificateManager(const CertificateManager&) = delete;
  CertificateManager& operator=(const CertificateManager&) = delete;

  // Acquire counts one user of `id` in and returns the holder of its
  // certificate (empty until the first fetch succeeds; the same holder for
  // every user). A new identity is queued due at `now` with `priority`; a
  // queued one is raised to `priority` if that is higher.
  std::shared_ptr<identity::CredentialHolder> Acquire(const identity::SpiffeId& id,
                                                      CertPriority priority, absl::Time now);
  // Release counts one user of `id` out; the last one drops the entry (its
  // queued fetch is forgotten, an answer in flight is ignored). False if
  // `id` had no user.
  bool Release(const identity::SpiffeId& id);

  // StartFetches returns the fetches due at `now`, as many as the free
  // in-flight slots allow, highest priority first. A CSR that cannot be
  // made (the TLS library failing) counts as a failed fetch.
  std::vector<CertFetch> StartFetches(absl::Time now);
  // OnFetchDone takes the CA's answer (the serialized
  // IstioCertificateResponse) or the call's error for `fetch`. A good
  // certificate goes into the holder and is renewed at half its validity; a
  // bad answer or an error schedules a retry (see above). The returned
  // status says what happened to this answer: OK, or the reason it was not
  // used (also kept in CertStatus::last_error). NotFound for an unknown
  // `fetch` or one whose identity was released meanwhile.
  absl::Status OnFetchDone(uint64_t fetch, absl::StatusOr<std::string> response, absl::Time now);

  // NextDeadline is when StartFetches next has something to start: the
  // earliest due time of a queued identity (at or before now: call it now),
  // or InfiniteFuture when nothing is queued or every slot is busy (an
  // OnFetchDone frees one).
  absl::Time NextDeadline() const;

  // Status lists every identity, in ID order.
  std::vector<CertStatus> Status() const;
  const CertManagerStats& stats() const { return stats_; }
  size_t in_flight() const { return in_flight_.size(); }

 private:
  struct Entry {
    explicit Entry(identity::SpiffeId i) : id(std::move(i)) {}
    identity::SpiffeId id;
    std::shared_ptr<identity::CredentialHolder> holder;
    size_t users = 0;
    bool queued = false;
    CertPriority priority = CertPriority::kBackground;
    absl::Time due = absl::InfiniteFuture();
    std::optional<uint64_t> fetch;  // in flight
    absl::Duration backoff;         // next retry delay; zero: not failing
    uint32_t failures = 0;
    std::string last_error;
    std::string root_pem;
    std::shared_ptr<const identity::Credentials> held;
  };
  struct Flight {
    std::string key;  // Entry key
    CertificateSigningRequest csr;
  };

  void Queue(Entry& e, CertPriority priority, absl::Time due);
  void Failed(Entry& e, const absl::Status& why, absl::Time now);
  Entry* Best(absl::Time now);
  absl::Duration Jitter(absl::Duration d);

  CertManagerOptions options_;
  std::map<std::string, Entry> entries_;  // by SPIFFE ID text
  std::map<uint64_t, Flight> in_flight_;
  uint64_t next_fetch_ = 1;
  std::mt19937_64 rng_;
  CertManagerStats stats_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_CERT_MANAGER_H_
