// ambient/grpc/tls.h: a gRPC channel over server-verified TLS, sans I/O.
//
// istiod serves xDS and the CA over TLS on :15012 with a certificate for its
// service name (istiod.istio-system.svc) issued by the mesh's root; the
// client presents no certificate (it authenticates with a bearer token in
// the metadata). NewTlsChannel wraps a Channel (ambient/grpc/channel.h) in
// such a TLS client: the host moves ciphertext exactly as it would move the
// plain channel's bytes, and everything else (calls, events, deadlines) is
// the Channel interface. The handshake offers ALPN h2, sends `server_name`
// as SNI and requires the server's certificate to chain to the context's
// roots and to name `server_name` (DNS SAN, or an IP SAN when it is an IP).
// A failed handshake or a bad record breaks the channel: error() says why,
// every call ends with Unavailable.
//
// Threads: as Channel.
#ifndef AMBIENT_GRPC_TLS_H_
#define AMBIENT_GRPC_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/grpc/channel.h"

struct ssl_ctx_st;  // the TLS library's SSL_CTX

namespace ambient::grpc {

// NewClientTlsContext makes the SSL_CTX for NewTlsChannel: TLS 1.2 or 1.3,
// peer verification against the certificates in `roots_pem` (one or more
// PEM certificates) and nothing else. The caller owns the returned
// reference (release it with FreeTlsContext). Errors: InvalidArgument when
// `roots_pem` holds no certificate or one that does not parse.
absl::StatusOr<ssl_ctx_st*> NewClientTlsContext(absl::string_view roots_pem);
void FreeTlsContext(ssl_ctx_st* ctx);

struct TlsOptions {
  ssl_ctx_st* ssl_ctx = nullptr;  // borrowed for the call; the channel takes its own reference
  std::string server_name;        // checked against the server certificate and sent as SNI
};

// NewTlsChannel makes a Channel whose bytes are TLS records. Errors:
// InvalidArgument (no context, no server name), those of Channel::New.
absl::StatusOr<std::unique_ptr<Channel>> NewTlsChannel(ChannelOptions options, TlsOptions tls,
                                                       absl::Time now);

}  // namespace ambient::grpc

#endif  // AMBIENT_GRPC_TLS_H_
