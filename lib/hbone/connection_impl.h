// ConnectionImpl: the Connection of ambient/hbone/connection.h, joined from
// its TLS side (TlsSession, tls_session.h) and its HTTP/2 side.
//
// connection.cc holds the joining: construction, the state machine
// (idle -> handshaking -> established -> closed), bytes in and out, time and
// teardown. http2_session.cc holds everything HTTP/2: the nghttp2 session and
// its callbacks, the streams, their queues and flow control. Neither names
// the TLS library; that is tls_session.cc's alone.
#ifndef AMBIENT_LIB_HBONE_CONNECTION_IMPL_H_
#define AMBIENT_LIB_HBONE_CONNECTION_IMPL_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "ambient/hbone/connection.h"
#include "hbone/byte_queue.h"
#include "hbone/tls_session.h"

struct nghttp2_session;

namespace ambient::hbone {

inline constexpr size_t kPlainBatch = 64 * 1024;        // plaintext gathered per TLS write
inline constexpr size_t kOutputHighWater = 256 * 1024;  // stop producing above this
inline constexpr size_t kTlsReadChunk = 16 * 1024 + 256;
inline constexpr uint32_t kClientDefaultStreams = 100;
inline constexpr uint32_t kServerDefaultStreams = 200;
inline constexpr uint32_t kClientHeaderList = 16 * 1024;
inline constexpr uint32_t kServerHeaderList = 64 * 1024;
inline constexpr size_t kMaxDataFrame = 64 * 1024;
inline constexpr size_t kTlsRecord = 16 * 1024;  // TLS 1.3 maximum plaintext per record

struct Stream {
  explicit Stream(ChunkPool* pool) : recv(pool), send(pool) {}
  enum class Phase { kHeaders, kAwaitingAccept, kAwaitingResponse, kOpen, kFailed };
  StreamId id = 0;
  Phase phase = Phase::kHeaders;
  ByteQueue recv;
  ByteQueue send;
  bool remote_ended = false;
  bool local_end_requested = false;
  bool local_ended = false;
  bool local_reset = false;
  bool h2_closed = false;
  bool closed_event_queued = false;
  bool readable_signalled = false;
  bool want_writable = false;
  bool deferred = false;
  bool headers_too_large = false;
  bool reject_then_reset = false;
  size_t header_bytes = 0;
  int http_status = 0;
  std::string method;
  bool has_scheme = false;
  bool has_path = false;
  bool has_protocol = false;
  ConnectRequest request;
  std::vector<Header> response_headers;  // client: the response's, until it is reported
  absl::Status close_status;
  StreamStats stats;
};

class ConnectionImpl final : public Connection {
 public:
  explicit ConnectionImpl(ConnectionOptions options) : opts_(std::move(options)) {
    Settings& s = opts_.settings;
    if (s.max_concurrent_streams == 0) {
      s.max_concurrent_streams =
          opts_.role == Role::kClient ? kClientDefaultStreams : kServerDefaultStreams;
    }
    if (s.max_header_list_size == 0) {
      s.max_header_list_size = opts_.role == Role::kClient ? kClientHeaderList : kServerHeaderList;
    }
  }

  ~ConnectionImpl() override;

  uint64_t StreamsRefused() const override { return streams_refused_; }
  absl::Status Init();

  void Start(absl::Time now) override;
  absl::Status Receive(absl::Span<const uint8_t> bytes, absl::Time now) override;
  void ReceiveEof(absl::Time now) override;
  absl::Span<const uint8_t> PendingOutput() override;
  size_t PendingOutputSpans(absl::Span<const uint8_t>* spans, size_t max) override;
  void ConsumeOutput(size_t n) override;
  absl::Time NextDeadline() const override;
  void OnTimeout(absl::Time now) override;
  bool PollEvent(Event* event) override;
  void Drain() override;
  void Abort(absl::Status status) override;
  bool IsClosed() const override { return state_ == State::kClosed; }
  bool IsEstablished() const override { return state_ == State::kEstablished; }
  bool CanOpenStream() const override;
  size_t ActiveStreams() const override { return open_streams_; }
  uint32_t MaxStreams() const override;
  const std::optional<identity::SpiffeId>& PeerIdentity() const override { return peer_identity_; }
  Role role() const override { return opts_.role; }

  absl::StatusOr<StreamId> OpenStream(const ConnectRequest& request) override;
  absl::Status AcceptStream(StreamId id, const std::vector<Header>& headers) override;
  absl::Status RejectStream(StreamId id, int http_status) override;
  absl::StatusOr<size_t> StreamWrite(StreamId id, absl::Span<const uint8_t> data) override;
  absl::StatusOr<size_t> StreamWriteRoom(StreamId id) override;
  absl::StatusOr<ssize_t> StreamWriteFrom(
      StreamId id, size_t max, absl::FunctionRef<ssize_t(absl::Span<uint8_t>)> fill) override;
  absl::StatusOr<ssize_t> StreamWriteFromSpans(
      StreamId id, size_t max,
      absl::FunctionRef<ssize_t(absl::Span<const absl::Span<uint8_t>>)> fill) override;
  absl::Status StreamShutdownWrite(StreamId id) override;
  absl::Span<const uint8_t> StreamPeek(StreamId id) override;
  size_t StreamPeekSpans(StreamId id, absl::Span<const uint8_t>* spans, size_t max) override;
  void StreamConsume(StreamId id, size_t n) override;
  size_t StreamRead(StreamId id, absl::Span<uint8_t> out) override;
  bool StreamAtEof(StreamId id) const override;
  size_t StreamBuffered(StreamId id) const override;
  size_t StreamUnsent(StreamId id) const override;
  using Connection::StreamReset;
  absl::Status StreamReset(StreamId id, ResetCode code) override;
  StreamStats GetStreamStats(StreamId id) const override;

 private:
  enum class State { kIdle, kHandshaking, kEstablished, kClosed };

  // The nghttp2 callbacks (http2_session.cc) reach the members below.
  friend struct H2Callbacks;

  void Log(LogLevel level, absl::string_view msg) const {
    if (opts_.log) opts_.log(level, "hbone", msg);
  }
  void DoHandshake();

  // The HTTP/2 side (http2_session.cc). StartHttp2 makes the session and
  // queues our SETTINGS once TLS is up; the H2* calls are what the joining
  // code needs of it.
  absl::Status StartHttp2();
  // H2Receive hands plaintext to HTTP/2 (InvalidArgument when it is malformed).
  absl::Status H2Receive(absl::Span<const uint8_t> plain);
  // H2Produce appends HTTP/2 output to plain_out_ until it holds `limit`
  // bytes or HTTP/2 has nothing more (sealing whole DATA records straight
  // through TLS on the way); an error when HTTP/2 or TLS failed.
  absl::Status H2Produce(size_t limit);
  // AppendPlain adds nghttp2 output to plain_out_ (rewriting our first
  // SETTINGS frame's stream limit, see settings_rewrite_pending_).
  void AppendPlain(const uint8_t* data, size_t n);
  // H2Terminate queues GOAWAY with the code for `status` (PROTOCOL_ERROR for
  // the peer's violations, NO_ERROR for our own decision to stop, otherwise
  // INTERNAL_ERROR) into plain_out_.
  void H2Terminate(const absl::Status& status);
  // H2SubmitGoaway queues a graceful GOAWAY(NO_ERROR).
  void H2SubmitGoaway();
  // H2SubmitPing queues a PING; false if it could not.
  bool H2SubmitPing();
  // H2Finished: GOAWAY exchanged (or an error sent) and no stream left.
  bool H2Finished() const;
  // H2PeerMaxStreams is the peer's SETTINGS_MAX_CONCURRENT_STREAMS.
  uint32_t H2PeerMaxStreams() const;
  // H2End frees the HTTP/2 session (no-op when there is none).
  void H2End();
  void ReadTls();
  void Pump();
  void Fail(absl::Status status);
  void FinishGracefully();
  void CheckDone();
  void PushEvent(Event ev) { events_.push_back(std::move(ev)); }
  void SignalReadable(Stream* s);
  void MaybeFinishStream(Stream* s);
  void ReleaseWindow(Stream* s, size_t n);
  void OnRequestComplete(Stream* s);
  void OnResponseComplete(Stream* s, bool end_stream);
  Stream* Find(StreamId id) const {
    auto it = streams_.find(id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  Stream* FindLive(StreamId id) const {
    Stream* s = Find(id);
    return (s == nullptr || s->closed_event_queued) ? nullptr : s;
  }

  ConnectionOptions opts_;
  State state_ = State::kIdle;
  std::unique_ptr<TlsSession> tls_;
  nghttp2_session* session_ = nullptr;
  // Spare 64 KiB chunks for this connection's queues (declared before every
  // queue that uses it). Up to 64 (4 MiB, one stream window) are kept while
  // data flows: with fewer, a bulk stream whose receive queue swings by a few
  // MiB freed and re-allocated chunks at the top of the heap, and glibc
  // trimmed and re-faulted those pages (tens of thousands of page faults per
  // GB on the server side). All spares go back after a ping interval
  // without traffic (OnTimeout).
  ChunkPool pool_{64};
  ByteQueue tls_out_{&pool_};
  uint64_t bytes_moved_ = 0;  // payload since the last PING, for idle release
  std::string plain_out_;
  bool tls_write_failed_ = false;
  // Server: streams beyond max_concurrent_streams are refused by us with
  // RST_STREAM(REFUSED_STREAM) (RFC 9113 5.1.2) and the connection is kept.
  // nghttp2 treats a stream over its own limit as a connection error, so it
  // is given a higher one (+kRefusalSlack) and the SETTINGS frame on the
  // wire is rewritten to advertise ours (settings_rewrite_pending_).
  static constexpr uint32_t kRefusalSlack = 1024;
  bool settings_rewrite_pending_ = false;
  size_t refusals_unsent_ = 0;  // RST_STREAM(REFUSED_STREAM) submitted, not yet sent
  uint64_t streams_refused_ = 0;
  // SealPlain hands plain_out_ to TLS and clears it; false (and
  // tls_write_failed_) if TLS refused it.
  bool SealPlain();
  std::unordered_map<StreamId, std::unique_ptr<Stream>> streams_;
  size_t open_streams_ = 0;
  std::deque<Event> events_;
  absl::Status close_status_;
  absl::Time now_ = absl::InfinitePast();
  absl::Time handshake_deadline_ = absl::InfiniteFuture();
  absl::Time next_ping_ = absl::InfiniteFuture();
  absl::Time ping_sent_at_ = absl::InfinitePast();
  bool ping_outstanding_ = false;
  uint64_t ping_counter_ = 0;
  bool goaway_received_ = false;
  bool goaway_sent_ = false;
  std::optional<identity::SpiffeId> peer_identity_;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_LIB_HBONE_CONNECTION_IMPL_H_
