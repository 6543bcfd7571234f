// The sans-IO HBONE connection, joined: TLS (TlsSession, over the bytes the
// host hands in and an output queue the host drains) under HTTP/2 (the
// ConnectionImpl members in http2_session.cc) carrying CONNECT streams. This
// file runs the state machine, moves bytes between the two sides and the
// host, keeps time and tears down; it names neither library.
#include "ambient/hbone/connection.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "hbone/connection_impl.h"
#include "hbone/tls_session.h"

namespace ambient::hbone {

namespace {
absl::Span<const uint8_t> AsBytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::New(ConnectionOptions options) {
  if (absl::Status s = TlsSession::CheckContext(options.ssl_ctx); !s.ok()) return s;
  const Settings& s = options.settings;
  if (s.stream_window < 65535 || s.stream_window > 0x7fffffffu || s.connection_window < 65535 ||
      s.connection_window > 0x7fffffffu) {
    return absl::InvalidArgumentError("flow-control windows must be 65535 .. 2^31-1");
  }
  if (s.max_frame_size < 16384 || s.max_frame_size > 16777215) {
    return absl::InvalidArgumentError("max_frame_size must be 16384 .. 2^24-1");
  }
  if (s.stream_send_buffer == 0) {
    return absl::InvalidArgumentError("stream_send_buffer must be > 0");
  }
  auto conn = std::make_unique<ConnectionImpl>(std::move(options));
  if (absl::Status st = conn->Init(); !st.ok()) return st;
  return std::unique_ptr<Connection>(std::move(conn));
}

ConnectionImpl::~ConnectionImpl() { H2End(); }

// ---------------------------------------------------------------------------
// Setup

absl::Status ConnectionImpl::Init() {
  absl::StatusOr<std::unique_ptr<TlsSession>> tls = TlsSession::New(
      opts_.role, opts_.ssl_ctx, opts_.expected_identities, opts_.bundles, &tls_out_);
  if (!tls.ok()) return tls.status();
  tls_ = *std::move(tls);
  return absl::OkStatus();
}

void ConnectionImpl::Start(absl::Time now) {
  if (state_ != State::kIdle) return;
  now_ = now;
  state_ = State::kHandshaking;
  handshake_deadline_ = now + opts_.settings.handshake_timeout;
  if (opts_.role == Role::kClient) DoHandshake();
}

void ConnectionImpl::DoHandshake() {
  absl::StatusOr<bool> done = tls_->Handshake();
  if (!done.ok()) {
    Fail(done.status());
    return;
  }
  if (!*done) return;
  absl::StatusOr<identity::SpiffeId> peer = tls_->CheckPeer();
  if (!peer.ok()) {
    // Tell the peer why, as a TLS alert is no longer possible after the
    // handshake: close_notify, then drop.
    tls_->SendCloseNotify();
    Fail(peer.status());
    return;
  }
  peer_identity_ = *std::move(peer);
  if (absl::Status s = StartHttp2(); !s.ok()) Fail(s);
}

// ---------------------------------------------------------------------------
// Bytes in

absl::Status ConnectionImpl::Receive(absl::Span<const uint8_t> bytes, absl::Time now) {
  now_ = now;
  if (state_ == State::kClosed) return close_status_;
  if (state_ == State::kIdle) Start(now);
  tls_->SetInput(bytes);
  if (state_ == State::kHandshaking) DoHandshake();
  if (state_ == State::kEstablished) ReadTls();
  tls_->SetInput({});
  CheckDone();
  return state_ == State::kClosed ? close_status_ : absl::OkStatus();
}

void ConnectionImpl::ReadTls() {
  uint8_t buf[kTlsReadChunk];
  while (state_ == State::kEstablished) {
    TlsSession::ReadResult r = tls_->Read(absl::Span<uint8_t>(buf, sizeof(buf)));
    switch (r.kind) {
      case TlsSession::ReadResult::Kind::kData:
        if (absl::Status s = H2Receive(absl::Span<const uint8_t>(buf, r.n)); !s.ok()) {
          Fail(std::move(s));
          return;
        }
        continue;
      case TlsSession::ReadResult::Kind::kWantRead:
        return;
      case TlsSession::ReadResult::Kind::kClosed:
        // close_notify: the peer sends nothing more.
        if (open_streams_ == 0) {
          FinishGracefully();
        } else {
          Fail(absl::UnavailableError("peer closed the connection with streams still open"));
        }
        return;
      case TlsSession::ReadResult::Kind::kError:
        Fail(std::move(r.error));
        return;
    }
  }
}

void ConnectionImpl::ReceiveEof(absl::Time now) {
  now_ = now;
  switch (state_) {
    case State::kClosed:
      return;
    case State::kIdle:
    case State::kHandshaking:
      Fail(absl::UnavailableError("peer closed the connection during the TLS handshake"));
      return;
    case State::kEstablished:
      if (open_streams_ == 0) {
        FinishGracefully();
      } else {
        Fail(absl::UnavailableError("peer closed the connection with streams still open"));
      }
      return;
  }
}

// ---------------------------------------------------------------------------
// Bytes out

bool ConnectionImpl::SealPlain() {
  if (plain_out_.empty()) return true;
  if (!tls_->Write(AsBytes(plain_out_))) {
    tls_write_failed_ = true;
    return false;
  }
  plain_out_.clear();
  return true;
}

void ConnectionImpl::Pump() {
  if (session_ == nullptr || state_ != State::kEstablished) return;
  while (tls_out_.size() < kOutputHighWater) {
    if (absl::Status s = H2Produce(kPlainBatch); !s.ok()) {
      Fail(std::move(s));
      return;
    }
    if (plain_out_.empty()) break;
    if (!SealPlain()) {
      Fail(absl::InternalError(absl::StrCat("TLS write failed: ", TlsSession::LastError())));
      return;
    }
    if (state_ != State::kEstablished) return;
  }
  CheckDone();
}

absl::Span<const uint8_t> ConnectionImpl::PendingOutput() {
  Pump();
  return tls_out_.Front();
}

size_t ConnectionImpl::PendingOutputSpans(absl::Span<const uint8_t>* spans, size_t max) {
  Pump();
  return tls_out_.Peek(spans, max);
}

void ConnectionImpl::ConsumeOutput(size_t n) { tls_out_.Consume(n); }

// ---------------------------------------------------------------------------
// Time

absl::Time ConnectionImpl::NextDeadline() const {
  switch (state_) {
    case State::kIdle:
    case State::kClosed:
      return absl::InfiniteFuture();
    case State::kHandshaking:
      return handshake_deadline_;
    case State::kEstablished:
      if (ping_outstanding_) {
        return std::min(next_ping_, ping_sent_at_ + opts_.settings.ping_timeout);
      }
      return next_ping_;
  }
  return absl::InfiniteFuture();
}

void ConnectionImpl::OnTimeout(absl::Time now) {
  now_ = now;
  if (state_ == State::kHandshaking && now >= handshake_deadline_) {
    Fail(absl::DeadlineExceededError(absl::StrCat(
        "TLS handshake not done within ", absl::FormatDuration(opts_.settings.handshake_timeout))));
    return;
  }
  if (state_ != State::kEstablished) return;
  if (ping_outstanding_ && now >= ping_sent_at_ + opts_.settings.ping_timeout) {
    Fail(absl::DeadlineExceededError(absl::StrCat(
        "peer did not answer PING within ", absl::FormatDuration(opts_.settings.ping_timeout))));
    return;
  }
  if (now >= next_ping_) {
    // Nothing moved for a whole ping interval: give spare buffers back.
    if (bytes_moved_ == 0) pool_.Release();
    bytes_moved_ = 0;
    if (!ping_outstanding_ && H2SubmitPing()) {
      ping_outstanding_ = true;
      ping_sent_at_ = now;
    }
    next_ping_ = now + opts_.settings.ping_interval;
  }
}

// ---------------------------------------------------------------------------
// Lifecycle

bool ConnectionImpl::PollEvent(Event* event) {
  if (events_.empty()) return false;
  *event = std::move(events_.front());
  events_.pop_front();
  if (event->type == Event::Type::kStreamClosed) streams_.erase(event->stream);
  if (event->type == Event::Type::kStreamReadable) {
    if (Stream* s = Find(event->stream)) s->readable_signalled = false;
  }
  return true;
}

void ConnectionImpl::Drain() {
  if (state_ != State::kEstablished || goaway_sent_) return;
  goaway_sent_ = true;
  H2SubmitGoaway();
  CheckDone();
}

void ConnectionImpl::Abort(absl::Status status) {
  if (status.ok()) status = absl::CancelledError("connection aborted");
  Fail(std::move(status));
}

void ConnectionImpl::Fail(absl::Status status) {
  if (state_ == State::kClosed) return;
  Log(LogLevel::kDebug, absl::StrCat("connection failed: ", status.ToString()));
  if (session_ != nullptr && state_ == State::kEstablished) {
    // Best effort: tell the peer with GOAWAY, then close_notify.
    plain_out_.clear();
    H2Terminate(status);
    (void)tls_->Write(AsBytes(plain_out_));
    plain_out_.clear();
  }
  if (tls_ != nullptr) tls_->SendCloseNotify();
  TlsSession::ClearErrors();
  state_ = State::kClosed;
  close_status_ = status;
  H2End();
  for (auto& [id, s] : streams_) {
    if (s->closed_event_queued) continue;
    if (!s->h2_closed) {
      s->h2_closed = true;
      --open_streams_;
      if (s->close_status.ok()) s->close_status = status;
    }
    s->recv.Clear();
    s->send.Clear();
    MaybeFinishStream(s.get());
  }
  Event ev;
  ev.type = Event::Type::kConnectionClosed;
  ev.status = status;
  PushEvent(std::move(ev));
}

void ConnectionImpl::FinishGracefully() {
  if (state_ == State::kClosed) return;
  if (tls_ != nullptr) {
    tls_->SendCloseNotify();
    TlsSession::ClearErrors();
  }
  state_ = State::kClosed;
  close_status_ = absl::OkStatus();
  H2End();
  for (auto& [id, s] : streams_) {
    if (!s->h2_closed) {
      s->h2_closed = true;
      --open_streams_;
      if (s->close_status.ok()) s->close_status = absl::UnavailableError("connection closed");
    }
    MaybeFinishStream(s.get());
  }
  Event ev;
  ev.type = Event::Type::kConnectionClosed;
  PushEvent(std::move(ev));
}

void ConnectionImpl::CheckDone() {
  if (state_ != State::kEstablished || session_ == nullptr) return;
  if (H2Finished()) {
    // GOAWAY exchanged (or a protocol error sent) and no stream left.
    FinishGracefully();
  }
}

bool ConnectionImpl::CanOpenStream() const {
  return opts_.role == Role::kClient && state_ == State::kEstablished && !goaway_received_ &&
         !goaway_sent_ && open_streams_ < MaxStreams();
}

uint32_t ConnectionImpl::MaxStreams() const {
  uint32_t ours = opts_.settings.max_concurrent_streams;
  if (opts_.role == Role::kServer || session_ == nullptr) return ours;
  uint32_t theirs = H2PeerMaxStreams();
  return std::min(ours, theirs);
}

}  // namespace ambient::hbone
