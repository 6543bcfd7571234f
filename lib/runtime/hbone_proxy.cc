#include "ambient/runtime/hbone_proxy.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/hbone/authority.h"
#include "ambient/hbone/pool.h"
#include "ambient/hbone/record.h"
#include "ambient/hbone/server_decision.h"
#include "ambient/identity/spiffe_id.h"
#include "absl/strings/match.h"
#include "runtime/acceptor.h"
#include "runtime/dialer.h"
#include "runtime/relay.h"
#include "runtime/session.h"

namespace ambient::runtime {

namespace {

void EmitRecord(const LogSink& log, const std::shared_ptr<hbone::Metrics>& metrics,
                const hbone::ConnectionRecord& record) {
  if (metrics) metrics->ConnectionClosed(record);
  if (log) {
    log(record.error.ok() ? LogLevel::kInfo : LogLevel::kError, "access",
        hbone::FormatAccessLog(record));
  }
}

// Sessions whose server or client is gone report here: reject new streams,
// ignore the rest. A process-wide stateless object, never destroyed.
class OrphanOwner final : public SessionOwner {
 public:
  void OnStreamRequest(Session* s, hbone::StreamId id, const hbone::ConnectRequest&) override {
    s->conn()->RejectStream(id, 503).IgnoreError();
  }
  void OnSessionClosed(Session*, const absl::Status&) override {}
};

SessionOwner* Orphan() {
  static OrphanOwner* const orphan = new OrphanOwner;
  return orphan;
}

hbone::PendingLimits PendingLimitsOf(const ServerLimits& limits) {
  hbone::PendingLimits p;
  p.per_connection = limits.max_pending_dials_per_connection;
  p.per_identity = limits.max_pending_dials_per_identity;
  return p;
}

std::string Traceparent() {
  uint8_t rnd[24];
  RAND_bytes(rnd, sizeof(rnd));
  return absl::StrCat("00-", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(rnd), 16)),
                      "-", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(rnd + 16), 8)),
                      "-00");
}

// ---------------------------------------------------------------------------
// Server

class ServerImpl;
struct Hop;
struct HopWait;

// PendingDial is one CONNECT whose upstream connect is in flight. It listens
// on its stream: a reset by the client, or the connection going, cancels the
// connect (socket closed at once). It deletes itself when the stream closes
// or the connect finishes.
struct PendingDial final : StreamListener {
  ServerImpl* server;
  std::weak_ptr<int> alive;
  Session* session;
  uint64_t sid;
  hbone::StreamId id;
  hbone::ConnectRequest request;
  std::string identity;
  absl::Time started;
  Dialing* dial = nullptr;

  void OnReadable() override {}
  void OnWritable() override {}
  void OnClosed(const absl::Status& status) override;
};

class ServerImpl final : public HboneServer, public SessionOwner {
 public:
  ServerImpl(EventLoop* loop, ServerOptions options, int listen_fd, SocketAddress addr)
      : loop_(loop),
        opts_(std::move(options)),
        addr_(addr),
        decision_(opts_.allow, PendingLimitsOf(opts_.limits)) {
    SSL_CTX_up_ref(opts_.ssl_ctx);
    AcceptorOptions ao;
    ao.max_connections = opts_.limits.max_connections;
    ao.log = opts_.log;
    ao.component = "hbone";
    ao.name = addr_.ToString();
    acceptor_ = std::make_unique<Acceptor>(loop, listen_fd, std::move(ao),
                                           [this](int fd) { OnConnection(fd); });
  }

  ~ServerImpl() override {
    acceptor_->Stop();
    // Sessions outlive us only until the loop runs their deferred deletes;
    // detach them from us and abort them (their pending dials are cancelled
    // when their streams close).
    for (auto& [id, s] : sessions_) {
      s->set_owner(Orphan());
      s->Abort(absl::CancelledError("server shut down"));
    }
    SSL_CTX_free(opts_.ssl_ctx);
  }

  absl::Status Start() { return acceptor_->Start(); }

  SocketAddress address() const override { return addr_; }
  size_t connections() const override { return sessions_.size(); }
  ServerStats stats() const override {
    ServerStats s = stats_;
    s.accepted = acceptor_->stats().accepted;
    s.accept_resource_errors = acceptor_->stats().resource_errors;
    s.pending_dials = decision_.pending();
    return s;
  }
  void SetWorkload(const hbone::WorkloadInfo& workload) override { opts_.workload = workload; }
  void SetLimits(const ServerLimits& limits) override {
    opts_.limits = limits;
    decision_.SetLimits(PendingLimitsOf(limits));
    acceptor_->SetMaxConnections(limits.max_connections);
    UpdateHold();
  }

  void Drain() override {
    acceptor_->Stop();
    for (auto& [id, s] : sessions_) {
      s->conn()->Drain();
      s->Kick();
    }
  }

  void OnEstablished(Session* session) override {
    handshaking_.erase(session);
    UpdateHold();
  }
  void OnStreamRequest(Session* session, hbone::StreamId id,
                       const hbone::ConnectRequest& request) override;
  void OnSessionClosed(Session* session, const absl::Status& status) override {
    auto it = ids_.find(session);
    if (it != ids_.end()) {
      decision_.ConnectionClosed(it->second);
      sessions_.erase(it->second);
      ids_.erase(it);
      handshaking_.erase(session);
      if (status.code() == absl::StatusCode::kDeadlineExceeded &&
          absl::StrContains(status.message(), "sent nothing")) {
        ++stats_.silent_closed;
      }
      acceptor_->Release();
      UpdateHold();
    }
    if (!status.ok() && opts_.log) {
      opts_.log(LogLevel::kDebug, "hbone",
                absl::StrCat("connection from ", session->peer().ToString(), " ended: ",
                             status.ToString()));
    }
  }

  // DialEnded: a pending upstream connect (TCP dial or HBONE hop) of
  // connection `sid` for client `identity` finished or was cancelled.
  void DialEnded(uint64_t sid, const std::string& identity) { decision_.Release(sid, identity); }
  void DialEnded(PendingDial* p) { DialEnded(p->sid, p->identity); }

  void DialCancelled(Session* session, const hbone::ConnectRequest& request, absl::Time started,
                     const absl::Status& why) {
    ++stats_.cancelled_dials;
    hbone::ConnectionRecord r = Record(session, request)
                                    .Started(started)
                                    .Failed(absl::CancelledError(absl::StrCat(
                                                "upstream connect cancelled: ",
                                                why.ok() ? "the client reset the stream"
                                                         : std::string(why.message()))),
                                            "CONNECT", loop_->Now());
    if (opts_.metrics) opts_.metrics->ConnectionOpened(r);
    EmitRecord(opts_.log, opts_.metrics, r);
  }
  void DialCancelled(PendingDial* p, const absl::Status& why) {
    DialEnded(p);
    DialCancelled(p->session, p->request, p->started, why);
  }

  // StartHop carries stream `id` on over HBONE (Upstream::Hbone); see Hop.
  void StartHop(Session* session, uint64_t sid, hbone::StreamId id,
                const hbone::ConnectRequest& request, const std::string& identity,
                const Upstream& upstream);
  void HopEstablished(const std::shared_ptr<Hop>& hop);
  void HopEnded(const std::shared_ptr<Hop>& hop, const TunnelResult& res);

 private:
  void OnConnection(int fd) {
    hbone::ConnectionOptions co;
    co.role = hbone::Role::kServer;
    co.ssl_ctx = opts_.ssl_ctx;
    co.settings = opts_.settings;
    co.log = opts_.log;
    absl::StatusOr<std::unique_ptr<hbone::Connection>> conn =
        hbone::Connection::New(std::move(co));
    if (!conn.ok()) {
      close(fd);
      acceptor_->Release();
      if (opts_.log) opts_.log(LogLevel::kError, "hbone", conn.status().ToString());
      return;
    }
    auto* session = new Session(loop_, fd, std::move(*conn), this);
    uint64_t sid = ++next_id_;
    sessions_[sid] = session;
    ids_[session] = sid;
    handshaking_.insert(session);
    UpdateHold();
    if (opts_.limits.silent_timeout > absl::ZeroDuration()) {
      session->ExpectBytesWithin(opts_.limits.silent_timeout);
    }
    session->Start();
  }

  void UpdateHold() {
    acceptor_->SetHeld(opts_.limits.max_handshakes != 0 && handshaking_.size() >= opts_.limits.max_handshakes);
  }

  // Record is what this server knows of stream `request` on `session`: the
  // client (address, identity, workload from the request's baggage), us
  // (listener, identity, workload), then the host's annotate hook.
  hbone::RecordBuilder Record(Session* session, const hbone::ConnectRequest& request) const {
    hbone::RecordBuilder b =
        hbone::RecordBuilder::ForConnect(hbone::Direction::kInbound, request);
    b.Source(session->peer_text(), session->conn()->PeerIdentity())
        .Destination(session->local_text(), opts_.identity, opts_.workload)
        .Edit(opts_.annotate);
    return b;
  }

  // Answer sends a refusing decision on stream `id` and logs its record.
  void Answer(Session* session, hbone::StreamId id, const hbone::StreamAnswer& answer) {
    session->conn()->RejectStream(id, answer.http_status).IgnoreError();
    session->Kick();
    if (opts_.metrics) opts_.metrics->ConnectionOpened(answer.record);
    EmitRecord(opts_.log, opts_.metrics, answer.record);
  }
  // UpstreamFailed answers 503 on stream `id` whose upstream connect failed.
  void UpstreamFailed(Session* session, hbone::StreamId id, const hbone::ConnectRequest& request,
                      absl::Status why) {
    Answer(session, id, hbone::ServerDecision::UpstreamFailed(std::move(why),
                                                              Record(session, request)));
  }

  void Connected(PendingDial* p, int fd);
  bool Reply(Session* session, hbone::StreamId id, const hbone::ConnectRequest& request,
             absl::Time started, int fd,
             std::function<void(absl::Status*)> on_end = nullptr);

  EventLoop* loop_;
  ServerOptions opts_;
  SocketAddress addr_;
  std::unique_ptr<Acceptor> acceptor_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, Session*> sessions_;
  std::unordered_map<Session*, uint64_t> ids_;
  std::unordered_set<Session*> handshaking_;
  hbone::ServerDecision decision_;  // allow list, pending-dial counts
  ServerStats stats_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

void PendingDial::OnClosed(const absl::Status& status) {
  CancelDial(dial);
  if (!alive.expired()) server->DialCancelled(this, status);
  delete this;
}

void ServerImpl::OnStreamRequest(Session* session, hbone::StreamId id,
                                 const hbone::ConnectRequest& request) {
  const std::string& peer = session->conn()->PeerIdentity();
  absl::StatusOr<SocketAddress> upstream = absl::UnavailableError("not resolved");
  Upstream hop;
  hbone::ServerDecision::HostChecks checks;
  checks.resolve = [&]() -> absl::Status {
    upstream = ParseSocketAddress(request.authority);
    if (upstream.ok()) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("cannot route :authority ", request.authority,
                                               ": only numeric ip:port is supported"));
  };
  if (opts_.authorize) {
    checks.authorize = [&] {
      return opts_.authorize(InboundStream{peer, session->peer(), *upstream, request.authority});
    };
  }
  if (opts_.route) {
    checks.route = [&]() -> absl::Status {
      absl::StatusOr<Upstream> chosen =
          opts_.route(InboundStream{peer, session->peer(), *upstream, request.authority});
      if (!chosen.ok()) return chosen.status();
      if (chosen->client != nullptr) {
        hop = *std::move(chosen);
      } else {
        upstream = chosen->tcp;
      }
      return absl::OkStatus();
    };
  }
  uint64_t sid = ids_[session];
  hbone::StreamAnswer answer = decision_.Decide(sid, peer, checks, [&] { return Record(session, request); });
  if (!answer.accepted()) {
    if (answer.stage == hbone::StreamAnswer::Stage::kLimit) ++stats_.refused_streams;
    Answer(session, id, answer);
    return;
  }
  if (hop.client != nullptr) {
    StartHop(session, sid, id, request, peer, hop);
    return;
  }
  SocketMaker make;
  if (opts_.upstream_socket) {
    make = [f = opts_.upstream_socket, client = session->peer()](const SocketAddress& a) {
      return f(a, client);
    };
  }
  auto* p = new PendingDial;
  p->server = this;
  p->alive = alive_;
  p->session = session;
  p->sid = sid;
  p->id = id;
  p->request = request;
  p->identity = peer;
  p->started = loop_->Now();
  session->Attach(id, p);
  p->dial = DialWith(loop_, *upstream, opts_.connect_timeout, std::move(make),
                     [p](absl::StatusOr<int> fd) {
                       // Not called once cancelled: the stream is still there.
                       p->session->Detach(p->id);
                       if (p->alive.expired()) {
                         if (fd.ok()) close(*fd);
                         delete p;
                         return;
                       }
                       ServerImpl* server = p->server;
                       server->DialEnded(p);
                       if (!fd.ok()) {
                         server->UpstreamFailed(p->session, p->id, p->request, fd.status());
                       } else {
                         server->Connected(p, *fd);
                       }
                       delete p;
                     });
}

void ServerImpl::Connected(PendingDial* p, int fd) {
  Reply(p->session, p->id, p->request, p->started, fd);
}

// Reply answers 200 on stream `id` and relays it to `fd` (owned); false
// when the stream is gone (fd closed). `on_end` runs when the relay is over,
// with its status (which it may change) before the record is logged.
bool ServerImpl::Reply(Session* session, hbone::StreamId id, const hbone::ConnectRequest& request,
                       absl::Time started, int fd,
                       std::function<void(absl::Status*)> on_end) {
  std::vector<hbone::Header> answer;
  if (!opts_.workload.empty()) {
    answer.push_back({"baggage", hbone::BuildBaggage(opts_.workload)});
  }
  if (!session->conn()->AcceptStream(id, answer).ok()) {
    close(fd);  // the client gave up meanwhile
    return false;
  }
  hbone::RecordBuilder base = Record(session, request);
  base.Started(started);
  if (opts_.metrics) opts_.metrics->ConnectionOpened(base.Opened());
  auto* relay = new Relay(session, id, fd, fd, /*owns_fds=*/true,
                          [log = opts_.log, metrics = opts_.metrics, base,
                           on_end = std::move(on_end)](const RelayResult& res) {
                            absl::Status status = res.status;
                            if (on_end) on_end(&status);
                            // Inbound: sent = app -> client, recv = client -> app.
                            EmitRecord(log, metrics,
                                       base.Closed({res.fd_to_stream, res.stream_to_fd},
                                                   std::move(status), res.ended));
                          });
  relay->Start();
  session->Kick();
  return true;
}

// Hop is one CONNECT carried on over HBONE (Upstream::Hbone). The two legs
// meet at a socketpair: the upstream tunnel (HboneClient::TunnelWith) owns
// its far end, the downstream stream is relayed to its near end once the
// upstream CONNECT got its 200. Until then a HopWait listens on the
// downstream stream, so that a reset by the client cancels the upstream.
struct Hop {
  ServerImpl* server = nullptr;
  std::weak_ptr<int> alive;  // the server's
  Session* session = nullptr;
  uint64_t sid = 0;
  hbone::StreamId id = 0;
  hbone::ConnectRequest request;
  std::string identity;  // the downstream client's
  std::string via;       // the upstream HBONE server
  absl::Time started;
  enum class Phase { kWaiting, kRelaying, kOver } phase = Phase::kWaiting;
  int near_fd = -1;         // ours until the downstream relay takes it
  HopWait* wait = nullptr;  // while kWaiting
  std::function<void()> cancel_upstream;
  absl::Status upstream_error;  // why the upstream ended the relaying hop
};

struct HopWait final : StreamListener {
  std::shared_ptr<Hop> hop;
  void OnReadable() override {}
  void OnWritable() override {}
  void OnClosed(const absl::Status& status) override {
    // The downstream stream went (reset by the client, or its connection)
    // before the upstream answered: give up the upstream too.
    std::shared_ptr<Hop> h = std::move(hop);
    h->wait = nullptr;
    if (h->phase == Hop::Phase::kWaiting) {
      h->phase = Hop::Phase::kOver;
      close(h->near_fd);
      h->near_fd = -1;
      if (!h->alive.expired()) {
        h->server->DialEnded(h->sid, h->identity);
        h->server->DialCancelled(h->session, h->request, h->started, status);
      }
      std::function<void()> cancel = std::move(h->cancel_upstream);
      h->cancel_upstream = nullptr;
      if (cancel) cancel();
    }
    delete this;
  }
};

void ServerImpl::StartHop(Session* session, uint64_t sid, hbone::StreamId id,
                          const hbone::ConnectRequest& request, const std::string& identity,
                          const Upstream& upstream) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    DialEnded(sid, identity);
    UpstreamFailed(session, id, request,
                   absl::ResourceExhaustedError(absl::StrCat("socketpair: ", std::strerror(errno))));
    return;
  }
  auto hop = std::make_shared<Hop>();
  hop->server = this;
  hop->alive = alive_;
  hop->session = session;
  hop->sid = sid;
  hop->id = id;
  hop->request = request;
  hop->identity = identity;
  hop->via = upstream.hbone.via;
  hop->started = loop_->Now();
  hop->near_fd = pair[0];
  auto* wait = new HopWait;
  wait->hop = hop;
  hop->wait = wait;
  session->Attach(id, wait);
  std::function<void()> cancel = upstream.client->TunnelWith(
      upstream.hbone, pair[1], pair[1], /*owns_fds=*/true,
      [hop](const TunnelResult&) {
        if (hop->phase != Hop::Phase::kWaiting || hop->alive.expired()) return;
        hop->server->HopEstablished(hop);
      },
      [hop](const TunnelResult& res) {
        if (hop->alive.expired()) {
          hop->cancel_upstream = nullptr;
          if (hop->phase == Hop::Phase::kWaiting) {
            hop->phase = Hop::Phase::kOver;
            close(hop->near_fd);
            hop->near_fd = -1;
          }
          return;
        }
        hop->server->HopEnded(hop, res);
      });
  // TunnelWith may have failed at once (done already ran).
  if (hop->phase == Hop::Phase::kWaiting) hop->cancel_upstream = std::move(cancel);
}

void ServerImpl::HopEstablished(const std::shared_ptr<Hop>& hop) {
  hop->phase = Hop::Phase::kRelaying;
  if (hop->wait != nullptr) {
    hop->session->Detach(hop->id);
    delete hop->wait;
    hop->wait = nullptr;
  }
  DialEnded(hop->sid, hop->identity);
  int fd = hop->near_fd;
  hop->near_fd = -1;
  // The relay's callback holds the hop (nothing in the hop holds the relay).
  bool answered = Reply(hop->session, hop->id, hop->request, hop->started, fd,
                        [h = hop](absl::Status* error) {
                          if (!h->upstream_error.ok()) *error = h->upstream_error;
                          absl::Status status = *error;
                          h->phase = Hop::Phase::kOver;
                          // A downstream reset or broken connection cancels
                          // the upstream stream (a clean end reaches it as EOF).
                          std::function<void()> cancel = std::move(h->cancel_upstream);
                          h->cancel_upstream = nullptr;
                          if (!status.ok() && cancel) cancel();
                        });
  if (!answered) {
    // The downstream went meanwhile (its close event not yet dispatched).
    hop->phase = Hop::Phase::kOver;
    std::function<void()> cancel = std::move(hop->cancel_upstream);
    hop->cancel_upstream = nullptr;
    if (cancel) cancel();
  }
}

void ServerImpl::HopEnded(const std::shared_ptr<Hop>& hop, const TunnelResult& res) {
  hop->cancel_upstream = nullptr;  // the upstream is over (and this breaks the hop's cycle)
  if (hop->phase == Hop::Phase::kWaiting) {
    // Refused, unreachable, wrong identity or cancelled before the 200.
    hop->phase = Hop::Phase::kOver;
    close(hop->near_fd);
    hop->near_fd = -1;
    if (hop->wait != nullptr) {
      hop->session->Detach(hop->id);
      delete hop->wait;
      hop->wait = nullptr;
    }
    DialEnded(hop->sid, hop->identity);
    std::string why =
        res.http_status != 0
            ? absl::StrCat("upstream HBONE ", hop->via, " refused the CONNECT (HTTP ",
                           res.http_status, "): ", res.status.message())
            : absl::StrCat("upstream HBONE ", hop->via, " failed: ", res.status.message());
    UpstreamFailed(hop->session, hop->id, hop->request, absl::UnavailableError(why));
    return;
  }
  if (hop->phase == Hop::Phase::kRelaying && !res.status.ok()) {
    // The upstream stream was reset or its connection broke: the downstream
    // stream is reset too rather than ended as if all went well.
    hop->phase = Hop::Phase::kOver;
    hop->upstream_error = absl::UnavailableError(
        absl::StrCat("upstream HBONE ", hop->via, " ended: ", res.status.message()));
    hop->session->conn()->StreamReset(hop->id).IgnoreError();
    hop->session->Kick();
  }
}

// ---------------------------------------------------------------------------
// Client: the host of an hbone::Pool

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
      s->set_owner(Orphan());
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
    ClientImpl* client = nullptr;    // null once the client is gone
    bool over = false;               // done has run (or is running)
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
    std::string src_ip = t.source_addr;
    if (absl::StatusOr<SocketAddress> a = ParseSocketAddress(t.source_addr); a.ok()) {
      src_ip = a->Ip();
    }
    return hbone::PoolKey::Make(opts_.identity, t.expected_identities, t.via, std::move(src_ip));
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
  absl::StatusOr<SocketAddress> addr = ParseSocketAddress(target.via);
  if (!addr.ok()) {
    // Reported on the loop, not inside Tunnel.
    d.failed = addr.status();
    fail_timer_.Arm(loop_->Now());
    return;
  }
  ++stats_.dials;
  d.tcp = DialWith(loop_, *addr, opts_.connect_timeout, opts_.dial_socket,
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
  Apply(key, target,
        pool_.OnDialDone(key, info.id, session->conn()->MaxStreams(), loop_->Now()),
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
  base.Source(target.source_addr, opts_.identity, target.source_workload)
      .Destination(target.via, "", target.destination_workload)
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
      req.headers.push_back({"forwarded", absl::StrCat("for=\"", target.source_addr, "\"")});
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
    rec.PeerIdentity(session->conn()->PeerIdentity());
    call->session = session;
    call->id = *id;
    auto* relay =
        new Relay(session, *id, in_fd, out_fd, owns_fds,
                  [log = opts_.log, metrics = opts_.metrics, rec, call, pooled = conn->id,
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
                    tr.peer_identity = rec.record().dst_identity;
                    tr.bytes_sent = res.fd_to_stream;
                    tr.bytes_recv = res.stream_to_fd;
                    if (done) done(tr);
                  });
    if (established) {
      relay->set_on_response([established, call, peer = rec.record().dst_identity](int http_status) {
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

// ---------------------------------------------------------------------------
// Forwarder

class ForwarderImpl final : public HboneForwarder {
 public:
  ForwarderImpl(EventLoop* loop, HboneClient* client, ForwarderOptions options, int fd,
                SocketAddress addr)
      : client_(client), opts_(std::move(options)), addr_(addr) {
    AcceptorOptions ao;
    ao.component = "hbone";
    ao.name = addr_.ToString();
    acceptor_ = std::make_unique<Acceptor>(loop, fd, std::move(ao),
                                           [this](int c) { OnConnection(c); });
  }
  absl::Status Start() { return acceptor_->Start(); }
  SocketAddress address() const override { return addr_; }

 private:
  void OnConnection(int fd) {
    TunnelTarget t = opts_.target;
    if (absl::StatusOr<SocketAddress> peer = PeerAddress(fd); peer.ok()) {
      t.source_addr = peer->ToString();
    }
    client_->Tunnel(t, fd, fd, /*owns_fds=*/true, nullptr);
  }

  HboneClient* client_;
  ForwarderOptions opts_;
  SocketAddress addr_;
  std::unique_ptr<Acceptor> acceptor_;  // no cap: nothing to release
};

// A server on a listening socket the caller made (ServerOptions::listen_fd).
absl::StatusOr<std::unique_ptr<HboneServer>> ServeListening(EventLoop* loop,
                                                           ServerOptions options) {
  int fd = options.listen_fd;
  absl::StatusOr<SocketAddress> bound = LocalAddress(fd);
  absl::Status st = bound.ok() ? SetNonBlocking(fd) : bound.status();
  if (!st.ok()) {
    close(fd);
    return st;
  }
  auto server = std::make_unique<ServerImpl>(loop, std::move(options), fd, *bound);
  if (absl::Status st = server->Start(); !st.ok()) return st;
  return std::unique_ptr<HboneServer>(std::move(server));
}

}  // namespace

absl::StatusOr<std::unique_ptr<HboneServer>> HboneServer::New(EventLoop* loop,
                                                             ServerOptions options) {
  if (options.ssl_ctx == nullptr && options.listen_fd >= 0) close(options.listen_fd);
  if (options.ssl_ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  if (absl::Status s = identity::ValidateSpiffeIdList(options.allow, "allow"); !s.ok()) {
    if (options.listen_fd >= 0) close(options.listen_fd);
    return s;
  }
  if (options.listen_fd >= 0) return ServeListening(loop, std::move(options));
  absl::StatusOr<SocketAddress> addr = ParseSocketAddress(options.listen);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = Listen(*addr);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<SocketAddress> bound = LocalAddress(*fd);
  auto server = std::make_unique<ServerImpl>(loop, std::move(options), *fd,
                                             bound.ok() ? *bound : *addr);
  if (absl::Status st = server->Start(); !st.ok()) return st;
  return std::unique_ptr<HboneServer>(std::move(server));
}

absl::StatusOr<std::unique_ptr<HboneClient>> HboneClient::New(EventLoop* loop,
                                                             ClientOptions options) {
  if (options.ssl_ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  return std::unique_ptr<HboneClient>(new ClientImpl(loop, std::move(options)));
}

absl::StatusOr<std::unique_ptr<HboneForwarder>> HboneForwarder::New(EventLoop* loop,
                                                                   HboneClient* client,
                                                                   ForwarderOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("client must not be NULL");
  absl::StatusOr<SocketAddress> addr = ParseSocketAddress(options.listen);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = Listen(*addr);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<SocketAddress> bound = LocalAddress(*fd);
  auto fwd = std::make_unique<ForwarderImpl>(loop, client, std::move(options), *fd,
                                             bound.ok() ? *bound : *addr);
  if (absl::Status st = fwd->Start(); !st.ok()) return st;
  return std::unique_ptr<HboneForwarder>(std::move(fwd));
}

}  // namespace ambient::runtime
