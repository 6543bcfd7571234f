#include "ambient/hbone/pool.h"

#include <algorithm>
#include <utility>

namespace ambient::hbone {

PoolKey PoolKey::Make(std::optional<identity::SpiffeId> identity,
                      std::vector<identity::SpiffeId> expected_identities, SocketAddress via,
                      std::optional<IpAddress> source_ip) {
  PoolKey k;
  k.identity = std::move(identity);
  k.expected_identities = std::move(expected_identities);
  std::sort(k.expected_identities.begin(), k.expected_identities.end());
  k.via = via;
  k.source_ip = source_ip;
  return k;
}

Pool::Pool(PoolOptions options) : opts_(options) {}

uint32_t Pool::LimitOf(const Conn& c) const {
  if (opts_.max_streams_per_connection != 0) {
    return std::min(c.limit, opts_.max_streams_per_connection);
  }
  return c.limit;
}

void Pool::SetIdle(ConnId id, Conn& c, absl::Time since) {
  ClearIdle(id, c);
  c.idle_since = since;
  idle_.emplace(since + opts_.idle_timeout, id);
}

void Pool::ClearIdle(ConnId id, Conn& c) {
  if (c.idle_since != absl::InfiniteFuture()) {
    idle_.erase({c.idle_since + opts_.idle_timeout, id});
    c.idle_since = absl::InfiniteFuture();
  }
}

void Pool::Take(ConnId id) {
  Conn& c = conns_.at(id);
  ++c.streams;
  ClearIdle(id, c);
}

Pool::Acquired Pool::Acquire(const PoolKey& key, absl::Time now) {
  (void)now;
  Entry& e = entries_[key];
  Acquired a;
  for (ConnId id : e.conns) {
    if (HasRoom(conns_.at(id))) {
      Take(id);
      a.kind = Acquired::Kind::kUse;
      a.conn = id;
      return a;
    }
  }
  a.waiter = ++next_waiter_;
  e.waiters.push_back(a.waiter);
  waiter_keys_.emplace(a.waiter, key);
  if (e.dialing) {
    a.kind = Acquired::Kind::kWait;
  } else {
    e.dialing = true;
    a.kind = Acquired::Kind::kDial;
  }
  return a;
}

void Pool::Cancel(WaiterId waiter) {
  auto it = waiter_keys_.find(waiter);
  if (it == waiter_keys_.end()) return;
  auto e = entries_.find(it->second);
  waiter_keys_.erase(it);
  if (e == entries_.end()) return;
  std::deque<WaiterId>& w = e->second.waiters;
  w.erase(std::remove(w.begin(), w.end(), waiter), w.end());
  EraseIfUnused(e->first);
}

Pool::Served Pool::Serve(const PoolKey& key) {
  Served out;
  auto it = entries_.find(key);
  if (it == entries_.end()) return out;
  Entry& e = it->second;
  while (!e.waiters.empty()) {
    ConnId chosen = 0;
    bool found = false;
    for (ConnId id : e.conns) {
      if (HasRoom(conns_.at(id))) {
        chosen = id;
        found = true;
        break;
      }
    }
    if (!found) break;
    WaiterId w = e.waiters.front();
    e.waiters.pop_front();
    waiter_keys_.erase(w);
    Take(chosen);
    out.grants.push_back({w, chosen});
  }
  if (!e.waiters.empty() && !e.dialing) {
    e.dialing = true;
    out.dial = true;
  }
  return out;
}

Pool::Served Pool::OnDialDone(const PoolKey& key, ConnId conn, uint32_t stream_limit,
                              absl::Time now) {
  Entry& e = entries_[key];
  e.dialing = false;
  Conn c;
  c.key = key;
  c.limit = stream_limit;
  auto [it, inserted] = conns_.emplace(conn, std::move(c));
  if (inserted) {
    e.conns.push_back(conn);
    SetIdle(conn, it->second, now);  // until a waiter takes a stream below
  }
  Served out = Serve(key);
  EraseIfUnused(key);
  return out;
}

Pool::Served Pool::OnDialFailed(const PoolKey& key) {
  Served out;
  auto it = entries_.find(key);
  if (it == entries_.end()) return out;
  Entry& e = it->second;
  e.dialing = false;
  for (WaiterId w : e.waiters) {
    waiter_keys_.erase(w);
    out.failed.push_back(w);
  }
  e.waiters.clear();
  EraseIfUnused(key);
  return out;
}

void Pool::SetStreamLimit(ConnId conn, uint32_t stream_limit) {
  auto it = conns_.find(conn);
  if (it != conns_.end()) it->second.limit = stream_limit;
}

void Pool::StreamClosed(ConnId conn, absl::Time now) {
  auto it = conns_.find(conn);
  if (it == conns_.end() || it->second.streams == 0) return;
  if (--it->second.streams == 0) SetIdle(conn, it->second, now);
}

void Pool::Unlist(ConnId id) {
  Conn& c = conns_.at(id);
  c.usable = false;
  auto e = entries_.find(c.key);
  if (e == entries_.end()) return;
  std::vector<ConnId>& v = e->second.conns;
  v.erase(std::remove(v.begin(), v.end(), id), v.end());
}

void Pool::OnConnectionBroken(ConnId conn) {
  if (conns_.count(conn) != 0) Unlist(conn);
}

Pool::Served Pool::OnConnectionClosed(ConnId conn, absl::Time now) {
  (void)now;
  auto it = conns_.find(conn);
  if (it == conns_.end()) return {};
  PoolKey key = it->second.key;
  Unlist(conn);
  ClearIdle(conn, it->second);
  conns_.erase(it);
  Served out = Serve(key);
  EraseIfUnused(key);
  return out;
}

void Pool::EraseIfUnused(const PoolKey& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  const Entry& e = it->second;
  if (e.conns.empty() && !e.dialing && e.waiters.empty()) entries_.erase(it);
}

absl::Time Pool::NextDeadline() const {
  return idle_.empty() ? absl::InfiniteFuture() : idle_.begin()->first;
}

std::vector<Pool::ConnId> Pool::Connections(const PoolKey& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? std::vector<ConnId>{} : it->second.conns;
}

std::vector<Pool::ConnId> Pool::OnTimer(absl::Time now) {
  std::vector<ConnId> out;
  while (!idle_.empty() && idle_.begin()->first <= now) {
    ConnId id = idle_.begin()->second;
    out.push_back(id);
    Unlist(id);
    ClearIdle(id, conns_.at(id));
  }
  return out;
}

size_t Pool::streams(ConnId conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second.streams;
}

bool Pool::dialing(const PoolKey& key) const {
  auto it = entries_.find(key);
  return it != entries_.end() && it->second.dialing;
}

}  // namespace ambient::hbone
