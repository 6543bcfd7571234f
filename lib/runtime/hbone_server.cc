// HboneServer: accepts HBONE connections and carries each CONNECT to its
// upstream (a TCP connect, or one more HBONE hop: runtime/hbone_hop.h). The
// decision on each CONNECT is hbone::ServerDecision's; this file is its host.
#include <openssl/ssl.h>
#include <unistd.h>

#include <unordered_map>
#include <unordered_set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "ambient/hbone/record.h"
#include "ambient/hbone/server_decision.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/runtime/hbone_server.h"
#include "runtime/acceptor.h"
#include "runtime/dialer.h"
#include "runtime/hbone_hop.h"
#include "runtime/hbone_inbound.h"
#include "runtime/hbone_records.h"
#include "runtime/relay.h"
#include "runtime/session.h"

namespace ambient::runtime {

namespace {

hbone::PendingLimits PendingLimitsOf(const ServerLimits& limits) {
  hbone::PendingLimits p;
  p.per_connection = limits.max_pending_dials_per_connection;
  p.per_identity = limits.max_pending_dials_per_identity;
  return p;
}

// Carried is a stream being relayed, with what authorize saw, for Recheck.
// Shared with the relay's end callback (which may run after the server is
// gone), hence the shared set.
struct Carried {
  Carried(Session* s, hbone::StreamId i, InboundStream st)
      : session(s), id(i), stream(std::move(st)) {}
  Session* session;
  hbone::StreamId id;
  InboundStream stream;
  absl::Status denied;  // set by Recheck: the record's error
};
using CarriedSet = std::unordered_map<uint64_t, std::shared_ptr<Carried>>;

class ServerImpl final : public HboneServer, public SessionOwner, public InboundHost {
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
    // CONNECTs waiting on their upstream no longer report to us.
    for (PendingUpstream* p : pending_) p->Orphan();
    pending_.clear();
    // Sessions outlive us only until the loop runs their deferred deletes;
    // detach them from us and abort them (their pending upstreams are
    // cancelled when their streams close).
    for (auto& [id, s] : sessions_) {
      s->set_owner(OrphanSessionOwner());
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
  size_t Recheck() override;
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

  // SessionOwner
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
                absl::StrCat("connection from ", session->peer().ToString(),
                             " ended: ", status.ToString()));
    }
  }

  // InboundHost
  void Track(PendingUpstream* p) override { pending_.insert(p); }
  void Forget(PendingUpstream* p) override { pending_.erase(p); }
  void UpstreamSettled(const InboundConnect& in) override {
    decision_.Release(in.sid, *in.identity);
  }
  void UpstreamCancelled(const InboundConnect& in, const absl::Status& why) override {
    decision_.Release(in.sid, *in.identity);
    ++stats_.cancelled_dials;
    hbone::ConnectionRecord r =
        Record(in.session, in.request)
            .Started(in.started)
            .Failed(absl::CancelledError(absl::StrCat(
                        "upstream connect cancelled: ",
                        why.ok() ? "the client reset the stream" : std::string(why.message()))),
                    "CONNECT", loop_->Now());
    if (opts_.metrics) opts_.metrics->ConnectionOpened(r);
    EmitRecord(opts_.log, opts_.metrics, r);
  }
  void UpstreamFailed(const InboundConnect& in, absl::Status why) override {
    Answer(in.session, in.id,
           hbone::ServerDecision::UpstreamFailed(std::move(why), Record(in.session, in.request)));
  }
  bool Reply(const InboundConnect& in, int fd, std::function<void(absl::Status*)> on_end) override;

 private:
  void OnConnection(int fd) {
    hbone::ConnectionOptions co;
    co.role = hbone::Role::kServer;
    co.ssl_ctx = opts_.ssl_ctx;
    co.settings = opts_.settings;
    co.log = opts_.log;
    absl::StatusOr<std::unique_ptr<hbone::Connection>> conn = hbone::Connection::New(std::move(co));
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
    acceptor_->SetHeld(opts_.limits.max_handshakes != 0 &&
                       handshaking_.size() >= opts_.limits.max_handshakes);
  }

  // Record is what this server knows of stream `request` on `session`: the
  // client (address, identity, workload from the request's baggage), us
  // (listener, identity, workload), then the host's annotate hook.
  hbone::RecordBuilder Record(Session* session, const hbone::ConnectRequest& request) const {
    hbone::RecordBuilder b = hbone::RecordBuilder::ForConnect(hbone::Direction::kInbound, request);
    const std::optional<identity::SpiffeId>& peer = session->conn()->PeerIdentity();
    b.Source(session->peer_text(), peer)
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

  // ConnectTcp connects `in`'s upstream `upstream` over TCP, then answers.
  void ConnectTcp(const InboundConnect& in, const SocketAddress& upstream);

  EventLoop* loop_;
  ServerOptions opts_;
  SocketAddress addr_;
  std::unique_ptr<Acceptor> acceptor_;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, Session*> sessions_;
  std::unordered_map<Session*, uint64_t> ids_;
  std::unordered_set<Session*> handshaking_;
  std::unordered_set<PendingUpstream*> pending_;  // CONNECTs waiting on their upstream
  hbone::ServerDecision decision_;                // allow list, pending-dial counts
  ServerStats stats_;
  std::shared_ptr<CarriedSet> carried_ = std::make_shared<CarriedSet>();
  uint64_t next_carried_ = 0;
};

size_t ServerImpl::Recheck() {
  if (!opts_.authorize) return 0;
  std::vector<std::shared_ptr<Carried>> denied;
  for (const auto& [key, c] : *carried_) {
    if (!c->denied.ok()) continue;  // already being ended
    absl::Status st = opts_.authorize(c->stream);
    if (st.ok()) continue;
    c->denied = absl::PermissionDeniedError(
        absl::StrCat("connection closed due to policy change: ", st.message()));
    denied.push_back(c);
  }
  for (const std::shared_ptr<Carried>& c : denied) {
    c->session->conn()->StreamReset(c->id, hbone::ResetCode::kConnectError).IgnoreError();
    c->session->Kick();
  }
  stats_.policy_closed += denied.size();
  return denied.size();
}

void ServerImpl::OnStreamRequest(Session* session, hbone::StreamId id,
                                 const hbone::ConnectRequest& request) {
  // Streams arrive only after the handshake's peer check set it.
  const identity::SpiffeId& peer = *session->conn()->PeerIdentity();
  absl::StatusOr<SocketAddress> upstream = absl::UnavailableError("not resolved");
  Upstream hop;
  hbone::ServerDecision::HostChecks checks;
  checks.resolve = [&]() -> absl::Status {
    upstream = SocketAddress::Parse(request.authority);
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
  hbone::StreamAnswer answer =
      decision_.Decide(sid, peer, checks, [&] { return Record(session, request); });
  if (!answer.accepted()) {
    if (answer.stage == hbone::StreamAnswer::Stage::kLimit) ++stats_.refused_streams;
    Answer(session, id, answer);
    return;
  }
  InboundConnect in;
  in.session = session;
  in.sid = sid;
  in.id = id;
  in.request = request;
  in.identity = peer;
  in.started = loop_->Now();
  if (hop.client != nullptr) {
    StartHop(this, in, hop);
  } else {
    ConnectTcp(in, *upstream);
  }
}

void ServerImpl::ConnectTcp(const InboundConnect& in, const SocketAddress& upstream) {
  SocketMaker make;
  if (opts_.upstream_socket) {
    make = [f = opts_.upstream_socket, client = in.session->peer()](const SocketAddress& a) {
      return f(a, client);
    };
  }
  PendingUpstream* p = PendingUpstream::Attach(this, in);
  Dialing* dial = DialWith(loop_, upstream, opts_.connect_timeout, std::move(make),
                           [p](absl::StatusOr<int> fd) {
                             // Not called once cancelled: the stream is still there.
                             InboundHost* host = p->Settle();
                             if (host == nullptr) {
                               if (fd.ok()) close(*fd);
                             } else if (!fd.ok()) {
                               host->UpstreamFailed(p->in(), fd.status());
                             } else {
                               host->Reply(p->in(), *fd, nullptr);
                             }
                           });
  p->set_cancel([dial] { CancelDial(dial); });
}

bool ServerImpl::Reply(const InboundConnect& in, int fd,
                       std::function<void(absl::Status*)> on_end) {
  std::vector<hbone::Header> answer;
  if (!opts_.workload.empty()) {
    answer.push_back({"baggage", hbone::BuildBaggage(opts_.workload)});
  }
  if (!in.session->conn()->AcceptStream(in.id, answer).ok()) {
    close(fd);  // the client gave up meanwhile
    return false;
  }
  hbone::RecordBuilder base = Record(in.session, in.request);
  base.Started(in.started);
  if (opts_.metrics) opts_.metrics->ConnectionOpened(base.Opened());
  // Kept for Recheck while it is carried (with the same inputs authorize had).
  std::shared_ptr<Carried> carried;
  uint64_t key = 0;
  if (opts_.authorize) {
    absl::StatusOr<SocketAddress> upstream = SocketAddress::Parse(in.request.authority);
    if (upstream.ok()) {
      carried = std::make_shared<Carried>(
          in.session, in.id,
          InboundStream{*in.identity, in.session->peer(), *upstream, in.request.authority});
      key = ++next_carried_;
      (*carried_)[key] = carried;
    }
  }
  auto* relay = new Relay(
      in.session, in.id, fd, fd, /*owns_fds=*/true,
      [log = opts_.log, metrics = opts_.metrics, base, on_end = std::move(on_end), set = carried_,
       carried, key](const RelayResult& res) {
        absl::Status status = res.status;
        if (on_end) on_end(&status);
        absl::string_view flags = "CONNECT";
        if (carried) {
          set->erase(key);
          if (!carried->denied.ok()) {
            status = carried->denied;
            flags = "DENY";
          }
        }
        // Inbound: sent = app -> client, recv = client -> app.
        EmitRecord(
            log, metrics,
            base.Closed({res.fd_to_stream, res.stream_to_fd}, std::move(status), res.ended, flags));
      });
  relay->Start();
  in.session->Kick();
  return true;
}

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
  if (options.listen_fd >= 0) return ServeListening(loop, std::move(options));
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(options.listen);
  if (!addr.ok()) return addr.status();
  absl::StatusOr<int> fd = Listen(*addr);
  if (!fd.ok()) return fd.status();
  absl::StatusOr<SocketAddress> bound = LocalAddress(*fd);
  auto server =
      std::make_unique<ServerImpl>(loop, std::move(options), *fd, bound.ok() ? *bound : *addr);
  if (absl::Status st = server->Start(); !st.ok()) return st;
  return std::unique_ptr<HboneServer>(std::move(server));
}

}  // namespace ambient::runtime
