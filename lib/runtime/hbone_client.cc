// HboneClient: tunnels as streams on pooled HBONE connections. Which
// connection carries a stream is hbone::Pool's decision (sans-IO); this file
// is its host: it dials, owns the sessions, keeps the waiting requests and
// arms the pool's idle timer.
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "ambient/hbone/pool.h"
#include "ambient/hbone/record.h"
#include "ambient/runtime/hbone_client.h"
#include "runtime/dialer.h"
#include "runtime/hbone_records.h"
#include "runtime/relay.h"
#include "runtime/session.h"

namespace ambient::runtime {

namespace {

std::string Traceparent() {
  uint8_t rnd[24];
  RAND_bytes(rnd, sizeof(rnd));
  return absl::StrCat(
      "00-", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(rnd), 16)), "-",
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(rnd + 16), 8)), "-00");
}

class ClientImpl final : public HboneClient, public SessionOwner {
 public:
  ClientImpl(EventLoop* loop, ClientOptions options)
      : loop_(loop),
        opts_(std::move(options)),
        pool_(PoolOptionsOf(opts_)),
        idle_timer_(loop, [this] { OnIdleTimer(); }),
        fail_timer_(loop, [this] { OnFailTimer(); }) {
    SSL_CTX_up_ref(opts_.ssl_ctx);
  }
  ~ClientImpl() override {
    // A TCP connect in flight ends now (its socket closed), not when it
    // connects, is refused or times out.
    for (auto& [key, d] : dials_) CancelDial(d.tcp);
    std::map<hbone::Pool::WaiterId, Ready> waiters;
    waiters.swap(waiters_);
    for (auto& [id, ready] : waiters) ready(absl::CancelledError("client shut down"));
    // Calls still relaying end when their sessions go (below, or later on
    // the loop); they must not reach us then.
    for (Call* c : calls_) c->client = nullptr;
    calls_.clear();
    for (auto& [s, info] : sessions_) {
      s->set_owner(OrphanSessionOwner());
      s->Abort(absl::CancelledError("client shut down"));
    }
    SSL_CTX_free(opts_.ssl_ctx);
  }

  void Tunnel(const TunnelTarget& target, int in_fd, int out_fd, bool owns_fds,
              std::function<void(const TunnelResult&)> done) override;
  std::function<void()> TunnelWith(const TunnelTarget& target, int in_fd, int out_fd, bool owns_fds,
                                   std::function<void(const TunnelResult&)> established,
                                   std::function<void(const TunnelResult&)> done) override;
  PoolStats stats() const override {
    PoolStats s = stats_;
    s.connections = sessions_.size();
    return s;
  }

  void OnEstablished(Session* session) override;
  void OnGoaway(Session* session) override;
  void OnSessionClosed(Session* session, const absl::Status& status) override;

 private:
  // A pooled connection handed to a request: where to open its stream.
  struct Conn {
    Session* session;
    hbone::Pool::ConnId id;
  };
  using Ready = std::function<void(absl::StatusOr<Conn>)>;

  // Call is one TunnelWith, shared by the pool's answer, the relay and the
  // canceller: which phase it is in and, once a stream is open, where.
  struct Call {
    ClientImpl* client = nullptr;      // null once the client is gone
    bool over = false;                 // done has run (or is running)
    hbone::Pool::WaiterId waiter = 0;  // while waiting for a connection
    Session* session = nullptr;
    hbone::StreamId id = 0;
  };

  // The one dial in flight for a key: first the TCP connect, then the
  // session's handshake.
  struct Dial {
    TunnelTarget target;
    Dialing* tcp = nullptr;
    Session* session = nullptr;
    absl::Status failed;  // a dial that failed before it started (reported on the loop)
  };
  struct SessionInfo {
    hbone::PoolKey key;
    TunnelTarget target;  // of the dial that made it
    hbone::Pool::ConnId id = 0;
    bool pooled = false;  // handshake done, handed to the pool
  };

  static hbone::PoolOptions PoolOptionsOf(const ClientOptions& o) {
    hbone::PoolOptions p;
    p.idle_timeout = o.idle_timeout;
    return p;  // streams per connection: each connection's own limit
  }

  hbone::PoolKey KeyOf(const TunnelTarget& t) const {
    std::optional<IpAddress> src_ip;
    if (!t.source_addr.empty()) src_ip = t.source_addr.ip();
    return hbone::PoolKey::Make(opts_.identity, t.expected_identities, t.via, src_ip);
  }

  // Acquire hands `ready` a connection for `target` now, or once the
  // key's dial is over; returns the waiter id (0 when served at once).
  hbone::Pool::WaiterId Acquire(const TunnelTarget& target, Ready ready);
  void StartDial(const hbone::PoolKey& key, const TunnelTarget& target);
  void DialFailed(const hbone::PoolKey& key, const absl::Status& status);
  // Apply carries out what the pool decided for `key`'s waiters.
  void Apply(const hbone::PoolKey& key, const TunnelTarget& target, hbone::Pool::Served served,
             const absl::Status& failure);
  void StreamEnded(hbone::Pool::ConnId id) {
    pool_.StreamClosed(id, loop_->Now());
    RearmIdle();
  }
  void RearmIdle() {
    absl::Time t = pool_.NextDeadline();
    if (t == absl::InfiniteFuture()) {
      idle_timer_.Disarm();
    } else {
      idle_timer_.Arm(t);
    }
  }
  void OnIdleTimer();
  void OnFailTimer();

  EventLoop* loop_;
  ClientOptions opts_;
  hbone::Pool pool_;
  std::map<hbone::PoolKey, Dial> dials_;
  std::unordered_map<Session*, SessionInfo> sessions_;
  std::unordered_map<hbone::Pool::ConnId, Session*> pooled_;
  std::map<hbone::Pool::WaiterId, Ready> waiters_;
  std::unordered_set<Call*> calls_;  // calls not over yet
  hbone::Pool::ConnId next_conn_ = 0;
  Timer idle_timer_;  // at pool_.NextDeadline()
  Timer fail_timer_;  // reports dials that failed before they started
  PoolStats stats_;
};

hbone::Pool::WaiterId ClientImpl::Acquire(const TunnelTarget& target, Ready ready) {
  hbone::PoolKey key = KeyOf(target);
  // The peer's SETTINGS may have changed a connection's stream limit.
  for (hbone::Pool::ConnId id : pool_.Connections(key)) {
    pool_.SetStreamLimit(id, pooled_.at(id)->conn()->MaxStreams());
  }
  hbone::Pool::Acquired a = pool_.Acquire(key, loop_->Now());
  if (a.kind == hbone::Pool::Acquired::Kind::kUse) {
    RearmIdle();
    ready(Conn{pooled_.at(a.conn), a.conn});
    return 0;
  }
  waiters_[a.waiter] = std::move(ready);
  if (a.kind == hbone::Pool::Acquired::Kind::kDial) StartDial(key, target);
  return a.waiter;
}

void ClientImpl::StartDial(const hbone::PoolKey& key, const TunnelTarget& target) {
  Dial& d = dials_[key];
  d = Dial{};
  d.target = target;
  if (target.via.empty()) {
    // Reported on the loop, not inside Tunnel.
    d.failed = absl::InvalidArgumentError("the target has no via address");
    fail_timer_.Arm(loop_->Now());
    return;
  }
  ++stats_.dials;
  d.tcp = DialWith(loop_, target.via, opts_.connect_timeout, opts_.dial_socket,
                   [this, key](absl::StatusOr<int> fd) {
                     // Never called once cancelled (~ClientImpl cancels it).
                     Dial& d = dials_.at(key);
                     d.tcp = nullptr;
                     if (!fd.ok()) {
                       absl::Status st = fd.status();
                       if (st.code() == absl::StatusCode::kDeadlineExceeded) {
                         st = absl::DeadlineExceededError(absl::StrCat(
                             st.message(), "; maybe a NetworkPolicy is blocking the HBONE port"));
                       }
                       DialFailed(key, st);
                       return;
                     }
                     hbone::ConnectionOptions co;
                     co.role = hbone::Role::kClient;
                     co.ssl_ctx = opts_.ssl_ctx;
                     co.expected_identities = d.target.expected_identities;
                     co.bundles = opts_.bundles;
                     co.settings = opts_.settings;
                     co.log = opts_.log;
                     absl::StatusOr<std::unique_ptr<hbone::Connection>> conn =
                         hbone::Connection::New(std::move(co));
                     if (!conn.ok()) {
                       close(*fd);
                       DialFailed(key, conn.status());
                       return;
                     }
                     auto* session = new Session(loop_, *fd, std::move(*conn), this);
                     d.session = session;
                     SessionInfo info;
                     info.key = key;
                     info.target = d.target;
                     info.id = ++next_conn_;
                     sessions_[session] = std::move(info);
                     session->Start();
                   });
}

void ClientImpl::OnFailTimer() {
  std::vector<std::pair<hbone::PoolKey, absl::Status>> failed;
  for (const auto& [key, d] : dials_) {
    if (!d.failed.ok()) failed.emplace_back(key, d.failed);
  }
  for (const auto& [key, st] : failed) DialFailed(key, st);
}

void ClientImpl::DialFailed(const hbone::PoolKey& key, const absl::Status& status) {
  auto it = dials_.find(key);
  if (it == dials_.end()) return;
  TunnelTarget target = std::move(it->second.target);
  dials_.erase(it);
  Apply(key, target, pool_.OnDialFailed(key), status);
}

void ClientImpl::Apply(const hbone::PoolKey& key, const TunnelTarget& target,
                       hbone::Pool::Served served, const absl::Status& failure) {
  RearmIdle();
  for (const hbone::Pool::Grant& g : served.grants) {
    auto w = waiters_.find(g.waiter);
    if (w == waiters_.end()) continue;
    Ready ready = std::move(w->second);
    waiters_.erase(w);
    ready(Conn{pooled_.at(g.conn), g.conn});
  }
  for (hbone::Pool::WaiterId id : served.failed) {
    auto w = waiters_.find(id);
    if (w == waiters_.end()) continue;
    Ready ready = std::move(w->second);
    waiters_.erase(w);
    ready(failure);
  }
  if (served.dial) StartDial(key, target);
}

void ClientImpl::OnEstablished(Session* session) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  SessionInfo& info = it->second;
  info.pooled = true;
  dials_.erase(info.key);
  pooled_[info.id] = session;
  hbone::PoolKey key = info.key;
  TunnelTarget target = info.target;
  Apply(key, target, pool_.OnDialDone(key, info.id, session->conn()->MaxStreams(), loop_->Now()),
        absl::OkStatus());
}

void ClientImpl::OnGoaway(Session* session) {
  auto it = sessions_.find(session);
  if (it != sessions_.end() && it->second.pooled) pool_.OnConnectionBroken(it->second.id);
}

void ClientImpl::OnIdleTimer() {
  for (hbone::Pool::ConnId id : pool_.OnTimer(loop_->Now())) {
    Session* s = pooled_.at(id);
    s->conn()->Drain();
    s->Kick();
  }
  RearmIdle();
}

void ClientImpl::OnSessionClosed(Session* session, const absl::Status& status) {
  auto it = sessions_.find(session);
  if (it == sessions_.end()) return;
  SessionInfo info = std::move(it->second);
  sessions_.erase(it);
  if (!info.pooled) {
    // The key's dial ended before its handshake did.
    DialFailed(info.key,
               status.ok() ? absl::UnavailableError("connection closed during setup") : status);
    return;
  }
  pooled_.erase(info.id);
  Apply(info.key, info.target, pool_.OnConnectionClosed(info.id, loop_->Now()), status);
}

void ClientImpl::Tunnel(const TunnelTarget& target, int in_fd, int out_fd, bool owns_fds,
                        std::function<void(const TunnelResult&)> done) {
  TunnelWith(target, in_fd, out_fd, owns_fds, nullptr, std::move(done));
}

std::function<void()> ClientImpl::TunnelWith(const TunnelTarget& target, int in_fd, int out_fd,
                                             bool owns_fds,
                                             std::function<void(const TunnelResult&)> established,
                                             std::function<void(const TunnelResult&)> done) {
  auto call = std::make_shared<Call>();
  call->client = this;
  calls_.insert(call.get());
  hbone::RecordBuilder base(hbone::Direction::kOutbound);
  base.Source(target.source_addr.ToString(), opts_.identity, target.source_workload)
      .Destination(target.via.ToString(), std::nullopt, target.destination_workload)
      .HboneAddress(target.authority)
      .Service(target.destination_service)
      .Started(loop_->Now());
  if (opts_.metrics) opts_.metrics->ConnectionOpened(base.Opened());
  // Only while the client is there (call->client set).
  auto fail = [this, call, base, in_fd, out_fd, owns_fds, done](const absl::Status& st) {
    if (call->over) return;
    call->over = true;
    calls_.erase(call.get());
    if (owns_fds) {
      AbortClose(in_fd);
      if (out_fd != in_fd) close(out_fd);
    }
    EmitRecord(opts_.log, opts_.metrics,
               base.Failed(st, hbone::RecordBuilder::DialFailureFlags(st), loop_->Now()));
    TunnelResult res;
    res.status = st;
    if (done) done(res);
  };
  call->waiter = Acquire(target, [this, call, target, in_fd, out_fd, owns_fds, established, done,
                                  fail, base](absl::StatusOr<Conn> conn) {
    call->waiter = 0;
    if (call->over) {  // not waiting any more (cannot happen: a cancel withdraws the waiter)
      if (conn.ok()) StreamEnded(conn->id);
      return;
    }
    if (!conn.ok()) {
      fail(conn.status());
      return;
    }
    Session* session = conn->session;
    hbone::ConnectRequest req;
    req.authority = target.authority;
    if (!target.source_addr.empty()) {
      req.headers.push_back(
          {"forwarded", absl::StrCat("for=\"", target.source_addr.ToString(), "\"")});
    }
    req.headers.push_back({"traceparent", Traceparent()});
    bool typed_baggage = !target.source_workload.empty();
    if (typed_baggage) {
      req.headers.push_back({"baggage", hbone::BuildBaggage(target.source_workload)});
    }
    for (const hbone::Header& h : target.extra_headers) {
      if (!typed_baggage || h.name != "baggage") req.headers.push_back(h);
    }
    absl::StatusOr<hbone::StreamId> id = session->conn()->OpenStream(req);
    if (!id.ok()) {
      StreamEnded(conn->id);
      fail(id.status());
      return;
    }
    ++stats_.streams;
    hbone::RecordBuilder rec = base;
    const std::optional<identity::SpiffeId> peer = session->conn()->PeerIdentity();
    if (peer) rec.PeerIdentity(*peer);
    call->session = session;
    call->id = *id;
    auto* relay =
        new Relay(session, *id, in_fd, out_fd, owns_fds,
                  [log = opts_.log, metrics = opts_.metrics, rec, call, pooled = conn->id, peer,
                   done](const RelayResult& res) {
                    call->over = true;
                    if (ClientImpl* client = call->client) {
                      client->calls_.erase(call.get());
                      client->StreamEnded(pooled);
                    }
                    hbone::RecordBuilder end = rec;
                    end.ResponseBaggage(res.response_baggage);
                    EmitRecord(log, metrics,
                               end.Closed({res.fd_to_stream, res.stream_to_fd}, res.status,
                                          res.ended, res.http_status == 401 ? "DENY" : "CONNECT"));
                    TunnelResult tr;
                    tr.status = res.status;
                    tr.http_status = res.http_status;
                    tr.peer_identity = peer;
                    tr.bytes_sent = res.fd_to_stream;
                    tr.bytes_recv = res.stream_to_fd;
                    if (done) done(tr);
                  });
    if (established) {
      relay->set_on_response([established, call, peer](int http_status) {
        if (http_status != 200 || call->over) return;
        TunnelResult tr;
        tr.http_status = http_status;
        tr.peer_identity = peer;
        established(tr);
      });
    }
    relay->Start();
    session->Kick();
  });
  return [call, fail] {
    ClientImpl* client = call->client;
    if (client == nullptr || call->over) return;
    if (call->session == nullptr) {
      client->pool_.Cancel(call->waiter);
      client->waiters_.erase(call->waiter);
      call->waiter = 0;
      fail(absl::CancelledError("tunnel cancelled before its stream opened"));
      return;
    }
    // The relay is attached to the stream until it closes, so the session
    // is still there; the reset closes the stream and the relay reports.
    call->session->conn()->StreamReset(call->id).IgnoreError();
    call->session->Kick();
  };
}

}  // namespace

absl::StatusOr<std::unique_ptr<HboneClient>> HboneClient::New(EventLoop* loop,
                                                              ClientOptions options) {
  if (options.ssl_ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  return std::unique_ptr<HboneClient>(new ClientImpl(loop, std::move(options)));
}

}  // namespace ambient::runtime
