#include "ambient/authz/policy_store.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"

namespace ambient::authz {

struct PolicyStore::Snapshot {
  // Owns the policies; the indexes below point into it.
  absl::flat_hash_map<std::string, std::shared_ptr<const Policy>> by_key;
  std::vector<const Policy*> global;
  absl::flat_hash_map<std::string, std::vector<const Policy*>> by_namespace;

  static std::shared_ptr<const Snapshot> Build(
      absl::flat_hash_map<std::string, std::shared_ptr<const Policy>> policies) {
    auto s = std::make_shared<Snapshot>();
    s->by_key = std::move(policies);
    for (const auto& [key, p] : s->by_key) {
      if (p->scope == Scope::kGlobal) s->global.push_back(p.get());
      if (p->scope == Scope::kNamespace) s->by_namespace[p->ns].push_back(p.get());
    }
    return s;
  }
};

PolicyStore::PolicyStore() : snapshot_(Snapshot::Build({})) {}
PolicyStore::~PolicyStore() = default;

std::shared_ptr<const PolicyStore::Snapshot> PolicyStore::Current() const {
  absl::MutexLock lock(&mu_);
  return snapshot_;
}

void PolicyStore::Swap(std::shared_ptr<const Snapshot> next) {
  std::shared_ptr<const Snapshot> old;
  {
    absl::MutexLock lock(&mu_);
    old = std::exchange(snapshot_, std::move(next));
  }
  // `old` is released outside the lock.
}

absl::Status PolicyStore::Replace(std::vector<Policy> policies) {
  absl::flat_hash_map<std::string, std::shared_ptr<const Policy>> map;
  map.reserve(policies.size());
  for (Policy& p : policies) {
    std::string key = p.key();
    if (map.contains(key)) {
      return absl::InvalidArgumentError(absl::StrCat("policy ", key, " is given twice"));
    }
    map.emplace(std::move(key), std::make_shared<const Policy>(std::move(p)));
  }
  Swap(Snapshot::Build(std::move(map)));
  return absl::OkStatus();
}

void PolicyStore::Upsert(Policy policy) {
  // Writers serialise on the snapshot they copy: take it under the lock, build
  // outside, and retry if someone swapped meanwhile.
  auto shared = std::make_shared<const Policy>(std::move(policy));
  std::string key = shared->key();
  for (;;) {
    auto cur = Current();
    auto map = cur->by_key;
    map[key] = shared;
    auto next = Snapshot::Build(std::move(map));
    absl::MutexLock lock(&mu_);
    if (snapshot_ == cur) {
      snapshot_ = std::move(next);
      return;
    }
  }
}

bool PolicyStore::Remove(absl::string_view key) {
  for (;;) {
    auto cur = Current();
    if (!cur->by_key.contains(key)) return false;
    auto map = cur->by_key;
    map.erase(key);
    auto next = Snapshot::Build(std::move(map));
    absl::MutexLock lock(&mu_);
    if (snapshot_ == cur) {
      snapshot_ = std::move(next);
      return true;
    }
  }
}

void PolicyStore::Apply(std::vector<Policy> upserts, const std::vector<std::string>& removals) {
  std::vector<std::pair<std::string, std::shared_ptr<const Policy>>> shared;
  shared.reserve(upserts.size());
  for (Policy& p : upserts) {
    std::string key = p.key();
    shared.emplace_back(std::move(key), std::make_shared<const Policy>(std::move(p)));
  }
  for (;;) {  // as Upsert: build outside the lock, retry if someone swapped meanwhile
    auto cur = Current();
    auto map = cur->by_key;
    for (const auto& [key, p] : shared) map[key] = p;
    for (const std::string& key : removals) map.erase(key);
    auto next = Snapshot::Build(std::move(map));
    absl::MutexLock lock(&mu_);
    if (snapshot_ == cur) {
      snapshot_ = std::move(next);
      return;
    }
  }
}

size_t PolicyStore::size() const { return Current()->by_key.size(); }

std::vector<Policy> PolicyStore::All() const {
  auto snap = Current();
  std::vector<const Policy*> sorted;
  sorted.reserve(snap->by_key.size());
  for (const auto& [key, p] : snap->by_key) sorted.push_back(p.get());
  std::sort(sorted.begin(), sorted.end(),
            [](const Policy* a, const Policy* b) { return a->key() < b->key(); });
  std::vector<Policy> out;
  out.reserve(sorted.size());
  for (const Policy* p : sorted) out.push_back(*p);
  return out;
}

Decision PolicyStore::Check(const Workload& workload, const Connection& conn) const {
  auto snap = Current();

  // The applying policies: global, the workload's namespace, then its own
  // selection (skipping those already applying by scope).
  absl::InlinedVector<const Policy*, 16> applying(snap->global.begin(), snap->global.end());
  if (auto it = snap->by_namespace.find(workload.ns); it != snap->by_namespace.end()) {
    applying.insert(applying.end(), it->second.begin(), it->second.end());
  }
  for (const std::string& key : workload.policies) {
    auto it = snap->by_key.find(key);
    if (it == snap->by_key.end()) continue;
    const Policy* p = it->second.get();
    if (p->scope == Scope::kGlobal || (p->scope == Scope::kNamespace && p->ns == workload.ns)) {
      continue;
    }
    applying.push_back(p);
  }

  const std::string principal = PrincipalOf(conn);
  Decision d;
  for (const Policy* p : applying) {
    if (p->dry_run) {
      if (p->Matches(conn, principal)) d.dry_run_hits.push_back(p->key());
    } else if (p->action == Action::kDeny && p->Matches(conn, principal)) {
      d.allowed = false;
      d.policy = p->key();
      d.reason = absl::StrCat("explicitly denied by ", d.policy);
      return d;
    }
  }
  bool have_allow = false;
  for (const Policy* p : applying) {
    if (p->dry_run || p->action != Action::kAllow) continue;
    have_allow = true;
    if (p->Matches(conn, principal)) {
      d.policy = p->key();
      return d;
    }
  }
  if (have_allow) {
    d.allowed = false;
    d.reason = "allow policies exist, but none allowed";
  }
  return d;
}

}  // namespace ambient::authz
