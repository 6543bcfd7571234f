// ambient/authz/policy_store.h: the set of policies in force, and the check.
//
// A PolicyStore holds every known Policy by key ("namespace/name"). Updates
// (Replace, Upsert, Remove) build a new immutable snapshot and swap it in;
// checks run against whichever snapshot was current when they started, so
// updates never block or tear a check. All methods are thread-safe.
//
// Which policies apply to a destination workload (as in ztunnel): every
// GLOBAL-scope policy, every NAMESPACE-scope policy of the workload's
// namespace, and the workload's own list of selected policy keys (keys that
// name no known policy are skipped). The decision:
//   1. a matching DENY policy (not dry-run) denies: "explicitly denied by ns/name";
//   2. otherwise, with no ALLOW policy (not dry-run) applying, the connection
//      is allowed;
//   3. otherwise it is allowed if any ALLOW policy matches, else denied:
//      "allow policies exist, but none allowed".
// Dry-run policies never change the decision; the keys of those that matched
// are reported for logging.
#ifndef AMBIENT_AUTHZ_POLICY_STORE_H_
#define AMBIENT_AUTHZ_POLICY_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "ambient/authz/policy.h"

namespace ambient::authz {

// Workload is the destination of a connection, as far as policy cares: its
// namespace (which selects namespace-wide policies and the root namespace's)
// and the keys of the policies that select it. It is the authz layer's own
// projection of runtime::Workload (the directory entry): authz sits below
// runtime and cannot name it, and the C ABI (ambient_authz_check) builds it
// from two arguments with no directory at all.
struct Workload {
  std::string ns;
  std::vector<std::string> policies;  // selected policy keys, "namespace/name"
};

struct Decision {
  bool allowed = true;
  std::string reason;                    // empty when allowed
  std::string policy;                    // key of the deciding policy, if one decided
  std::vector<std::string> dry_run_hits; // keys of dry-run policies that matched
};

class PolicyStore {
 public:
  PolicyStore();
  ~PolicyStore();
  PolicyStore(const PolicyStore&) = delete;
  PolicyStore& operator=(const PolicyStore&) = delete;

  // Replace sets the whole policy set. Two policies with the same key are an
  // InvalidArgument error, and the store is left unchanged.
  absl::Status Replace(std::vector<Policy> policies);
  // Upsert adds `policy` or replaces the one with the same key.
  void Upsert(Policy policy);
  // Remove deletes the policy with `key`; false if there was none.
  bool Remove(absl::string_view key);
  // Apply upserts every policy of `upserts` (a later one replaces an earlier
  // one with the same key), then removes every key of `removals` (unknown keys
  // are skipped), as one update: a check sees all of it or none of it. It
  // builds one snapshot, so a push of N policies costs O(held + N), where N
  // calls to Upsert cost O(held) each (an xDS push, xds::AuthorizationHandler).
  void Apply(std::vector<Policy> upserts, const std::vector<std::string>& removals);
  size_t size() const;
  // All returns a copy of every policy of the current snapshot, in key
  // order ("namespace/name"): what is in force, for an admin page to show.
  std::vector<Policy> All() const;

  // Check decides whether `conn` to `workload` is allowed. Never fails.
  Decision Check(const Workload& workload, const Connection& conn) const;

 private:
  struct Snapshot;
  std::shared_ptr<const Snapshot> Current() const;
  void Swap(std::shared_ptr<const Snapshot> next);

  mutable absl::Mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ambient::authz

#endif  // AMBIENT_AUTHZ_POLICY_STORE_H_
