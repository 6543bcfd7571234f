// ambient/hbone/connection.h: one HBONE connection, sans I/O.
//
// Object model. A Connection is one TLS 1.3 + HTTP/2 connection carrying
// CONNECT streams, either as the client (it opens streams) or as the server
// (it receives them). It never touches sockets, threads or clocks: the host
// hands it the bytes it read (Receive, ReceiveEof), writes out the bytes it
// produces (PendingOutput, ConsumeOutput), tells it the time on every call that
// may need it, and calls OnTimeout when NextDeadline() has passed. What
// happened is reported as Events that the host pulls with PollEvent, so no
// callback ever re-enters the host. lib/runtime is one host; Envoy workers,
// nginx modules or a Go scheduler can be others.
//
// TLS. The caller prepares the SSL_CTX (through ambient's identity layer, or
// its own): certificates, trust anchors and peer verification are its job.
// The connection makes one SSL from it, forces TLS 1.3, offers ALPN "h2" on
// the client, disables session tickets, and after the handshake insists on:
// ALPN h2, an AES-GCM suite, a verified peer certificate, a SPIFFE URI SAN,
// and (client) one of `expected_identities` or (server) the trust domain of
// its own certificate. The server SSL_CTX must select ALPN "h2":
// PrepareServerContext / PrepareClientContext set the HBONE TLS policy on a
// context the host owns.
//
// Streams. Client: OpenStream sends a CONNECT with only :method and
// :authority plus the extra headers given (baggage, forwarded, traceparent);
// data written before the 200 waits until it arrives. Server: a
// kStreamRequest event carries the request; the host authorizes it, connects
// upstream, then AcceptStream (200) or RejectStream (400/401/503). Bytes flow
// with StreamWrite / StreamPeek + StreamConsume (or StreamRead). Receive
// windows are released only as the host consumes, so a slow consumer slows
// the sender (HTTP/2 flow control is the backpressure). StreamShutdownWrite
// sends END_STREAM (TCP EOF -> END_STREAM); a received END_STREAM shows as
// end-of-stream once the data before it is consumed (-> shutdown(SHUT_WR)).
// RST_STREAM NO_ERROR/CANCEL from the peer is a clean end; any other code
// (CONNECT_ERROR: the peer's TCP side was reset) closes the stream with an
// error, which a TCP relay answers with an abortive close (RST). A TCP error
// on the host's side is StreamReset(id, ResetCode::kConnectError), a clean
// TCP EOF is StreamShutdownWrite. A stream id stays valid until its
// kStreamClosed event has been polled.
//
// Embedding the records in your own loop. The access line and metrics of a
// stream come from ambient/hbone/record.h: start a RecordBuilder from the
// CONNECT request (RecordBuilder::ForConnect takes the :authority and, on the
// server, the client's baggage), add the addresses and identities the host
// knows and the start time from the host's clock, then hand Refused, Failed
// or Closed (with the relay's byte counts) to FormatAccessLog and Metrics
// (ambient/hbone/telemetry.h). lib/runtime's HboneServer, HboneClient and
// node proxy build every record this way, so a host with its own loop logs
// the same fields. The server's answer to a CONNECT (allow list, the host's
// resolve/authorize/route checks, pending-dial limits -> 200/401/503 and the
// refusal's record) is ambient/hbone/server_decision.h: on each
// kStreamRequest call ServerDecision::Decide, then RejectStream with its
// status or connect the upstream and AcceptStream; lib/runtime's HboneServer
// hosts it that way. The client pool still lives in lib/runtime.
//
// Threads: one thread at a time per Connection; distinct connections are
// independent.
#ifndef AMBIENT_HBONE_CONNECTION_H_
#define AMBIENT_HBONE_CONNECTION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "ambient/base/log.h"
#include "ambient/identity/spiffe_id.h"

struct ssl_ctx_st;  // SSL_CTX (BoringSSL or OpenSSL 3, as ambient was built)

namespace ambient::identity {
class TrustBundleSource;
}  // namespace ambient::identity

namespace ambient::hbone {

using StreamId = int32_t;

enum class Role { kClient, kServer };

// Settings are the HTTP/2 and timing parameters; the defaults are ztunnel's.
struct Settings {
  uint32_t stream_window = 4u << 20;       // SETTINGS_INITIAL_WINDOW_SIZE
  uint32_t connection_window = 16u << 20;  // connection-level receive window
  uint32_t max_frame_size = 1u << 20;      // SETTINGS_MAX_FRAME_SIZE
  // Client: how many streams it opens before it learns the server's limit
  // (and its cap afterwards). Server: SETTINGS_MAX_CONCURRENT_STREAMS;
  // streams beyond it are refused with RST_STREAM(REFUSED_STREAM).
  // 0 = role default (client 100, server 200).
  uint32_t max_concurrent_streams = 0;
  // SETTINGS_MAX_HEADER_LIST_SIZE; 0 = role default (client 16 KiB, server
  // 64 KiB). Larger request headers are answered with 431.
  uint32_t max_header_list_size = 0;
  absl::Duration ping_interval = absl::Seconds(10);
  absl::Duration ping_timeout = absl::Seconds(20);
  // The TLS handshake must be done within this time (slowloris guard).
  absl::Duration handshake_timeout = absl::Seconds(10);
  // How many bytes StreamWrite buffers per stream beyond what flow control
  // lets out; StreamWrite accepts less once this is reached.
  size_t stream_send_buffer = 256 * 1024;
};

struct ConnectionOptions {
  Role role = Role::kClient;
  // Borrowed for the call to Connection::New (which takes its own reference).
  ssl_ctx_st* ssl_ctx = nullptr;
  // Client: the server's SPIFFE ID must equal one of these; empty = any
  // identity the SSL_CTX verified.
  std::vector<identity::SpiffeId> expected_identities;
  // Client, optional: trust bundles for ambient's SPIFFE verifier, installed
  // on this connection's SSL with `expected_identities` (ztunnel's client
  // policy), overriding the SSL_CTX's verifier. Without it the SSL_CTX's own
  // verification is used and the identities are checked after the handshake.
  std::shared_ptr<identity::TrustBundleSource> bundles;
  Settings settings;
  LogSink log;  // called on the thread that calls into the connection
};

// ResetCode is the HTTP/2 error code (RFC 9113 section 7) of a RST_STREAM
// the host asks for.
enum class ResetCode : uint32_t {
  kCancel = 0x8,        // the stream is not needed any more
  kConnectError = 0xa,  // the TCP connection behind a CONNECT was reset or failed
};

struct Header {
  std::string name;
  std::string value;
};

struct ConnectRequest {
  std::string authority;        // "ip:port", "[v6]:port" or "host:port"
  std::vector<Header> headers;  // e.g. baggage, forwarded, traceparent
};

struct Event {
  enum class Type {
    kHandshakeDone,     // TLS and HTTP/2 are up; PeerIdentity() is known
    kStreamRequest,     // server: a CONNECT arrived (`request`); answer it
    kStreamResponse,    // client: the response `http_status` (200 = tunnel open)
                        // and its other `headers` (e.g. baggage)
    kStreamReadable,    // stream has bytes or end-of-stream to read
    kStreamWritable,    // stream accepts StreamWrite again
    kStreamClosed,      // stream is over (`status`: OK = clean); id released
    kGoaway,            // peer said GOAWAY: no new streams on this connection
    kConnectionClosed,  // connection is over (`status`); flush output, close
  };
  Type type = Type::kHandshakeDone;
  StreamId stream = 0;
  int http_status = 0;
  absl::Status status;
  ConnectRequest request;
  // kStreamResponse: the response's headers other than pseudo-headers, in
  // arrival order (e.g. the server's `baggage`, see hbone/baggage.h); those
  // of informational (1xx) responses are dropped. Bounded by the client's
  // max_header_list_size (headers beyond it are not kept).
  std::vector<Header> headers;
};

// Counters of one stream (payload bytes, not framing).
struct StreamStats {
  uint64_t bytes_sent = 0;      // payload handed to HTTP/2 for the peer
  uint64_t bytes_received = 0;  // payload received from the peer
};

class Connection {
 public:
  // New makes a connection. Fails with InvalidArgument when the SSL_CTX is
  // missing or does not verify peers, FailedPrecondition when the process's
  // TLS library is not the one ambient was built with.
  static absl::StatusOr<std::unique_ptr<Connection>> New(ConnectionOptions options);

  virtual ~Connection() = default;

  // Start begins the connection at `now`: the client produces its
  // ClientHello (see PendingOutput); both sides arm the handshake deadline.
  virtual void Start(absl::Time now) = 0;

  // Receive processes bytes read from the transport. All of `bytes` is
  // consumed. Returns the connection's error when these bytes broke it (the
  // same status is reported by kConnectionClosed; PendingOutput may still
  // hold a GOAWAY or TLS alert worth sending).
  virtual absl::Status Receive(absl::Span<const uint8_t> bytes, absl::Time now) = 0;

  // ReceiveEof says the transport will deliver no more bytes.
  virtual void ReceiveEof(absl::Time now) = 0;

  // PendingOutput returns bytes to write to the transport (empty if none);
  // the view is valid until the next call on the connection. After writing
  // n of them, call ConsumeOutput(n).
  virtual absl::Span<const uint8_t> PendingOutput() = 0;
  // PendingOutputSpans is PendingOutput for scatter-gather writers
  // (writev/sendmsg): up to `max` runs in order; returns how many.
  virtual size_t PendingOutputSpans(absl::Span<const uint8_t>* spans, size_t max) = 0;
  virtual void ConsumeOutput(size_t n) = 0;

  // NextDeadline is when OnTimeout should be called (InfiniteFuture if never).
  virtual absl::Time NextDeadline() const = 0;
  virtual void OnTimeout(absl::Time now) = 0;

  // PollEvent moves the oldest pending event into `*event`; false if none.
  virtual bool PollEvent(Event* event) = 0;

  // Drain sends GOAWAY: no new streams; existing ones finish. The
  // connection closes itself when the last stream is done.
  virtual void Drain() = 0;
  // Abort ends the connection now with `status` (every stream fails).
  virtual void Abort(absl::Status status) = 0;

  // IsClosed is true once the connection is over; when PendingOutput() is
  // also empty the host can close the transport.
  virtual bool IsClosed() const = 0;
  virtual bool IsEstablished() const = 0;
  // CanOpenStream: established, no GOAWAY either way, below the stream limit
  // (min of ours and the peer's).
  virtual bool CanOpenStream() const = 0;
  virtual size_t ActiveStreams() const = 0;
  // The lower of our stream limit and the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
  virtual uint32_t MaxStreams() const = 0;
  // StreamsRefused (server) counts CONNECTs beyond max_concurrent_streams,
  // each answered RST_STREAM(REFUSED_STREAM) with the connection kept (RFC
  // 9113 5.1.2; the client may retry them). The host never sees them.
  virtual uint64_t StreamsRefused() const = 0;
  // The peer's SPIFFE ID, as the handshake's peer check established it
  // (nullopt before the handshake is done).
  virtual const std::optional<identity::SpiffeId>& PeerIdentity() const = 0;
  virtual Role role() const = 0;

  // --- streams ---------------------------------------------------------

  // OpenStream (client) sends a CONNECT for `request.authority` (validated
  // with ParseAuthority; InvalidArgument if bad). Unavailable when
  // !CanOpenStream(). Header names must be lowercase and not pseudo-headers.
  virtual absl::StatusOr<StreamId> OpenStream(const ConnectRequest& request) = 0;

  // AcceptStream (server) answers 200 plus `headers`; the tunnel is open.
  virtual absl::Status AcceptStream(StreamId id, const std::vector<Header>& headers = {}) = 0;
  // RejectStream (server) answers `http_status` (400..599) with END_STREAM.
  virtual absl::Status RejectStream(StreamId id, int http_status) = 0;

  // StreamWrite queues bytes for the peer and returns how many it took (0
  // when the stream's send buffer is full: wait for kStreamWritable).
  // FailedPrecondition after StreamShutdownWrite or once the stream is closed.
  virtual absl::StatusOr<size_t> StreamWrite(StreamId id, absl::Span<const uint8_t> data) = 0;
  // StreamWriteRoom is how many bytes StreamWrite would take now; when it
  // is 0, a kStreamWritable event follows once there is room again.
  // FailedPrecondition/NotFound as StreamWrite.
  virtual absl::StatusOr<size_t> StreamWriteRoom(StreamId id) = 0;
  // StreamWriteFrom is StreamWrite without the caller's buffer: `fill` is
  // given writable room inside the stream's send buffer (at most `max`
  // bytes, never more than StreamWriteRoom) and returns how many bytes it
  // put there, or a negative number (e.g. a failed read()) for none. Returns
  // fill's result (0 without calling fill when there is no room; then a
  // kStreamWritable event follows). Errors as StreamWrite.
  virtual absl::StatusOr<ssize_t> StreamWriteFrom(
      StreamId id, size_t max, absl::FunctionRef<ssize_t(absl::Span<uint8_t>)> fill) = 0;
  // StreamWriteFromSpans is StreamWriteFrom for scatter reads (readv):
  // `fill` is given up to 8 runs of writable room inside the send buffer (at
  // most `max` bytes in all, never more than StreamWriteRoom), fills them in
  // order and returns how many bytes it put there, or a negative number for
  // none. Once a stream moves bulk data the runs are 64 KiB chunks, so one
  // read can take up to `max`; a trickle gets one small run. Returns fill's
  // result (0 without calling fill when there is no room). Errors as
  // StreamWrite.
  virtual absl::StatusOr<ssize_t> StreamWriteFromSpans(
      StreamId id, size_t max,
      absl::FunctionRef<ssize_t(absl::Span<const absl::Span<uint8_t>>)> fill) = 0;
  // StreamShutdownWrite sends END_STREAM after the queued bytes.
  virtual absl::Status StreamShutdownWrite(StreamId id) = 0;
  // StreamPeek lends the next contiguous received bytes (empty if none yet
  // or at end); valid until the next call on the connection.
  virtual absl::Span<const uint8_t> StreamPeek(StreamId id) = 0;
  // StreamPeekSpans is StreamPeek for scatter-gather writers (writev,
  // sendmsg): lends up to `max` runs of received bytes, in order, into
  // `spans`; returns how many (0 if none). Valid until the next call on the
  // connection; release what was written with StreamConsume.
  virtual size_t StreamPeekSpans(StreamId id, absl::Span<const uint8_t>* spans, size_t max) = 0;
  // StreamConsume releases n peeked bytes and their flow-control window.
  virtual void StreamConsume(StreamId id, size_t n) = 0;
  // StreamRead copies up to out.size() received bytes; returns the count.
  virtual size_t StreamRead(StreamId id, absl::Span<uint8_t> out) = 0;
  // StreamAtEof: the tunnel is open, the peer ended its side cleanly and
  // everything was consumed (false for refused or failed streams).
  virtual bool StreamAtEof(StreamId id) const = 0;
  // StreamBuffered: bytes received and not yet consumed.
  virtual size_t StreamBuffered(StreamId id) const = 0;
  // StreamUnsent: bytes written and not yet handed to HTTP/2.
  virtual size_t StreamUnsent(StreamId id) const = 0;
  // StreamReset ends the stream with RST_STREAM(`code`). A host relaying
  // the stream to TCP (RFC 9113 section 8.5) resets with kConnectError when
  // that TCP connection fails (a reset, a broken pipe) and with kCancel when
  // it merely gives up on the stream. NotFound for an unknown stream; OK and
  // nothing sent when the stream is already closed.
  virtual absl::Status StreamReset(StreamId id, ResetCode code) = 0;
  // StreamReset(id) is StreamReset(id, ResetCode::kCancel).
  absl::Status StreamReset(StreamId id) { return StreamReset(id, ResetCode::kCancel); }
  virtual StreamStats GetStreamStats(StreamId id) const = 0;
};

// PrepareClientContext / PrepareServerContext put the HBONE TLS policy on an
// SSL_CTX the host owns: TLS 1.3 only, no session tickets or resumption,
// ALPN "h2" (the server selects it and refuses clients that do not offer
// it). Certificates and verification are left as they are.
absl::Status PrepareClientContext(ssl_ctx_st* ctx);
absl::Status PrepareServerContext(ssl_ctx_st* ctx);

}  // namespace ambient::hbone

#endif  // AMBIENT_HBONE_CONNECTION_H_
