// HboneForwarder: each accepted TCP connection becomes one HBONE stream
// through an HboneClient.
#include "ambient/runtime/hbone_forwarder.h"
#include "absl/status/statusor.h"
#include "runtime/acceptor.h"

namespace ambient::runtime {

namespace {

class ForwarderImpl final : public HboneForwarder {
 public:
  ForwarderImpl(EventLoop* loop, HboneClient* client, ForwarderOptions options, int fd,
                SocketAddress addr)
      : client_(client), opts_(std::move(options)), addr_(addr) {
    AcceptorOptions ao;
    ao.component = "hbone";
    ao.name = addr_.ToString();
    acceptor_ =
        std::make_unique<Acceptor>(loop, fd, std::move(ao), [this](int c) { OnConnection(c); });
  }
  absl::Status Start() { return acceptor_->Start(); }
  SocketAddress address() const override { return addr_; }

 private:
  void OnConnection(int fd) {
    TunnelTarget t = opts_.target;
    if (absl::StatusOr<SocketAddress> peer = PeerAddress(fd); peer.ok()) {
      t.source_addr = *peer;
    }
    client_->Tunnel(t, fd, fd, /*owns_fds=*/true, nullptr);
  }

  HboneClient* client_;
  ForwarderOptions opts_;
  SocketAddress addr_;
  std::unique_ptr<Acceptor> acceptor_;  // no cap: nothing to release
};

}  // namespace

absl::StatusOr<std::unique_ptr<HboneForwarder>> HboneForwarder::New(EventLoop* loop,
                                                                    HboneClient* client,
                                                                    ForwarderOptions options) {
  if (client == nullptr) return absl::InvalidArgumentError("client must not be NULL");
  absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(options.listen);
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
