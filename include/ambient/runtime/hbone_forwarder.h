// ambient/runtime/hbone_forwarder.h: TCP to HBONE forwarder on an EventLoop.
//
// Object model. Each object lives on one EventLoop and must be used and
// destroyed on that loop's thread. Destroying an object aborts its
// connections; a client also cancels its TCP connects in flight (socket
// closed at once) and fails the tunnels waiting for them with Cancelled. TLS comes from an SSL_CTX
// the caller prepared (see ambient/hbone/tls_context.h); the object takes a reference to it.
//
//  - HboneForwarder turns each accepted TCP connection into one stream.
//
// Every finished tunnel produces an access log line (component "access",
// INFO, or ERROR with error=) on `log` and updates `metrics` when given.
// Workload metadata travels as ztunnel's `baggage` header
// (ambient/hbone/baggage.h): the client sends TunnelTarget::source_workload
// on CONNECT; the server records the request's baggage as the record's
// source workload and sends ServerOptions::workload on its 200; the client
// records the 200's baggage as the destination workload when
// TunnelTarget::destination_workload is empty.
#ifndef AMBIENT_RUNTIME_HBONE_FORWARDER_H_
#define AMBIENT_RUNTIME_HBONE_FORWARDER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/runtime/hbone_client.h"
#include "ambient/runtime/socket.h"

namespace ambient::runtime {

struct ForwarderOptions {
  std::string listen = "127.0.0.1:15001";
  TunnelTarget target;  // via, authority, expected identities
};

class HboneForwarder {
 public:
  static absl::StatusOr<std::unique_ptr<HboneForwarder>> New(EventLoop* loop, HboneClient* client,
                                                             ForwarderOptions options);
  virtual ~HboneForwarder() = default;
  virtual SocketAddress address() const = 0;
};

}  // namespace ambient::runtime

#endif  // AMBIENT_RUNTIME_HBONE_FORWARDER_H_
