#include "ambient/runtime/node_proxy.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/authz/ip.h"
#include "ambient/base/tls.h"
#include "ambient/hbone/record.h"
#include "ambient/hbone/tls_context.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/netns/pod_sockets.h"
#include "ambient/runtime/hbone_proxy.h"
#include "ambient/runtime/outbound_decision.h"
#include "ambient/runtime/socket.h"
#include "ambient/runtime/zds_client.h"
#include "runtime/acceptor.h"
#include "runtime/dialer.h"
#include "runtime/node_tcp_relay.h"

namespace ambient::runtime {

namespace {

// CanonicalIp spells an IP the way lookups compare it ("" when not an IP).
std::string CanonicalIp(absl::string_view ip) {
  absl::StatusOr<ambient::IpAddress> a = ambient::IpAddress::Parse(ip);
  return a.ok() ? a->ToString() : std::string();
}

}  // namespace

// ---------------------------------------------------------------------------
// Node proxy

namespace {

bool IsProxyPort(int port, const netns::PodListenerOptions& o) {
  return port == o.outbound_port || port == o.inbound_plaintext_port ||
         port == o.inbound_hbone_port;
}

// UnmappedText spells "[::ffff:a.b.c.d]:port" as "a.b.c.d:port"; other
// text is returned as it is.
std::string UnmappedText(const std::string& addr) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(addr);
  if (!a.ok()) return addr;
  return a->Unmapped().ToString();
}

// TelemetryOf returns the directory's metadata for the workload owning
// `ip` (empty when unknown).
hbone::WorkloadInfo TelemetryOf(const WorkloadDirectory& dir, absl::string_view ip) {
  std::optional<Workload> w = dir.ByAddress(ip);
  return w ? w->Telemetry() : hbone::WorkloadInfo();
}

// InboundServiceOf is dst.service for a connection to `w` on `port` ("" when
// no service of w's has that target port).
// The directory's current entry for w is used (its services may have
// changed since the pod was captured).
std::string InboundServiceOf(const WorkloadDirectory& dir, const Workload& w, int port) {
  WorkloadDirectory::View v = dir.Read();
  const Workload* now = v.WorkloadByUid(w.uid);
  const Service* s = v.InboundService(now ? *now : w, static_cast<uint16_t>(port));
  return s ? s->hostname : std::string();
}

void Emit(const LogSink& log, const hbone::ConnectionRecord& r) {
  if (log) {
    log(r.error.ok() ? LogLevel::kInfo : LogLevel::kError, "access", hbone::FormatAccessLog(r));
  }
}

// PlainInbound is a plaintext inbound connection (15006) being relayed,
// with what its authorization saw (RecheckPolicies).
struct PlainInbound {
  std::string pod_uid;
  SocketAddress peer;
  SocketAddress dst;
  int client_fd = -1;  // both owned by the relay; valid while in the set
  int upstream_fd = -1;
  absl::Status denied;  // set by RecheckPolicies: the record's error
};
// Shared with the relays' end callbacks, which may outlive the proxy.
struct PlainInboundSet {
  uint64_t next = 0;
  std::unordered_map<uint64_t, std::shared_ptr<PlainInbound>> open;
};

struct Pod {
  Pod(std::string u, Workload w, identity::SpiffeId id)
      : uid(std::move(u)), workload(std::move(w)), identity(std::move(id)) {}
  std::string uid;
  Workload workload;
  identity::SpiffeId identity;  // workload.Identity(), the SVID's ID
  netns::NetnsId netns_id;
  std::shared_ptr<netns::NetnsSocketFactory> factory;
  netns::PodListenerSet listeners;
  std::unique_ptr<HboneServer> server;
  std::unique_ptr<HboneClient> client;
  int outbound_fd = -1;
  int inbound_fd = -1;
  int hbone_port = 0;
  // Accept with back-off on EMFILE and the connection caps; shared so a
  // connection outliving its pod can tell a gone acceptor (weak_ptr).
  std::shared_ptr<Acceptor> outbound_accept;
  std::shared_ptr<Acceptor> inbound_accept;
  std::shared_ptr<void> attached;  // NodeProxyOptions::pod_attach's (destroyed first)
};

class NodeProxyImpl final : public NodeProxy {
 public:
  NodeProxyImpl(EventLoop* loop, NodeProxyOptions options)
      : loop_(loop), opts_(std::move(options)) {
    log_ = opts_.log;
    access_ = opts_.log;
    if (opts_.limits.max_connections != 0) {
      budget_ = std::make_shared<ConnectionBudget>(opts_.limits.max_connections);
    }
  }
  ~NodeProxyImpl() override {
    zds_.reset();  // no more pods from the agent
    pods_.clear();
  }

  absl::Status AddPod(const std::string& uid, const netns::zds::WorkloadInfo& info,
                      netns::Netns netns) override;
  bool RemovePod(const std::string& uid) override;
  std::vector<PodInfo> pods() const override;
  absl::Status StartZds(netns::zds::ZdsProxyOptions options) override;
  void StopZds() override {
    if (zds_) zds_->Stop();
  }
  const netns::zds::ProxySession* zds() const override { return zds_ ? &zds_->session() : nullptr; }
  size_t RecheckPolicies() override;

  void Log(LogLevel level, absl::string_view message) const {
    if (log_) log_(level, "node-proxy", message);
  }

 private:
  absl::StatusOr<std::unique_ptr<Pod>> Capture(const std::string& uid, const Workload& w,
                                               netns::Netns netns);
  void OnOutbound(Pod* pod);
  void OnInboundPlaintext(Pod* pod);
  void Passthrough(Pod* pod, int fd, std::function<void()> release, const SocketAddress& peer,
                   const SocketAddress& dst, const std::optional<Workload>& destination);
  // Forward connects `fd` to `dst` from inside `pod` (as an inbound hop when
  // `inbound`, keeping the client's IP) and relays plain TCP.
  void Forward(Pod* pod, int fd, std::function<void()> release, hbone::RecordBuilder record,
               const SocketAddress& peer, const SocketAddress& dst, bool inbound);
  // `src_identity`: the client's verified SPIFFE ID, NULL for plaintext.
  absl::Status Authorize(const Workload& w, const SocketAddress& src, const SocketAddress& dst,
                         const identity::SpiffeId* src_identity) const;
  SocketMaker InboundSocketMaker(const Pod& pod, const SocketAddress& client) const;
  // AuthorizeInbound checks a connection to `pod` against the directory's
  // entry for its workload now (its selected policies may have changed
  // since capture). A captured pod whose workload left the directory (xDS
  // removed it) is refused, as ztunnel refuses inbound traffic to a
  // workload it does not know.
  absl::Status AuthorizeInbound(const Pod& pod, const SocketAddress& src, const SocketAddress& dst,
                                const identity::SpiffeId* src_identity) const {
    // Under the directory's shared lock, no copy (this runs per connection);
    // Authorize does not use the directory.
    WorkloadDirectory::View v = opts_.workloads->Read();
    const Workload* now = v.WorkloadByUid(pod.workload.uid);
    if (now == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("workload ", pod.workload.uid, " is no longer in the workload directory"));
    }
    return Authorize(*now, src, dst, src_identity);
  }

  EventLoop* loop_;
  NodeProxyOptions opts_;
  LogSink log_;
  LogSink access_;
  std::map<std::string, std::unique_ptr<Pod>> pods_;
  // All pods' 15001/15006 connections (limits.max_connections); null: no cap.
  std::shared_ptr<ConnectionBudget> budget_;
  std::unique_ptr<ZdsClient> zds_;  // after pods_: destroyed first
  std::shared_ptr<PlainInboundSet> plain_ = std::make_shared<PlainInboundSet>();
};

size_t NodeProxyImpl::RecheckPolicies() {
  size_t closed = 0;
  for (auto& [uid, pod] : pods_) closed += pod->server->Recheck();
  std::vector<std::shared_ptr<PlainInbound>> denied;
  for (const auto& [key, c] : plain_->open) {
    if (!c->denied.ok()) continue;
    auto pod = pods_.find(c->pod_uid);
    if (pod == pods_.end()) continue;
    absl::Status st = AuthorizeInbound(*pod->second, c->peer, c->dst, nullptr);
    if (st.ok()) continue;
    c->denied = absl::PermissionDeniedError(
        absl::StrCat("connection closed due to policy change: ", st.message()));
    denied.push_back(c);
  }
  // The relay sees both ends shut and ends (closing the fds itself).
  for (const std::shared_ptr<PlainInbound>& c : denied) {
    shutdown(c->client_fd, SHUT_RDWR);
    shutdown(c->upstream_fd, SHUT_RDWR);
  }
  closed += denied.size();
  if (closed > 0) {
    Log(LogLevel::kInfo, absl::StrCat("policy change: ", closed,
                                      " inbound connection(s) no longer allowed, closed"));
  }
  return closed;
}

absl::Status NodeProxyImpl::StartZds(netns::zds::ZdsProxyOptions options) {
  if (zds_) return absl::FailedPreconditionError("ZDS already started");
  if (!options.log) options.log = log_;
  ZdsClientHandlers h;
  // AddPod is synchronous: the result goes back before add returns.
  h.add = [this](uint64_t call, const std::string& uid, const netns::zds::WorkloadInfo& info,
                 netns::Netns netns) {
    absl::Status st = AddPod(uid, info, std::move(netns));
    zds_->AddDone(call, st).IgnoreError();
  };
  h.remove = [this](const std::string& uid) { RemovePod(uid); };
  h.snapshot_complete = [this] {
    Log(LogLevel::kInfo, absl::StrCat("ZDS snapshot applied: ", pods_.size(), " pod(s) captured"));
  };
  h.disconnected = [this](const absl::Status& why) {
    if (absl::IsCancelled(why)) return;
    Log(LogLevel::kWarn, absl::StrCat("ZDS connection to the node agent lost: ", why.ToString()));
  };
  absl::StatusOr<std::unique_ptr<ZdsClient>> client =
      ZdsClient::New(loop_, std::move(options), std::move(h));
  if (!client.ok()) return client.status();
  zds_ = std::move(*client);
  return zds_->Start();
}

absl::Status NodeProxyImpl::AddPod(const std::string& uid, const netns::zds::WorkloadInfo& info,
                                   netns::Netns netns) {
  if (uid.empty()) return absl::InvalidArgumentError("empty pod uid");
  if (!netns.valid()) return absl::InvalidArgumentError("empty netns handle");
  if (auto it = pods_.find(uid); it != pods_.end()) {
    if (it->second->netns_id == netns.id()) return absl::OkStatus();
    Log(LogLevel::kInfo, absl::StrCat("pod ", uid, " came back in another netns; recapturing"));
    RemovePod(uid);
  }
  std::optional<Workload> w;
  if (opts_.match_pod) {
    absl::StatusOr<Workload> matched = opts_.match_pod(uid, info);
    if (!matched.ok()) {
      Log(LogLevel::kWarn, absl::StrCat("pod ", uid, ": ", matched.status().message()));
      return matched.status();
    }
    w = *std::move(matched);
  }
  if (!w) w = opts_.workloads->ByUid(uid);
  if (!w) w = opts_.workloads->ByName(info.ns, info.name);
  if (!w) {
    return absl::NotFoundError(absl::StrCat("pod ", uid, " (", info.ns, "/", info.name,
                                            ") is not in the workload directory"));
  }
  // One netns is one pod: a second uid handed the same namespace would get a
  // second set of listeners on the same ports (SO_REUSEPORT), and connections
  // would be split between the two pods' identities at random.
  for (const auto& [other_uid, other] : pods_) {
    if (other->netns_id == netns.id()) {
      absl::Status refused = absl::AlreadyExistsError(
          absl::StrCat("netns ", netns.id().ToString(), " is already captured for pod ", other_uid,
                       "; refusing it for pod ", uid));
      Log(LogLevel::kError, std::string(refused.message()));
      return refused;
    }
  }
  absl::StatusOr<std::unique_ptr<Pod>> pod = Capture(uid, *w, std::move(netns));
  if (!pod.ok()) {
    Log(LogLevel::kError, absl::StrCat("pod ", uid, ": ", pod.status().ToString()));
    return pod.status();
  }
  Log(LogLevel::kInfo,
      absl::StrCat("pod ", uid, " (", w->ns, "/", w->name, ", ", (*pod)->identity.str(),
                   ") captured in netns ", (*pod)->netns_id.ToString(),
                   ": listening on :", opts_.listeners.outbound_port, " :",
                   opts_.listeners.inbound_plaintext_port, " :", (*pod)->hbone_port));
  pods_[uid] = std::move(*pod);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Pod>> NodeProxyImpl::Capture(const std::string& uid,
                                                            const Workload& w, netns::Netns netns) {
  absl::StatusOr<identity::SpiffeId> id = w.Identity();
  if (!id.ok()) return id.status();
  absl::StatusOr<std::shared_ptr<identity::CredentialHolder>> holder = opts_.credentials(w);
  if (!holder.ok()) return holder.status();
  std::shared_ptr<const identity::Credentials> creds = *holder ? (*holder)->Get() : nullptr;
  if (!creds) return absl::FailedPreconditionError(absl::StrCat("no SVID for ", id->str()));
  if (creds->id() != *id) {
    return absl::FailedPreconditionError(absl::StrCat("SVID is for ", creds->id().str(),
                                                      ", the workload's identity is ", id->str()));
  }
  absl::StatusOr<tls::UniquePtr<SSL_CTX>> server_ctx =
      hbone::NewServerContext(*holder, opts_.bundles);
  if (!server_ctx.ok()) return server_ctx.status();
  absl::StatusOr<tls::UniquePtr<SSL_CTX>> client_ctx =
      hbone::NewClientContext(*holder, opts_.bundles);
  if (!client_ctx.ok()) return client_ctx.status();

  auto pod = std::make_unique<Pod>(uid, w, *id);
  pod->netns_id = netns.id();
  pod->factory = std::make_shared<netns::NetnsSocketFactory>(std::move(netns));
  absl::StatusOr<netns::PodListenerSet> listeners =
      netns::PodListenerSet::Open(*pod->factory, opts_.listeners);
  if (!listeners.ok()) return listeners.status();
  pod->listeners = std::move(*listeners);
  const netns::PodListener* out = pod->listeners.Find(netns::ListenerKind::kOutbound);
  const netns::PodListener* in = pod->listeners.Find(netns::ListenerKind::kInboundPlaintext);
  const netns::PodListener* hb = pod->listeners.Find(netns::ListenerKind::kInboundHbone);
  if (out == nullptr || in == nullptr || hb == nullptr) {
    return absl::InternalError("in-pod listener set lacks a TCP listener");
  }
  pod->hbone_port = hb->local.port();
  if (opts_.pod_attach) {
    absl::StatusOr<std::shared_ptr<void>> a = opts_.pod_attach(w, pod->listeners, pod->factory);
    if (!a.ok()) return a.status();
    pod->attached = std::move(*a);
  }

  ServerOptions so;
  so.listen_fd = fcntl(hb->fd.get(), F_DUPFD_CLOEXEC, 0);
  if (so.listen_fd < 0) return absl::ResourceExhaustedError("dup of the 15008 listener failed");
  so.ssl_ctx = server_ctx->get();
  so.settings = opts_.settings;
  so.connect_timeout = opts_.connect_timeout;
  so.limits = opts_.limits.hbone;
  so.log = access_;
  so.metrics = opts_.metrics;
  // ztunnel's inbound lines carry our identity as dst.identity and our
  // workload; the client's workload comes from the directory by source IP
  // (trusted), completed by what its baggage said.
  so.identity = *id;
  so.workload = w.Telemetry();
  so.annotate = [dir = opts_.workloads, w](hbone::ConnectionRecord* r) {
    r->src_addr = UnmappedText(r->src_addr);
    r->dst_addr = UnmappedText(r->dst_addr);
    if (r->dst_service.empty()) {
      if (absl::StatusOr<SocketAddress> target = SocketAddress::Parse(r->dst_hbone_addr);
          target.ok()) {
        r->dst_service = InboundServiceOf(*dir, w, target->port());
      }
    }
    absl::StatusOr<SocketAddress> src = SocketAddress::Parse(r->src_addr);
    if (!src.ok()) return;
    hbone::WorkloadInfo known = TelemetryOf(*dir, src->IpString());
    if (known.empty()) return;
    known.Merge(r->src);
    r->src = std::move(known);
  };
  Pod* p = pod.get();
  so.authorize = [this, p](const InboundStream& s) {
    return AuthorizeInbound(*p, s.peer.Unmapped(), s.upstream.Unmapped(), &s.peer_identity);
  };
  so.upstream_socket = [this, p](const SocketAddress& upstream,
                                 const SocketAddress& client) -> absl::StatusOr<int> {
    return InboundSocketMaker(*p, client.Unmapped())(upstream);
  };
  absl::StatusOr<std::unique_ptr<HboneServer>> server = HboneServer::New(loop_, std::move(so));
  if (!server.ok()) return server.status();
  pod->server = std::move(*server);

  ClientOptions co;
  co.ssl_ctx = client_ctx->get();
  co.bundles = opts_.bundles;
  co.identity = *id;
  co.settings = opts_.settings;
  co.connect_timeout = opts_.connect_timeout;
  co.log = access_;
  co.metrics = opts_.metrics;
  co.dial_socket = [factory = pod->factory,
                    mark = opts_.listeners.mark](const SocketAddress& via) -> absl::StatusOr<int> {
    absl::StatusOr<netns::UniqueFd> fd =
        netns::OutboundUpstreamSocket(*factory, via.family(), mark);
    if (!fd.ok()) return fd.status();
    return fd->release();
  };
  absl::StatusOr<std::unique_ptr<HboneClient>> client = HboneClient::New(loop_, std::move(co));
  if (!client.ok()) return client.status();
  pod->client = std::move(*client);

  pod->outbound_fd = out->fd.get();
  pod->inbound_fd = in->fd.get();
  AcceptorOptions ao;
  ao.owns_fd = false;  // the listener set closes them
  ao.max_connections = opts_.limits.max_connections_per_listener;
  ao.budget = budget_;
  ao.log = log_;
  ao.component = "node-proxy";
  ao.name = absl::StrCat("pod ", pod->uid, " :", opts_.listeners.outbound_port);
  pod->outbound_accept =
      Acceptor::Pulling(loop_, pod->outbound_fd, ao, [this, p] { OnOutbound(p); });
  ao.name = absl::StrCat("pod ", pod->uid, " :", opts_.listeners.inbound_plaintext_port);
  pod->inbound_accept =
      Acceptor::Pulling(loop_, pod->inbound_fd, ao, [this, p] { OnInboundPlaintext(p); });
  if (absl::Status st = pod->outbound_accept->Start(); !st.ok()) return st;
  if (absl::Status st = pod->inbound_accept->Start(); !st.ok()) return st;
  return pod;
}

bool NodeProxyImpl::RemovePod(const std::string& uid) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) return false;
  std::string who = absl::StrCat(it->second->workload.ns, "/", it->second->workload.name);
  pods_.erase(it);
  Log(LogLevel::kInfo,
      absl::StrCat("pod ", uid, " (", who, ") released: its listeners are closed"));
  return true;
}

std::vector<PodInfo> NodeProxyImpl::pods() const {
  std::vector<PodInfo> out;
  for (const auto& [uid, pod] : pods_) {
    out.push_back(PodInfo{uid, absl::StrCat(pod->workload.ns, "/", pod->workload.name),
                          pod->identity, pod->netns_id, pod->hbone_port});
  }
  return out;
}

absl::Status NodeProxyImpl::Authorize(const Workload& w, const SocketAddress& src,
                                      const SocketAddress& dst,
                                      const identity::SpiffeId* src_identity) const {
  if (IsProxyPort(dst.port(), opts_.listeners)) {
    return absl::PermissionDeniedError(
        absl::StrCat("destination port ", dst.port(), " is one of the proxy's own ports"));
  }
  std::string dst_ip = CanonicalIp(dst.IpString());
  bool ours = false;
  for (const std::string& a : w.addresses) ours = ours || CanonicalIp(a) == dst_ip;
  if (!ours) {
    return absl::PermissionDeniedError(absl::StrCat(
        "destination ", dst.ToString(), " is not an address of pod ", w.ns, "/", w.name));
  }
  if (!opts_.policies) return absl::OkStatus();
  authz::Connection conn;
  if (!src.empty()) conn.src_ip = src.ip();
  conn.src_port = static_cast<uint16_t>(src.port());
  if (!dst.empty()) conn.dst_ip = dst.ip();
  conn.dst_port = static_cast<uint16_t>(dst.port());
  if (src_identity != nullptr) {
    if (absl::StatusOr<identity::IstioIdentity> id =
            identity::IstioIdentity::Parse(src_identity->str());
        id.ok()) {
      conn.src_identity = *id;
    }
  }
  authz::Workload target;
  target.ns = w.ns;
  target.policies = w.policies;
  authz::Decision d = opts_.policies->Check(target, conn);
  if (!d.allowed) return absl::PermissionDeniedError(d.reason);
  return absl::OkStatus();
}

SocketMaker NodeProxyImpl::InboundSocketMaker(const Pod& pod, const SocketAddress& client) const {
  return [factory = pod.factory, mark = opts_.listeners.mark, keep = opts_.keep_source_ip, client,
          log = log_](const SocketAddress& upstream) -> absl::StatusOr<int> {
    if (keep) {
      absl::StatusOr<netns::UniqueFd> fd =
          netns::InboundUpstreamSocket(*factory, client, upstream, mark);
      if (fd.ok()) return fd->release();
      if (log) {
        log(LogLevel::kDebug, "node-proxy",
            absl::StrCat("cannot keep the client's IP ", client.IpString(), ": ",
                         fd.status().ToString(), "; connecting from the pod's own IP"));
      }
    }
    absl::StatusOr<netns::UniqueFd> fd =
        netns::OutboundUpstreamSocket(*factory, upstream.family(), mark);
    if (!fd.ok()) return fd.status();
    return fd->release();
  };
}

namespace {

// Releaser returns what a connection from `acceptor` calls once when it is
// over (loop thread): it gives its place back under the connection caps; a
// no-op when the pod (and so the acceptor) is gone.
std::function<void()> Releaser(const std::shared_ptr<Acceptor>& acceptor) {
  return [weak = std::weak_ptr<Acceptor>(acceptor)] {
    if (std::shared_ptr<Acceptor> a = weak.lock()) a->Release();
  };
}

}  // namespace

void NodeProxyImpl::OnOutbound(Pod* pod) {
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<int> fd = pod->outbound_accept->Next();
    if (!fd.ok()) return;
    std::function<void()> release = Releaser(pod->outbound_accept);
    absl::StatusOr<ambient::SocketAddress> orig = netns::OriginalDestination(*fd);
    absl::StatusOr<SocketAddress> peer = PeerAddress(*fd);
    if (!orig.ok() || !peer.ok()) {
      Log(LogLevel::kWarn, absl::StrCat("outbound connection in pod ", pod->uid, " dropped: ",
                                        (!orig.ok() ? orig.status() : peer.status()).ToString()));
      AbortClose(*fd);
      release();
      continue;
    }
    SocketAddress dst = orig->Unmapped();
    *peer = peer->Unmapped();
    std::optional<Workload> target = opts_.workloads->ByAddress(dst.IpString());
    if (IsProxyPort(dst.port(), opts_.listeners) && target && target->uid == pod->uid) {
      Log(LogLevel::kWarn,
          absl::StrCat("pod ", pod->uid, ": refused a connection to its own proxy port ",
                       dst.ToString()));
      AbortClose(*fd);
      release();
      continue;
    }
    absl::StatusOr<OutboundRoute> route =
        DecideOutbound(opts_.workloads->Read(), pod->workload, *peer, dst,
                       static_cast<uint16_t>(opts_.listeners.inbound_hbone_port));
    if (!route.ok()) {
      // ztunnel refuses the connection and logs it (e.g. "no healthy
      // upstream: VIP:port").
      AbortClose(*fd);
      release();
      hbone::RecordBuilder r(hbone::Direction::kOutbound);
      r.Source(peer->ToString(), pod->identity, pod->workload.Telemetry())
          .Destination(dst.ToString());
      if (!dst.empty()) {
        std::optional<Service> svc = opts_.workloads->ServiceByVip(
            NetworkAddress{pod->workload.network, dst.ip()}, pod->workload.ns);
        if (svc) r.Service(svc->hostname);
      }
      Emit(access_, r.Refused(route.status(), "-"));
      continue;
    }
    if (route->kind == OutboundRoute::Kind::kPassthrough) {
      Passthrough(pod, *fd, std::move(release), *peer, route->next_hop, route->destination);
      continue;
    }
    TunnelTarget t;
    t.via = route->next_hop;
    t.authority = route->hbone_target.ToString();
    t.expected_identities = route->expected_identities;
    t.source_addr = *peer;
    t.source_workload = pod->workload.Telemetry();
    if (route->destination) t.destination_workload = route->destination->Telemetry();
    t.destination_service = route->destination_service;
    pod->client->Tunnel(t, *fd, *fd, /*owns_fds=*/true,
                        [release = std::move(release)](const TunnelResult&) { release(); });
  }
}

void NodeProxyImpl::Passthrough(Pod* pod, int fd, std::function<void()> release,
                                const SocketAddress& peer, const SocketAddress& dst,
                                const std::optional<Workload>& destination) {
  hbone::RecordBuilder r(hbone::Direction::kOutbound);
  r.Source(peer.ToString(), std::nullopt, pod->workload.Telemetry())
      .Destination(dst.ToString(), std::nullopt,
                   destination ? destination->Telemetry() : hbone::WorkloadInfo{});
  Forward(pod, fd, std::move(release), std::move(r), peer, dst, /*inbound=*/false);
}

void NodeProxyImpl::OnInboundPlaintext(Pod* pod) {
  for (int i = 0; i < 64; ++i) {
    absl::StatusOr<int> fd = pod->inbound_accept->Next();
    if (!fd.ok()) return;
    std::function<void()> release = Releaser(pod->inbound_accept);
    absl::StatusOr<ambient::SocketAddress> orig = netns::OriginalDestination(*fd);
    absl::StatusOr<SocketAddress> peer = PeerAddress(*fd);
    if (!orig.ok() || !peer.ok()) {
      AbortClose(*fd);
      release();
      continue;
    }
    SocketAddress dst = orig->Unmapped();
    *peer = peer->Unmapped();
    hbone::RecordBuilder r(hbone::Direction::kInbound);
    r.Source(peer->ToString(), std::nullopt, TelemetryOf(*opts_.workloads, peer->IpString()))
        .Destination(dst.ToString(), pod->identity, pod->workload.Telemetry())
        .Service(InboundServiceOf(*opts_.workloads, pod->workload, dst.port()));
    if (absl::Status st = AuthorizeInbound(*pod, *peer, dst, nullptr); !st.ok()) {
      AbortClose(*fd);
      release();
      Emit(access_, r.Refused(std::move(st), "DENY"));
      continue;
    }
    Forward(pod, *fd, std::move(release), std::move(r), *peer, dst, /*inbound=*/true);
  }
}

void NodeProxyImpl::Forward(Pod* pod, int fd, std::function<void()> release,
                            hbone::RecordBuilder record, const SocketAddress& peer,
                            const SocketAddress& dst, bool inbound) {
  SocketMaker make;
  if (inbound) {
    make = InboundSocketMaker(*pod, peer);
  } else {
    make = [factory = pod->factory,
            mark = opts_.listeners.mark](const SocketAddress& a) -> absl::StatusOr<int> {
      absl::StatusOr<netns::UniqueFd> s = netns::OutboundUpstreamSocket(*factory, a.family(), mark);
      if (!s.ok()) return s.status();
      return s->release();
    };
  }
  record.Started(loop_->Now());
  // An inbound connection is kept in plain_ while relayed, for RecheckPolicies.
  std::shared_ptr<PlainInbound> tracked;
  if (inbound) {
    tracked = std::make_shared<PlainInbound>();
    tracked->pod_uid = pod->uid;
    tracked->peer = peer;
    tracked->dst = dst;
    tracked->client_fd = fd;
  }
  DialWith(loop_, dst, opts_.connect_timeout, std::move(make),
           [loop = loop_, log = access_, record, fd, release = std::move(release), plain = plain_,
            tracked](absl::StatusOr<int> up) {
             if (!up.ok()) {
               AbortClose(fd);
               release();
               Emit(log, record.Failed(up.status(), "CONNECT", loop->Now()));
               return;
             }
             uint64_t key = 0;
             if (tracked) {
               tracked->upstream_fd = *up;
               key = ++plain->next;
               plain->open[key] = tracked;
             }
             StartTcpRelay(loop, fd, *up,
                           [log, record, release, plain, tracked, key](const TcpRelayResult& res) {
                             release();
                             absl::Status status = res.status;
                             absl::string_view flags = "CONNECT";
                             if (tracked) {
                               plain->open.erase(key);
                               if (!tracked->denied.ok()) {
                                 status = tracked->denied;
                                 flags = "DENY";
                               }
                             }
                             // sent: toward the remote side (outbound: client ->
                             // upstream; inbound: app -> client).
                             bool outbound =
                                 record.record().direction == hbone::Direction::kOutbound;
                             hbone::Transfer t{outbound ? res.a_to_b : res.b_to_a,
                                               outbound ? res.b_to_a : res.a_to_b};
                             Emit(log, record.Closed(t, std::move(status), res.ended, flags));
                           });
           });
}

}  // namespace

absl::StatusOr<std::unique_ptr<NodeProxy>> NodeProxy::New(EventLoop* loop,
                                                          NodeProxyOptions options) {
  if (loop == nullptr) return absl::InvalidArgumentError("loop must not be NULL");
  if (!options.workloads) return absl::InvalidArgumentError("a workload directory is required");
  if (!options.bundles) return absl::InvalidArgumentError("trust bundles are required");
  if (!options.credentials) return absl::InvalidArgumentError("a credentials source is required");
  return std::unique_ptr<NodeProxy>(new NodeProxyImpl(loop, std::move(options)));
}

}  // namespace ambient::runtime
