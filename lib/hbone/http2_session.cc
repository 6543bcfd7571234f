// The HTTP/2 side of an HBONE connection: the nghttp2 session and its
// callbacks, the CONNECT streams, their send/receive queues and flow control.
// Plaintext comes in through H2Receive and goes out through H2Produce; the
// TLS below is reached only through TlsSession (tls_session.h).
#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/hbone/authority.h"
#include "hbone/connection_impl.h"

namespace ambient::hbone {

// The nghttp2 callbacks; `ud` is the ConnectionImpl.
struct H2Callbacks {
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* ud);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                         size_t len, void* ud);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud);
  static ssize_t ReadData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* ud);
  static int SendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source* source, void* ud);
  static ssize_t DataLength(nghttp2_session*, uint8_t frame_type, int32_t stream_id,
                            int32_t session_window, int32_t stream_window,
                            uint32_t remote_max_frame, void* ud);
};

namespace {

// ValidHeader: a header the host may add to a request or response: not a
// pseudo-header, name and value as RFC 9113 allows them (nghttp2's checks).
bool ValidHeader(const Header& h) {
  return !h.name.empty() && h.name[0] != ':' &&
         nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(h.name.data()),
                                   h.name.size()) &&
         nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(h.value.data()),
                                    h.value.size());
}

absl::Status StatusForResetCode(uint32_t code) {
  return absl::UnavailableError(
      absl::StrCat("stream reset by peer: ", nghttp2_http2_strerror(code)));
}

nghttp2_data_provider Provider(Stream* s) {
  nghttp2_data_provider p;
  p.source.ptr = s;
  p.read_callback = &H2Callbacks::ReadData;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------
// Session

absl::Status ConnectionImpl::StartHttp2() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return absl::ResourceExhaustedError("nghttp2");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &H2Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &H2Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &H2Callbacks::OnFrameRecv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &H2Callbacks::OnFrameSend);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &H2Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &H2Callbacks::OnStreamClose);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &H2Callbacks::SendData);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, &H2Callbacks::DataLength);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return absl::ResourceExhaustedError("nghttp2");
  }
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
  if (opts_.role == Role::kClient) {
    nghttp2_option_set_peer_max_concurrent_streams(opt, opts_.settings.max_concurrent_streams);
  }
  int rv = opts_.role == Role::kClient ? nghttp2_session_client_new2(&session_, cbs, this, opt)
                                       : nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return absl::ResourceExhaustedError("nghttp2 session");

  const Settings& s = opts_.settings;
  std::vector<nghttp2_settings_entry> iv;
  iv.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s.stream_window});
  iv.push_back({NGHTTP2_SETTINGS_MAX_FRAME_SIZE, s.max_frame_size});
  iv.push_back({NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s.max_header_list_size});
  if (opts_.role == Role::kClient) {
    iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  } else {
    uint32_t nghttp2_limit = s.max_concurrent_streams > UINT32_MAX - kRefusalSlack
                                 ? UINT32_MAX
                                 : s.max_concurrent_streams + kRefusalSlack;
    iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, nghttp2_limit});
    settings_rewrite_pending_ = nghttp2_limit != s.max_concurrent_streams;
  }
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size());
  if (rv == 0) {
    rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                               static_cast<int32_t>(s.connection_window));
  }
  if (rv != 0) return absl::InternalError(nghttp2_strerror(rv));
  state_ = State::kEstablished;
  handshake_deadline_ = absl::InfiniteFuture();
  next_ping_ = now_ + s.ping_interval;
  Event ev;
  ev.type = Event::Type::kHandshakeDone;
  PushEvent(std::move(ev));
  return absl::OkStatus();
}

absl::Status ConnectionImpl::H2Receive(absl::Span<const uint8_t> plain) {
  // In pieces of at most 4 KiB (at most 410 HEADERS frames of 10 bytes), so
  // that the streams refused in one piece are closed (their RST_STREAMs
  // produced) before the next: they never add up to nghttp2's limit, which
  // is ours + kRefusalSlack.
  constexpr size_t kPiece = 4096;
  while (!plain.empty()) {
    size_t n = std::min(plain.size(), kPiece);
    ssize_t rv = nghttp2_session_mem_recv(session_, plain.data(), n);
    if (rv < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("malformed HTTP/2 from peer: ", nghttp2_strerror(static_cast<int>(rv))));
    }
    plain.remove_prefix(n);
    // RST_STREAM goes before HEADERS and DATA in nghttp2's send order, so
    // this stops as soon as the refusals are out.
    while (refusals_unsent_ > 0) {
      const uint8_t* data = nullptr;
      ssize_t sent = nghttp2_session_mem_send(session_, &data);
      if (sent <= 0) break;
      AppendPlain(data, static_cast<size_t>(sent));
    }
  }
  return absl::OkStatus();
}

void ConnectionImpl::AppendPlain(const uint8_t* data, size_t n) {
  size_t at = plain_out_.size();
  plain_out_.append(reinterpret_cast<const char*>(data), n);
  if (!settings_rewrite_pending_) return;
  // The server's first frame is its SETTINGS (9-byte header, type 0x4, no
  // ACK flag, stream 0, then 6-byte entries). Advertise our stream limit
  // instead of nghttp2's.
  settings_rewrite_pending_ = false;
  if (n < 9) return;
  auto* f = reinterpret_cast<uint8_t*>(&plain_out_[at]);
  size_t len = (size_t{f[0]} << 16) | (size_t{f[1]} << 8) | f[2];
  if (f[3] != NGHTTP2_SETTINGS || (f[4] & NGHTTP2_FLAG_ACK) != 0 || n < 9 + len) return;
  for (size_t i = 9; i + 6 <= 9 + len; i += 6) {
    uint16_t id = static_cast<uint16_t>((f[i] << 8) | f[i + 1]);
    if (id != NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) continue;
    uint32_t v = opts_.settings.max_concurrent_streams;
    f[i + 2] = static_cast<uint8_t>(v >> 24);
    f[i + 3] = static_cast<uint8_t>(v >> 16);
    f[i + 4] = static_cast<uint8_t>(v >> 8);
    f[i + 5] = static_cast<uint8_t>(v);
  }
}

absl::Status ConnectionImpl::H2Produce(size_t limit) {
  while (plain_out_.size() < limit) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0 || tls_write_failed_) {
      return tls_write_failed_
                 ? absl::InternalError(absl::StrCat("TLS write failed: ", TlsSession::LastError()))
                 : absl::InternalError(
                       absl::StrCat("HTTP/2 send failed: ", nghttp2_strerror(static_cast<int>(n))));
    }
    if (n == 0) break;
    AppendPlain(data, static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

void ConnectionImpl::H2Terminate(const absl::Status& status) {
  // A protocol violation is PROTOCOL_ERROR; our own decision to stop (abort,
  // shutdown, a peer that stopped answering) is NO_ERROR, as ztunnel does;
  // anything else INTERNAL_ERROR.
  uint32_t code = NGHTTP2_INTERNAL_ERROR;
  if (status.code() == absl::StatusCode::kInvalidArgument) code = NGHTTP2_PROTOCOL_ERROR;
  if (status.code() == absl::StatusCode::kDeadlineExceeded ||
      status.code() == absl::StatusCode::kCancelled) {
    code = NGHTTP2_NO_ERROR;
  }
  nghttp2_session_terminate_session(session_, code);
  for (int i = 0; i < 16; ++i) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n <= 0) break;
    plain_out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
  }
}

void ConnectionImpl::H2SubmitGoaway() {
  int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
}

bool ConnectionImpl::H2SubmitPing() {
  uint8_t opaque[8];
  ++ping_counter_;
  std::memcpy(opaque, &ping_counter_, sizeof(opaque));
  return nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) == 0;
}

bool ConnectionImpl::H2Finished() const {
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

uint32_t ConnectionImpl::H2PeerMaxStreams() const {
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

void ConnectionImpl::H2End() {
  if (session_ == nullptr) return;
  nghttp2_session_del(session_);
  session_ = nullptr;
}

// ---------------------------------------------------------------------------
// Streams (host side)

absl::StatusOr<StreamId> ConnectionImpl::OpenStream(const ConnectRequest& request) {
  if (opts_.role != Role::kClient) {
    return absl::FailedPreconditionError("only a client connection opens streams");
  }
  if (!CanOpenStream()) {
    return absl::UnavailableError(state_ != State::kEstablished ? "connection is not established"
                                  : (goaway_received_ || goaway_sent_)
                                      ? "connection is going away"
                                      : "connection is at its stream limit");
  }
  absl::StatusOr<Authority> authority = ParseAuthority(request.authority);
  if (!authority.ok()) return authority.status();
  std::vector<nghttp2_nv> nva;
  auto add = [&nva](absl::string_view n, absl::string_view v) {
    nghttp2_nv nv;
    nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(n.data()));
    nv.namelen = n.size();
    nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(v.data()));
    nv.valuelen = v.size();
    nv.flags = NGHTTP2_NV_FLAG_NONE;
    nva.push_back(nv);
  };
  add(":method", "CONNECT");
  add(":authority", request.authority);
  for (const Header& h : request.headers) {
    if (!ValidHeader(h)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad request header \"", absl::CHexEscape(h.name), "\""));
    }
    for (char c : h.name) {
      if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(
            absl::StrCat("request header name \"", h.name, "\" must be lowercase"));
      }
    }
    add(h.name, h.value);
    // Values that differ on every stream (a random trace id, the client's
    // ip:port) are sent as literals that are never indexed: entering them
    // in the HPACK tables would only cost both ends an insert and evict
    // entries that do repeat (:authority, baggage).
    if (h.name == "traceparent" || h.name == "forwarded")
      nva.back().flags = NGHTTP2_NV_FLAG_NO_INDEX;
  }
  auto stream = std::make_unique<Stream>(&pool_);
  stream->phase = Stream::Phase::kAwaitingResponse;
  stream->request = request;
  nghttp2_data_provider prd = Provider(stream.get());
  int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &prd, stream.get());
  if (id < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open stream: ", nghttp2_strerror(id)));
  }
  stream->id = id;
  ++open_streams_;
  streams_[id] = std::move(stream);
  return id;
}

absl::Status ConnectionImpl::AcceptStream(StreamId id, const std::vector<Header>& headers) {
  Stream* s = FindLive(id);
  if (s == nullptr || s->h2_closed) return absl::NotFoundError(absl::StrCat("no open stream ", id));
  if (opts_.role != Role::kServer || s->phase != Stream::Phase::kAwaitingAccept) {
    return absl::FailedPreconditionError("stream is not waiting for an answer");
  }
  std::vector<nghttp2_nv> nva;
  nghttp2_nv status = {reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                       reinterpret_cast<uint8_t*>(const_cast<char*>("200")), 7, 3,
                       NGHTTP2_NV_FLAG_NONE};
  nva.push_back(status);
  for (const Header& h : headers) {
    if (!ValidHeader(h)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad response header \"", absl::CHexEscape(h.name), "\""));
    }
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                   h.value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider prd = Provider(s);
  int rv = nghttp2_submit_response(session_, id, nva.data(), nva.size(), &prd);
  if (rv != 0) return absl::InternalError(absl::StrCat("cannot answer: ", nghttp2_strerror(rv)));
  s->phase = Stream::Phase::kOpen;
  s->http_status = 200;
  SignalReadable(s);  // bytes that came with the request can now be read
  return absl::OkStatus();
}

absl::Status ConnectionImpl::RejectStream(StreamId id, int http_status) {
  if (http_status < 400 || http_status > 599) {
    return absl::InvalidArgumentError("reject status must be 400..599");
  }
  Stream* s = FindLive(id);
  if (s == nullptr || s->h2_closed) return absl::NotFoundError(absl::StrCat("no open stream ", id));
  if (opts_.role != Role::kServer || s->phase != Stream::Phase::kAwaitingAccept) {
    return absl::FailedPreconditionError("stream is not waiting for an answer");
  }
  std::string code = absl::StrCat(http_status);
  nghttp2_nv nv = {reinterpret_cast<uint8_t*>(const_cast<char*>(":status")),
                   reinterpret_cast<uint8_t*>(code.data()), 7, code.size(), NGHTTP2_NV_FLAG_NONE};
  int rv = nghttp2_submit_response(session_, id, &nv, 1, nullptr);
  if (rv != 0) return absl::InternalError(absl::StrCat("cannot answer: ", nghttp2_strerror(rv)));
  s->phase = Stream::Phase::kFailed;
  s->http_status = http_status;
  s->reject_then_reset = true;
  s->close_status = absl::PermissionDeniedError(absl::StrCat("rejected with ", http_status));
  ReleaseWindow(s, s->recv.size());
  s->recv.Clear();
  return absl::OkStatus();
}

absl::StatusOr<size_t> ConnectionImpl::StreamWrite(StreamId id, absl::Span<const uint8_t> data) {
  Stream* s = FindLive(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("no stream ", id));
  if (s->h2_closed || s->phase == Stream::Phase::kFailed) {
    return absl::FailedPreconditionError("stream is closed");
  }
  if (s->local_end_requested)
    return absl::FailedPreconditionError("stream write side is shut down");
  size_t room = s->send.size() >= opts_.settings.stream_send_buffer
                    ? 0
                    : opts_.settings.stream_send_buffer - s->send.size();
  size_t n = std::min(room, data.size());
  if (n < data.size()) s->want_writable = true;
  if (n == 0) return size_t{0};
  s->send.Append(data.subspan(0, n));
  if (s->deferred && s->phase == Stream::Phase::kOpen) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return n;
}

absl::StatusOr<size_t> ConnectionImpl::StreamWriteRoom(StreamId id) {
  Stream* s = FindLive(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("no stream ", id));
  if (s->h2_closed || s->phase == Stream::Phase::kFailed) {
    return absl::FailedPreconditionError("stream is closed");
  }
  if (s->local_end_requested)
    return absl::FailedPreconditionError("stream write side is shut down");
  size_t cap = opts_.settings.stream_send_buffer;
  if (s->send.size() >= cap) {
    s->want_writable = true;
    return size_t{0};
  }
  return cap - s->send.size();
}

absl::StatusOr<ssize_t> ConnectionImpl::StreamWriteFrom(
    StreamId id, size_t max, absl::FunctionRef<ssize_t(absl::Span<uint8_t>)> fill) {
  absl::StatusOr<size_t> room = StreamWriteRoom(id);
  if (!room.ok()) return room.status();
  size_t n = std::min(*room, max);
  if (n == 0) return ssize_t{0};
  Stream* s = FindLive(id);
  absl::Span<uint8_t> space = s->send.AppendSpace(n);
  ssize_t got = fill(space);
  s->send.Commit(got > 0 ? std::min(static_cast<size_t>(got), space.size()) : 0);
  if (got > 0 && s->deferred && s->phase == Stream::Phase::kOpen) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return got;
}

absl::StatusOr<ssize_t> ConnectionImpl::StreamWriteFromSpans(
    StreamId id, size_t max,
    absl::FunctionRef<ssize_t(absl::Span<const absl::Span<uint8_t>>)> fill) {
  absl::StatusOr<size_t> room = StreamWriteRoom(id);
  if (!room.ok()) return room.status();
  size_t n = std::min(*room, max);
  if (n == 0) return ssize_t{0};
  Stream* s = FindLive(id);
  absl::Span<uint8_t> runs[ByteQueue::kMaxSpaces];
  size_t k = s->send.AppendSpaces(n, runs, ByteQueue::kMaxSpaces);
  size_t lent = 0;
  for (size_t i = 0; i < k; ++i) lent += runs[i].size();
  ssize_t got = fill(absl::Span<const absl::Span<uint8_t>>(runs, k));
  s->send.CommitSpaces(absl::Span<const absl::Span<uint8_t>>(runs, k),
                       got > 0 ? std::min(static_cast<size_t>(got), lent) : 0);
  if (got > 0 && s->deferred && s->phase == Stream::Phase::kOpen) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return got;
}

absl::Status ConnectionImpl::StreamShutdownWrite(StreamId id) {
  Stream* s = FindLive(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("no stream ", id));
  if (s->h2_closed || s->local_end_requested) return absl::OkStatus();
  s->local_end_requested = true;
  if (s->deferred && s->phase == Stream::Phase::kOpen) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return absl::OkStatus();
}

absl::Span<const uint8_t> ConnectionImpl::StreamPeek(StreamId id) {
  Stream* s = Find(id);
  if (s == nullptr) return {};
  s->readable_signalled = false;
  if (s->phase == Stream::Phase::kAwaitingAccept) return {};
  return s->recv.Front();
}

size_t ConnectionImpl::StreamPeekSpans(StreamId id, absl::Span<const uint8_t>* spans, size_t max) {
  Stream* s = Find(id);
  if (s == nullptr || max == 0) return 0;
  s->readable_signalled = false;
  if (s->phase == Stream::Phase::kAwaitingAccept) return 0;
  return s->recv.Peek(spans, max);
}

void ConnectionImpl::ReleaseWindow(Stream* s, size_t n) {
  if (n == 0 || session_ == nullptr) return;
  if (s->h2_closed) {
    nghttp2_session_consume_connection(session_, n);
  } else {
    nghttp2_session_consume(session_, s->id, n);
  }
}

void ConnectionImpl::StreamConsume(StreamId id, size_t n) {
  Stream* s = Find(id);
  if (s == nullptr) return;
  n = std::min(n, s->recv.size());
  s->recv.Consume(n);
  ReleaseWindow(s, n);
  if (s->recv.empty()) MaybeFinishStream(s);
}

size_t ConnectionImpl::StreamRead(StreamId id, absl::Span<uint8_t> out) {
  size_t total = 0;
  while (total < out.size()) {
    absl::Span<const uint8_t> f = StreamPeek(id);
    if (f.empty()) break;
    size_t n = std::min(f.size(), out.size() - total);
    std::memcpy(out.data() + total, f.data(), n);
    StreamConsume(id, n);
    total += n;
  }
  return total;
}

bool ConnectionImpl::StreamAtEof(StreamId id) const {
  Stream* s = Find(id);
  if (s == nullptr) return true;
  // Only a clean end is end-of-stream; a failed or refused stream is not.
  return s->recv.empty() && s->close_status.ok() && s->phase == Stream::Phase::kOpen &&
         (s->remote_ended || s->h2_closed);
}

size_t ConnectionImpl::StreamBuffered(StreamId id) const {
  Stream* s = Find(id);
  return s == nullptr ? 0 : s->recv.size();
}

size_t ConnectionImpl::StreamUnsent(StreamId id) const {
  Stream* s = Find(id);
  return s == nullptr ? 0 : s->send.size();
}

absl::Status ConnectionImpl::StreamReset(StreamId id, ResetCode code) {
  Stream* s = FindLive(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("no stream ", id));
  if (s->h2_closed) return absl::OkStatus();
  uint32_t wire = static_cast<uint32_t>(code);
  s->local_reset = true;
  if (s->close_status.ok()) {
    s->close_status = code == ResetCode::kCancel
                          ? absl::CancelledError("stream reset locally")
                          : absl::CancelledError(absl::StrCat("stream reset locally: ",
                                                              nghttp2_http2_strerror(wire)));
  }
  int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, wire);
  if (rv != 0) return absl::InternalError(nghttp2_strerror(rv));
  return absl::OkStatus();
}

StreamStats ConnectionImpl::GetStreamStats(StreamId id) const {
  Stream* s = Find(id);
  return s == nullptr ? StreamStats{} : s->stats;
}

void ConnectionImpl::SignalReadable(Stream* s) {
  if (s->readable_signalled || s->closed_event_queued) return;
  if (s->phase == Stream::Phase::kAwaitingAccept || s->phase == Stream::Phase::kHeaders) return;
  s->readable_signalled = true;
  Event ev;
  ev.type = Event::Type::kStreamReadable;
  ev.stream = s->id;
  PushEvent(std::move(ev));
}

void ConnectionImpl::MaybeFinishStream(Stream* s) {
  if (!s->h2_closed || s->closed_event_queued) return;
  if (!s->close_status.ok() && !s->recv.empty()) {
    ReleaseWindow(s, s->recv.size());
    s->recv.Clear();
  }
  if (!s->recv.empty()) return;  // clean end: the host reads what is left first
  s->closed_event_queued = true;
  s->send.Clear();
  Event ev;
  ev.type = Event::Type::kStreamClosed;
  ev.stream = s->id;
  ev.status = s->close_status;
  ev.http_status = s->http_status;
  PushEvent(std::move(ev));
}

// ---------------------------------------------------------------------------
// nghttp2 callbacks

int H2Callbacks::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  if (self->opts_.role != Role::kServer || frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  if (self->open_streams_ >= self->opts_.settings.max_concurrent_streams) {
    // Over our limit: refused, the connection kept (RFC 9113 5.1.2). The
    // stream gets no state of ours; its header callbacks find none.
    if (nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM) != 0) {
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    ++self->refusals_unsent_;
    ++self->streams_refused_;
    return 0;
  }
  auto stream = std::make_unique<Stream>(&self->pool_);
  stream->id = frame->hd.stream_id;
  stream->phase = Stream::Phase::kHeaders;
  nghttp2_session_set_stream_user_data(session, stream->id, stream.get());
  ++self->open_streams_;
  self->streams_[stream->id] = std::move(stream);
  return 0;
}

int H2Callbacks::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                          size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                          void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  Stream* s = self->Find(frame->hd.stream_id);
  if (s == nullptr || s->closed_event_queued) return 0;
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > self->opts_.settings.max_header_list_size) {
    s->headers_too_large = true;
    return 0;
  }
  absl::string_view n(reinterpret_cast<const char*>(name), namelen);
  absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (self->opts_.role == Role::kServer) {
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers: ignored
    if (n == ":method") {
      s->method = std::string(v);
    } else if (n == ":authority") {
      s->request.authority = std::string(v);
    } else if (n == ":scheme") {
      s->has_scheme = true;
    } else if (n == ":path") {
      s->has_path = true;
    } else if (n == ":protocol") {
      s->has_protocol = true;
    } else if (!n.empty() && n[0] != ':') {
      s->request.headers.push_back({std::string(n), std::string(v)});
    }
  } else if (n == ":status") {
    int status = 0;
    if (absl::SimpleAtoi(v, &status)) s->http_status = status;
  } else if (s->phase == Stream::Phase::kAwaitingResponse && !n.empty() && n[0] != ':') {
    s->response_headers.push_back({std::string(n), std::string(v)});
  }
  return 0;
}

void ConnectionImpl::OnRequestComplete(Stream* s) {
  int status = 0;
  std::string why;
  if (s->headers_too_large) {
    status = 431;
    why = "request headers too large";
  } else if (s->method != "CONNECT") {
    status = 400;
    why = absl::StrCat("method \"", absl::CHexEscape(s->method), "\" is not CONNECT");
  } else if (s->has_protocol || s->has_scheme || s->has_path) {
    status = 400;
    why = "extended CONNECT (:protocol, :scheme, :path) is not HBONE";
  } else if (absl::StatusOr<Authority> a = ParseAuthority(s->request.authority); !a.ok()) {
    status = 400;
    why = std::string(a.status().message());
  }
  s->phase = Stream::Phase::kAwaitingAccept;
  if (status != 0) {
    Log(LogLevel::kDebug, absl::StrCat("stream ", s->id, " rejected with ", status, ": ", why));
    (void)RejectStream(s->id, status);
    s->close_status = absl::InvalidArgumentError(why);
    return;
  }
  Event ev;
  ev.type = Event::Type::kStreamRequest;
  ev.stream = s->id;
  ev.request = s->request;
  PushEvent(std::move(ev));
}

void ConnectionImpl::OnResponseComplete(Stream* s, bool end_stream) {
  if (s->phase != Stream::Phase::kAwaitingResponse) return;
  if (s->http_status >= 100 && s->http_status < 200) {  // informational
    s->response_headers.clear();
    return;
  }
  Event ev;
  ev.type = Event::Type::kStreamResponse;
  ev.stream = s->id;
  ev.http_status = s->http_status;
  ev.headers = std::move(s->response_headers);
  s->response_headers.clear();
  PushEvent(std::move(ev));
  if (s->http_status == 200 && !end_stream) {
    s->phase = Stream::Phase::kOpen;
    if (s->deferred) {
      s->deferred = false;
      nghttp2_session_resume_data(session_, s->id);
    }
    SignalReadable(s);
    return;
  }
  s->phase = Stream::Phase::kFailed;
  s->close_status =
      s->http_status == 401
          ? absl::PermissionDeniedError("server answered 401 (not authorized)")
          : absl::UnavailableError(absl::StrCat("server answered ", s->http_status, " to CONNECT"));
  if (!end_stream) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
}

int H2Callbacks::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      Stream* s = self->Find(frame->hd.stream_id);
      if (s == nullptr || s->closed_event_queued) break;
      bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
      if (self->opts_.role == Role::kServer && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (end) s->remote_ended = true;
        self->OnRequestComplete(s);
      } else if (self->opts_.role == Role::kClient) {
        self->OnResponseComplete(s, end);
        if (end) {
          s->remote_ended = true;
          self->SignalReadable(s);
        }
      } else if (end) {
        s->remote_ended = true;
        self->SignalReadable(s);
      }
      break;
    }
    case NGHTTP2_DATA: {
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) break;
      Stream* s = self->Find(frame->hd.stream_id);
      if (s == nullptr || s->closed_event_queued) break;
      s->remote_ended = true;
      self->SignalReadable(s);
      break;
    }
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) self->ping_outstanding_ = false;
      break;
    case NGHTTP2_GOAWAY: {
      self->goaway_received_ = true;
      if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        self->Log(LogLevel::kWarn, absl::StrCat("peer sent GOAWAY ",
                                                nghttp2_http2_strerror(frame->goaway.error_code)));
      }
      Event ev;
      ev.type = Event::Type::kGoaway;
      self->PushEvent(std::move(ev));
      break;
    }
    default:
      break;
  }
  return 0;
}

int H2Callbacks::OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  if (frame->hd.type == NGHTTP2_HEADERS && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    Stream* s = self->Find(frame->hd.stream_id);
    if (s != nullptr && s->reject_then_reset && !s->h2_closed) {
      // RFC 9113 8.1: after a complete response, ask the client to stop
      // sending with RST_STREAM(NO_ERROR).
      s->reject_then_reset = false;
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
    }
  }
  if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM &&
      self->refusals_unsent_ > 0 && self->Find(frame->hd.stream_id) == nullptr) {
    --self->refusals_unsent_;
  }
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_sent_ = true;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR && self->close_status_.ok()) {
      self->close_status_ = absl::InvalidArgumentError(
          absl::StrCat("HTTP/2 protocol error from peer (sent GOAWAY ",
                       nghttp2_http2_strerror(frame->goaway.error_code), ")"));
    }
  }
  return 0;
}

int H2Callbacks::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                             const uint8_t* data, size_t len, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  Stream* s = self->Find(stream_id);
  if (s == nullptr || s->closed_event_queued || s->phase == Stream::Phase::kFailed) {
    nghttp2_session_consume(session, stream_id, len);
    return 0;
  }
  s->recv.Append(absl::Span<const uint8_t>(data, len));
  s->stats.bytes_received += len;
  self->bytes_moved_ += len;
  self->SignalReadable(s);
  return 0;
}

int H2Callbacks::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  Stream* s = self->Find(stream_id);
  if (s == nullptr || s->h2_closed) return 0;
  s->h2_closed = true;
  --self->open_streams_;
  if (s->close_status.ok()) {
    if (s->phase == Stream::Phase::kAwaitingResponse) {
      s->close_status =
          error_code == NGHTTP2_REFUSED_STREAM
              ? absl::UnavailableError("stream refused by peer")
              : absl::UnavailableError(absl::StrCat("stream closed before a response: ",
                                                    nghttp2_http2_strerror(error_code)));
    } else if (error_code == NGHTTP2_NO_ERROR || error_code == NGHTTP2_CANCEL) {
      // Clean end (both END_STREAMs, or the peer reset with NO_ERROR/CANCEL).
      s->remote_ended = true;
    } else {
      s->close_status = StatusForResetCode(error_code);
    }
  }
  self->SignalReadable(s);
  self->MaybeFinishStream(s);
  return 0;
}

ssize_t H2Callbacks::ReadData(nghttp2_session*, int32_t, uint8_t*, size_t length, uint32_t* flags,
                              nghttp2_data_source* source, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  auto* s = static_cast<Stream*>(source->ptr);
  if (s->phase != Stream::Phase::kOpen) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = std::min(length, s->send.size());
  if (n == 0 && !s->local_end_requested) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  if (n == s->send.size() && s->local_end_requested) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    s->local_ended = true;
  }
  (void)self;
  return static_cast<ssize_t>(n);
}

int H2Callbacks::SendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                          size_t length, nghttp2_data_source* source, void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  auto* s = static_cast<Stream*>(source->ptr);
  self->plain_out_.append(reinterpret_cast<const char*>(framehd), 9);
  if (frame->data.padlen > 0) {
    // We never ask for padding; keep the frame well-formed if it happens.
    self->plain_out_.push_back(static_cast<char>(frame->data.padlen - 1));
  }
  // The payload is sealed straight from the stream's send queue: only enough
  // of it is copied to top up the pending plaintext (frame headers, small
  // frames) to one full TLS record, whole records go from the queue to
  // TLS writes, and a short tail is kept back to start the next record.
  size_t left = length;
  while (left > 0) {
    if (!self->plain_out_.empty()) {
      size_t take = std::min(left, kTlsRecord - std::min(kTlsRecord, self->plain_out_.size()));
      while (take > 0) {
        absl::Span<const uint8_t> f = s->send.Front();
        size_t n = std::min(take, f.size());
        self->plain_out_.append(reinterpret_cast<const char*>(f.data()), n);
        s->send.Consume(n);
        take -= n;
        left -= n;
      }
      if (self->plain_out_.size() < kTlsRecord) break;  // all payload taken
      if (!self->SealPlain()) return NGHTTP2_ERR_CALLBACK_FAILURE;
      continue;
    }
    if (left < kTlsRecord) {
      // Short tail: copied, so it shares a record with what follows.
      while (left > 0) {
        absl::Span<const uint8_t> f = s->send.Front();
        size_t n = std::min(left, f.size());
        self->plain_out_.append(reinterpret_cast<const char*>(f.data()), n);
        s->send.Consume(n);
        left -= n;
      }
      break;
    }
    absl::Span<const uint8_t> f = s->send.Front();
    size_t n = std::min(f.size(), left);
    if (n >= kTlsRecord) {
      n -= n % kTlsRecord;
    } else {
      // The chunk ends inside a record: copy it to start the next one.
      self->plain_out_.append(reinterpret_cast<const char*>(f.data()), n);
      s->send.Consume(n);
      left -= n;
      continue;
    }
    if (!self->tls_->Write(f.subspan(0, n))) {
      self->tls_write_failed_ = true;
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    s->send.Consume(n);
    left -= n;
  }
  if (frame->data.padlen > 1) self->plain_out_.append(frame->data.padlen - 1, '\0');
  s->stats.bytes_sent += length;
  self->bytes_moved_ += length;
  if (s->want_writable && s->send.size() <= self->opts_.settings.stream_send_buffer / 2 &&
      !s->local_end_requested) {
    s->want_writable = false;
    Event ev;
    ev.type = Event::Type::kStreamWritable;
    ev.stream = s->id;
    self->PushEvent(std::move(ev));
  }
  return 0;
}

ssize_t H2Callbacks::DataLength(nghttp2_session*, uint8_t, int32_t, int32_t, int32_t,
                                uint32_t remote_max_frame, void*) {
  return static_cast<ssize_t>(std::min<size_t>(remote_max_frame, kMaxDataFrame));
}

}  // namespace ambient::hbone
