// ambient/hbone/pool.h: which HBONE connection carries the next stream, sans
// I/O.
//
// A client opens each tunnel as one stream on a pooled connection. Pool
// decides, for a key (our identity, the server identities we expect, the
// server's address, the source IP), whether a stream goes on a connection
// already up, waits for the dial in flight, or needs a new dial; the host
// does the dials, owns the connections and supplies the time. There are no
// sockets, threads, clocks or callbacks in here: the host names its
// connections with ConnId values of its choice and its waiting requests
// with the WaiterId values Pool hands out.
//
// The rules (those of ztunnel's pool, and of lib/runtime's HboneClient):
//   - A connection carries at most its stream limit (the lower of the
//     connection's own, e.g. hbone::Connection::MaxStreams(), and
//     PoolOptions::max_streams_per_connection when not 0) at a time; the
//     first connection of the key with room gets the stream.
//   - One dial in flight per key. Requests made meanwhile wait, and are
//     served in arrival order when the dial ends: on the new connection (and
//     any other of the key with room) while there is room; if some still
//     wait, the next dial starts. A failed dial fails every waiter.
//   - A broken connection (GOAWAY either way, a transport error) is never
//     handed out again; it is forgotten when the host reports it closed.
//   - A connection without streams for PoolOptions::idle_timeout (counted
//     from when its last stream ended, or from when it came up if no stream
//     took it) is handed back to the host to close (NextDeadline /
//     OnTimer); so is a broken one that the peer leaves open.
//   - A stream that ends (or never opened) gives its place back; it does
//     not serve waiters (they wait for their dial).
//
// Embedding (lib/runtime/hbone_client.cc is such a host):
//   Acquire(key, now):
//     kUse  -> open the stream on `conn`; StreamClosed(conn, now) when it ends
//              (or when opening it failed).
//     kWait -> remember `waiter`; it is served by a later Served.
//     kDial -> remember `waiter` and start a connection for the key; when it
//              is up (handshake done) call OnDialDone(key, conn, limit, now),
//              when it failed OnDialFailed(key).
//   Served (from OnDialDone / OnDialFailed / OnConnectionClosed): give each
//   grant's waiter a stream on its connection, fail each failed waiter, and
//   start a dial for `dial_key` when `dial` is set.
//   Cancel(waiter) withdraws a waiting request. OnConnectionBroken(conn) on
//   GOAWAY; OnConnectionClosed(conn, now) when the connection is gone.
//   Arm a timer at NextDeadline(); at it, OnTimer(now) lists connections to
//   close gracefully (they are no longer handed out).
//
// Threads: not synchronised; one thread at a time (e.g. the host's loop).
#ifndef AMBIENT_HBONE_POOL_H_
#define AMBIENT_HBONE_POOL_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "ambient/base/address.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::hbone {

// PoolKey says which connections may carry a stream: the same for all four
// fields. Make sorts the expected identities (their order does not matter).
struct PoolKey {
  std::optional<identity::SpiffeId> identity;           // ours (the client certificate's)
  std::vector<identity::SpiffeId> expected_identities;  // sorted; any of them may answer
  SocketAddress via;                                    // the HBONE server's address
  std::optional<IpAddress> source_ip;                   // the downstream client's IP, if any

  static PoolKey Make(std::optional<identity::SpiffeId> identity,
                      std::vector<identity::SpiffeId> expected_identities, SocketAddress via,
                      std::optional<IpAddress> source_ip);

  bool operator<(const PoolKey& o) const {
    return std::tie(identity, expected_identities, via, source_ip) <
           std::tie(o.identity, o.expected_identities, o.via, o.source_ip);
  }
  bool operator==(const PoolKey& o) const {
    return std::tie(identity, expected_identities, via, source_ip) ==
           std::tie(o.identity, o.expected_identities, o.via, o.source_ip);
  }
};

struct PoolOptions {
  // A connection with no stream this long is closed (0: at the next OnTimer).
  absl::Duration idle_timeout = absl::Minutes(5);
  // Streams per connection at most, on top of each connection's own limit
  // (0 = only that limit).
  uint32_t max_streams_per_connection = 0;
};

class Pool {
 public:
  using ConnId = uint64_t;    // the host's name for a connection (any value, unique while pooled)
  using WaiterId = uint64_t;  // Pool's name for a waiting request (never 0)

  // Acquired is Acquire's answer.
  struct Acquired {
    enum class Kind {
      kUse,   // open the stream on `conn` (counted already)
      kWait,  // `waiter` waits for the dial in flight
      kDial,  // `waiter` waits; start a dial for the key
    };
    Kind kind = Kind::kUse;
    ConnId conn = 0;
    WaiterId waiter = 0;
  };

  // Grant: waiter `waiter` gets a stream on `conn` (counted already).
  struct Grant {
    WaiterId waiter = 0;
    ConnId conn = 0;
  };

  // Served is what an event did to the waiters of one key, in order.
  struct Served {
    std::vector<Grant> grants;     // in arrival order
    std::vector<WaiterId> failed;  // in arrival order (dial failed)
    bool dial = false;             // start a dial for the key (waiters remain)
  };

  explicit Pool(PoolOptions options = {});

  // Acquire asks for a stream to `key` at `now`.
  Acquired Acquire(const PoolKey& key, absl::Time now);
  // Cancel withdraws waiter `waiter` (unknown ids are ignored). The dial in
  // flight for its key goes on: its connection joins the pool.
  void Cancel(WaiterId waiter);

  // OnDialDone: the dial for `key` made connection `conn`, up and able to
  // carry `stream_limit` streams at a time. Its waiters are served.
  Served OnDialDone(const PoolKey& key, ConnId conn, uint32_t stream_limit, absl::Time now);
  // OnDialFailed: the dial for `key` failed; every waiter of the key fails.
  Served OnDialFailed(const PoolKey& key);

  // SetStreamLimit updates `conn`'s own limit (e.g. after the peer's
  // SETTINGS changed it).
  void SetStreamLimit(ConnId conn, uint32_t stream_limit);
  // StreamClosed: a stream given out on `conn` ended (or never opened).
  void StreamClosed(ConnId conn, absl::Time now);
  // OnConnectionBroken: `conn` takes no new stream (GOAWAY, error); its
  // streams may still end with StreamClosed, and once it has none for
  // idle_timeout OnTimer lists it.
  void OnConnectionBroken(ConnId conn);
  // OnConnectionClosed: `conn` is gone. Waiters of its key are served by
  // the key's other connections (and a dial asked for when needed).
  Served OnConnectionClosed(ConnId conn, absl::Time now);

  // NextDeadline is when OnTimer should run (InfiniteFuture if never).
  absl::Time NextDeadline() const;
  // OnTimer returns the connections idle since idle_timeout before `now`:
  // the host closes them (gracefully); they are no longer handed out and
  // stay known until OnConnectionClosed.
  std::vector<ConnId> OnTimer(absl::Time now);

  // Connections lists the usable connections of `key`, in the order they
  // came up (e.g. to refresh their SetStreamLimit before Acquire).
  std::vector<ConnId> Connections(const PoolKey& key) const;

  // Introspection (tests, stats).
  size_t connections() const { return conns_.size(); }
  size_t waiters() const { return waiter_keys_.size(); }
  size_t streams(ConnId conn) const;
  bool dialing(const PoolKey& key) const;

 private:
  struct Conn {
    PoolKey key;
    uint32_t limit = 0;
    uint32_t streams = 0;
    bool usable = true;                              // not broken, not idle-closed
    absl::Time idle_since = absl::InfiniteFuture();  // while streams == 0 (until OnTimer)
  };
  struct Entry {
    std::vector<ConnId> conns;  // usable ones, in the order they came up
    bool dialing = false;
    std::deque<WaiterId> waiters;
  };

  uint32_t LimitOf(const Conn& c) const;
  bool HasRoom(const Conn& c) const { return c.usable && c.streams < LimitOf(c); }
  // Take counts a stream on `id`.
  void Take(ConnId id);
  // Serve grants waiters of `key` while some connection has room, then asks
  // for a dial if some still wait and none is in flight.
  Served Serve(const PoolKey& key);
  void Unlist(ConnId id);
  void SetIdle(ConnId id, Conn& c, absl::Time since);
  void ClearIdle(ConnId id, Conn& c);
  void EraseIfUnused(const PoolKey& key);

  PoolOptions opts_;
  std::map<PoolKey, Entry> entries_;
  std::unordered_map<ConnId, Conn> conns_;
  std::unordered_map<WaiterId, PoolKey> waiter_keys_;
  std::set<std::pair<absl::Time, ConnId>> idle_;  // (deadline, conn) of idle usable connections
  WaiterId next_waiter_ = 0;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_POOL_H_
