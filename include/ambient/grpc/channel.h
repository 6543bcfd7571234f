// ambient/grpc/channel.h: a gRPC client connection, sans I/O.
//
// Object model. A Channel is the client end of one HTTP/2 connection that
// carries gRPC calls (the protocol istiod speaks for xDS and the Istio CA).
// Like hbone::Connection it never touches sockets, threads or clocks: the
// host hands it the bytes it read (Receive, ReceiveEof), writes out what it
// produces (PendingOutput, ConsumeOutput), passes the time into every call
// that may need it, calls OnTimeout once NextDeadline() has passed, and pulls
// what happened as CallEvents (PollEvent), so nothing re-enters the host.
// The bytes are HTTP/2 in the clear: a host that talks to istiod puts TLS
// underneath (server-only TLS, the root and DNS name it was configured with).
//
// Calls. StartCall sends the request headers (POST, te: trailers,
// content-type application/grpc, grpc-timeout from the deadline, the
// channel's metadata and the call's own); SendMessage queues one message
// (the 5-byte gRPC prefix is added here; messages are never compressed);
// CloseSend half-closes (unary and client-streaming calls end their side);
// Cancel ends a call at once (RST_STREAM CANCEL). The server's response
// headers, each message and the end of the call come back as events: every
// call ends with exactly one kClosed event whose status is the server's
// grpc-status/grpc-message, or what gRPC's HTTP/2 mapping says when there is
// none (a non-200 :status, a reset stream, a broken connection, a message
// over max_receive_message, the deadline passing).
//
// Connection. Keepalive PINGs go out after keepalive_interval without any
// byte from the server; no answer within keepalive_timeout breaks the
// connection. A GOAWAY from the server lets calls it accepted finish and
// refuses new ones (draining()). When the connection breaks every open call
// closes with Unavailable and error() says why; the host then closes its
// socket and makes a new Channel (reconnecting with backoff is the host's).
//
// Threads: one thread at a time per Channel.
#ifndef AMBIENT_GRPC_CHANNEL_H_
#define AMBIENT_GRPC_CHANNEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace ambient::grpc {

using CallId = int32_t;  // the call's HTTP/2 stream id
using Metadata = std::vector<std::pair<std::string, std::string>>;

struct ChannelOptions {
  // :authority of every call, e.g. "istiod.istio-system.svc:15012".
  std::string authority;
  std::string scheme = "https";
  std::string user_agent = "ambient-grpc/0";
  // Sent with every call (e.g. authorization, clusterid); SetMetadata
  // replaces it for calls started later. Names are lower case.
  Metadata metadata;
  // A received message larger than this ends its call with
  // ResourceExhausted (gRPC's default limit).
  size_t max_receive_message = 4u << 20;
  // HTTP/2 receive windows (SETTINGS_INITIAL_WINDOW_SIZE and the
  // connection's).
  uint32_t stream_window = 4u << 20;
  uint32_t connection_window = 16u << 20;
  absl::Duration keepalive_interval = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
};

struct CallEvent {
  enum class Kind {
    kHeaders,  // the server's response headers (metadata), once per call
    kMessage,  // one whole message (message)
    kClosed,   // the call is over: status, and the trailers in metadata
  };
  Kind kind = Kind::kClosed;
  CallId call = 0;
  std::string message;
  absl::Status status;
  Metadata metadata;
};

class Channel {
 public:
  // New makes a channel and queues the HTTP/2 preface and SETTINGS.
  // Errors: InvalidArgument (empty authority, limits of zero); Internal
  // (nghttp2 could not be set up).
  static absl::StatusOr<std::unique_ptr<Channel>> New(ChannelOptions options, absl::Time now);
  virtual ~Channel() = default;

  // Receive feeds bytes read from the server. An error means the connection
  // is broken (protocol error, keepalive or flood): error() has it, every
  // call got its kClosed event, and the host should close the socket.
  virtual absl::Status Receive(absl::string_view bytes, absl::Time now) = 0;
  // ReceiveEof says the server closed the connection (or the socket failed).
  virtual void ReceiveEof(absl::Time now) = 0;
  // PendingOutput returns bytes to write (empty when none); ConsumeOutput
  // drops the first `n` of them once written.
  virtual absl::string_view PendingOutput() = 0;
  virtual void ConsumeOutput(size_t n) = 0;

  // StartCall opens a call of `method` ("/package.Service/Method").
  // `deadline` (absl::InfiniteFuture() for none) is sent as grpc-timeout and
  // enforced here. Errors: FailedPrecondition when broken or draining;
  // InvalidArgument for a bad method or metadata; ResourceExhausted when the
  // server's stream limit is reached.
  virtual absl::StatusOr<CallId> StartCall(absl::string_view method, absl::Time deadline,
                                           const Metadata& metadata, absl::Time now) = 0;
  // SendMessage queues one message on an open call. Errors: NotFound (no
  // such call, or it is over), FailedPrecondition (after CloseSend),
  // InvalidArgument (over 4 GiB).
  virtual absl::Status SendMessage(CallId call, absl::string_view message, absl::Time now) = 0;
  // CloseSend ends the client's side of the call after what is queued.
  virtual absl::Status CloseSend(CallId call, absl::Time now) = 0;
  // Cancel ends the call now: RST_STREAM(CANCEL) and a kClosed event with
  // Cancelled. Unknown or finished calls are ignored.
  virtual void Cancel(CallId call, absl::Time now) = 0;
  // SetMetadata replaces ChannelOptions::metadata for calls started later
  // (e.g. a re-read token).
  virtual void SetMetadata(Metadata metadata) = 0;

  // PollEvent moves the next event into `out`; false when there is none.
  virtual bool PollEvent(CallEvent* out) = 0;
  // NextDeadline is when OnTimeout must run next (InfiniteFuture: never).
  virtual absl::Time NextDeadline() const = 0;
  virtual void OnTimeout(absl::Time now) = 0;

  // broken: the connection is unusable; error() says why.
  virtual bool broken() const = 0;
  virtual absl::Status error() const = 0;
  // draining: the server sent GOAWAY; calls it accepted may still finish.
  virtual bool draining() const = 0;
  virtual size_t open_calls() const = 0;
};

// HttpStatusToCode maps a non-200 HTTP :status to a gRPC code as gRPC's
// "HTTP to gRPC status code mapping" does (400 Internal, 401
// Unauthenticated, 403 PermissionDenied, 404 Unimplemented, 429/502/503/504
// Unavailable, any other Unknown).
absl::StatusCode HttpStatusToCode(int http_status);
// ResetToCode maps an HTTP/2 RST_STREAM error code to a gRPC code as gRPC's
// HTTP/2 transport does (NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR,
// FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR,
// CONNECT_ERROR Internal; REFUSED_STREAM Unavailable; CANCEL Cancelled;
// ENHANCE_YOUR_CALM ResourceExhausted; INADEQUATE_SECURITY PermissionDenied).
absl::StatusCode ResetToCode(uint32_t http2_error);
// EncodeTimeout renders a grpc-timeout value ("<= 8 digits><unit>"): the
// smallest unit that fits, rounded up.
std::string EncodeTimeout(absl::Duration d);
// PercentDecode undoes grpc-message's percent-encoding; malformed escapes
// are kept as they are.
std::string PercentDecode(absl::string_view text);

}  // namespace ambient::grpc

#endif  // AMBIENT_GRPC_CHANNEL_H_
