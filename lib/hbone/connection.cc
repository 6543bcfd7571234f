// The sans-IO HBONE connection: TLS (BoringSSL, through a BIO that reads from
// the bytes the host hands in and writes into an output buffer the host
// drains) under HTTP/2 (nghttp2, mem_recv/mem_send) carrying CONNECT streams.
#include "ambient/hbone/connection.h"

#include <nghttp2/nghttp2.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_join.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/base/runtime_check.h"
#include "ambient/base/status.h"
#include "ambient/hbone/authority.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/tls.h"
#include "ambient/identity/trust_bundle.h"
#include "hbone/byte_queue.h"
#include "hbone/peer_identity.h"

namespace ambient::hbone {

namespace {

constexpr size_t kPlainBatch = 64 * 1024;        // plaintext gathered per SSL_write
constexpr size_t kOutputHighWater = 256 * 1024;  // stop producing above this
constexpr size_t kTlsReadChunk = 16 * 1024 + 256;
constexpr uint32_t kClientDefaultStreams = 100;
constexpr uint32_t kServerDefaultStreams = 200;
constexpr uint32_t kClientHeaderList = 16 * 1024;
constexpr uint32_t kServerHeaderList = 64 * 1024;
constexpr size_t kMaxDataFrame = 64 * 1024;
constexpr size_t kTlsRecord = 16 * 1024;  // TLS 1.3 maximum plaintext per record
constexpr uint8_t kAlpnH2[] = {2, 'h', '2'};

std::string TlsErrorString() {
  uint32_t e = ERR_get_error();
  std::string out;
  while (e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
    e = ERR_get_error();
  }
  return out.empty() ? "no detail" : out;
}

absl::Status StatusForResetCode(uint32_t code) {
  return absl::UnavailableError(
      absl::StrCat("stream reset by peer: ", nghttp2_http2_strerror(code)));
}

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
      s.max_header_list_size =
          opts_.role == Role::kClient ? kClientHeaderList : kServerHeaderList;
    }
  }

  ~ConnectionImpl() override {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

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
  const std::string& PeerIdentity() const override { return peer_identity_; }
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
  absl::Status StreamReset(StreamId id) override;
  StreamStats GetStreamStats(StreamId id) const override;

 private:
  enum class State { kIdle, kHandshaking, kEstablished, kClosed };

  // nghttp2 callbacks.
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                      void* ud);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* ud);
  static int OnDataChunk(nghttp2_session*, uint8_t flags, int32_t stream_id,
                         const uint8_t* data, size_t len, void* ud);
  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud);
  static ssize_t ReadData(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source* source, void* ud);
  static int SendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                      size_t length, nghttp2_data_source* source, void* ud);
  static ssize_t DataLength(nghttp2_session*, uint8_t frame_type, int32_t stream_id,
                            int32_t session_window, int32_t stream_window,
                            uint32_t remote_max_frame, void* ud);

  // BIO between BoringSSL and our buffers.
  static int BioWrite(BIO* bio, const char* data, int len);
  static int BioRead(BIO* bio, char* out, int len);
  static long BioCtrl(BIO* bio, int cmd, long larg, void* parg);
  static BIO_METHOD* BioMethod();

  void Log(LogLevel level, absl::string_view msg) const {
    if (opts_.log) opts_.log(level, "hbone", msg);
  }
  void DoHandshake();
  absl::Status CheckPeer();
  absl::Status StartHttp2();
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
  nghttp2_data_provider Provider(Stream* s) {
    nghttp2_data_provider p;
    p.source.ptr = s;
    p.read_callback = &ConnectionImpl::ReadData;
    return p;
  }

  ConnectionOptions opts_;
  State state_ = State::kIdle;
  bssl::UniquePtr<SSL> ssl_;
  nghttp2_session* session_ = nullptr;
  absl::Span<const uint8_t> in_view_;
  // Spare 64 KiB chunks for this connection's queues (declared before every
  // queue that uses it). Up to 64 (4 MiB, one stream window) are kept while
  // data flows: with fewer, a bulk stream whose receive queue swings by a few
  // MiB freed and re-allocated chunks at the top of the heap, and glibc
  // trimmed and re-faulted those pages (tens of thousands of page faults per
  // GB on the server side). All spares go back after a ping interval
  // without traffic (OnTimeout).
  ChunkPool pool_{64};
  ByteQueue tls_out_{&pool_};
  uint64_t bytes_moved_ = 0;        // payload since the last PING, for idle release
  std::string plain_out_;
  bool tls_write_failed_ = false;
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
  bool shutdown_sent_ = false;
  std::string peer_identity_;
};

// ---------------------------------------------------------------------------
// BIO

BIO_METHOD* ConnectionImpl::BioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ambient-hbone");
    BIO_meth_set_write(m, &ConnectionImpl::BioWrite);
    BIO_meth_set_read(m, &ConnectionImpl::BioRead);
    BIO_meth_set_ctrl(m, &ConnectionImpl::BioCtrl);
    return m;
  }();
  return method;
}

int ConnectionImpl::BioWrite(BIO* bio, const char* data, int len) {
  auto* self = static_cast<ConnectionImpl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  self->tls_out_.Append(
      absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len)));
  return len;
}

int ConnectionImpl::BioRead(BIO* bio, char* out, int len) {
  auto* self = static_cast<ConnectionImpl*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  if (self->in_view_.empty()) {
    BIO_set_retry_read(bio);
    return -1;
  }
  size_t n = std::min(self->in_view_.size(), static_cast<size_t>(len));
  std::memcpy(out, self->in_view_.data(), n);
  self->in_view_.remove_prefix(n);
  return static_cast<int>(n);
}

long ConnectionImpl::BioCtrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Setup

absl::Status ConnectionImpl::Init() {
  ssl_.reset(SSL_new(opts_.ssl_ctx));
  if (!ssl_) return absl::ResourceExhaustedError("SSL_new failed: " + TlsErrorString());
  SSL* ssl = ssl_.get();
  if (!SSL_set_min_proto_version(ssl, TLS1_3_VERSION) ||
      !SSL_set_max_proto_version(ssl, TLS1_3_VERSION)) {
    return absl::InternalError("cannot restrict TLS to 1.3");
  }
  SSL_set_options(ssl, SSL_OP_NO_TICKET);
  if (opts_.role == Role::kClient) {
    if (SSL_set_alpn_protos(ssl, kAlpnH2, sizeof(kAlpnH2)) != 0) {
      return absl::ResourceExhaustedError("cannot set ALPN");
    }
    if (opts_.bundles != nullptr) {
      std::vector<identity::SpiffeId> expected;
      for (const std::string& text : opts_.expected_identities) {
        absl::StatusOr<identity::SpiffeId> id = identity::SpiffeId::Parse(text);
        if (!id.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("bad expected identity: ", id.status().message()));
        }
        expected.push_back(*std::move(id));
      }
      absl::Status st;
      if (expected.empty()) {
        absl::StatusOr<std::shared_ptr<const identity::SvidVerifier>> v =
            identity::SvidVerifier::Create(opts_.bundles, identity::VerifyPolicy::AnyTrustDomain());
        st = v.ok() ? identity::InstallVerifier(ssl, *std::move(v)) : v.status();
      } else {
        st = identity::InstallClientVerifier(ssl, opts_.bundles, std::move(expected));
      }
      if (!st.ok()) return st;
    }
    SSL_set_connect_state(ssl);
  } else {
    SSL_set_accept_state(ssl);
  }
  BIO* bio = BIO_new(BioMethod());
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new failed");
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // one reference, used for both directions
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
  int r = SSL_do_handshake(ssl_.get());
  if (r == 1) {
    if (absl::Status s = CheckPeer(); !s.ok()) {
      // Tell the peer why, as a TLS alert is no longer possible after the
      // handshake: close_notify, then drop.
      SSL_shutdown(ssl_.get());
      Fail(s);
      return;
    }
    if (absl::Status s = StartHttp2(); !s.ok()) {
      Fail(s);
      return;
    }
    return;
  }
  int err = SSL_get_error(ssl_.get(), r);
  if (err == SSL_ERROR_WANT_READ) return;
  std::string why = TlsErrorString();
  absl::Status verify_failure = identity::VerifyFailure(ssl_.get());
  long verify = SSL_get_verify_result(ssl_.get());
  if (!verify_failure.ok()) {
    Fail(Prefixed("TLS handshake failed: peer certificate rejected", verify_failure));
    return;
  }
  if (verify != X509_V_OK) {
    why = absl::StrCat("peer certificate rejected: ", X509_verify_cert_error_string(verify),
                       " (", why, ")");
  }
  Fail(absl::UnauthenticatedError(absl::StrCat("TLS handshake failed: ", why)));
}

absl::Status ConnectionImpl::CheckPeer() {
  SSL* ssl = ssl_.get();
  if (SSL_version(ssl) != TLS1_3_VERSION) {
    return absl::UnauthenticatedError("peer did not negotiate TLS 1.3");
  }
  const uint8_t* alpn = nullptr;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
  if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
    return absl::UnauthenticatedError("peer did not negotiate ALPN h2");
  }
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl);
  uint16_t suite = cipher == nullptr ? 0 : SSL_CIPHER_get_protocol_id(cipher);
  if (suite != 0x1301 && suite != 0x1302) {  // TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384
    return absl::UnauthenticatedError(
        absl::StrCat("peer negotiated a non-AES-GCM cipher suite (0x", absl::Hex(suite), ")"));
  }
  bssl::UniquePtr<X509> peer(SSL_get_peer_certificate(ssl));
  if (!peer) return absl::UnauthenticatedError("peer presented no certificate");
  if (SSL_get_verify_result(ssl) != X509_V_OK) {
    return absl::UnauthenticatedError(absl::StrCat(
        "peer certificate not verified: ",
        X509_verify_cert_error_string(SSL_get_verify_result(ssl))));
  }
  // Prefer the identity ambient's verifier established; a host's own
  // SSL_CTX verification leaves it to us to read the URI SAN.
  absl::StatusOr<std::string> id;
  const identity::SpiffeId* verified = identity::PeerIdentity(ssl);
  if (verified != nullptr) {
    id = verified->str();
  } else {
    id = FirstSpiffeId(peer.get());
  }
  if (!id.ok()) return id.status();
  std::vector<std::string> peer_ids = UriSans(peer.get());
  if (opts_.role == Role::kClient) {
    if (!opts_.expected_identities.empty()) {
      bool match = false;
      for (const std::string& uri : peer_ids) {
        for (const std::string& want : opts_.expected_identities) {
          if (uri == want) match = true;
        }
      }
      if (!match) {
        return absl::PermissionDeniedError(absl::StrCat(
            "server identity ", *id, " is not one of the expected identities (",
            absl::StrJoin(opts_.expected_identities, ", "), ")"));
      }
    }
  } else if (verified == nullptr) {
    // ambient's server verifier enforces the trust domain itself; a host's
    // own verification does not, so check it here.
    X509* own = SSL_get_certificate(ssl);
    absl::StatusOr<std::string> own_id = FirstSpiffeId(own);
    if (!own_id.ok()) {
      return absl::FailedPreconditionError("our own certificate has no SPIFFE ID");
    }
    absl::string_view own_td = TrustDomainOf(*own_id);
    if (TrustDomainOf(*id) != own_td) {
      return absl::PermissionDeniedError(absl::StrCat("client identity ", *id,
                                                      " is not in our trust domain ", own_td));
    }
  }
  peer_identity_ = std::move(*id);
  return absl::OkStatus();
}

absl::Status ConnectionImpl::StartHttp2() {
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return absl::ResourceExhaustedError("nghttp2");
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &OnFrameRecv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &OnFrameSend);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &OnStreamClose);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &SendData);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, &DataLength);
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
    iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s.max_concurrent_streams});
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

// ---------------------------------------------------------------------------
// Bytes in

absl::Status ConnectionImpl::Receive(absl::Span<const uint8_t> bytes, absl::Time now) {
  now_ = now;
  if (state_ == State::kClosed) return close_status_;
  if (state_ == State::kIdle) Start(now);
  in_view_ = bytes;
  if (state_ == State::kHandshaking) DoHandshake();
  if (state_ == State::kEstablished) ReadTls();
  in_view_ = {};
  CheckDone();
  return state_ == State::kClosed ? close_status_ : absl::OkStatus();
}

void ConnectionImpl::ReadTls() {
  uint8_t buf[kTlsReadChunk];
  while (state_ == State::kEstablished) {
    int n = SSL_read(ssl_.get(), buf, sizeof(buf));
    if (n > 0) {
      ssize_t rv = nghttp2_session_mem_recv(session_, buf, static_cast<size_t>(n));
      if (rv < 0) {
        Fail(absl::InvalidArgumentError(
            absl::StrCat("malformed HTTP/2 from peer: ", nghttp2_strerror(static_cast<int>(rv)))));
        return;
      }
      continue;
    }
    int err = SSL_get_error(ssl_.get(), n);
    if (err == SSL_ERROR_WANT_READ) return;
    if (err == SSL_ERROR_ZERO_RETURN) {
      // close_notify: the peer sends nothing more.
      if (open_streams_ == 0) {
        FinishGracefully();
      } else {
        Fail(absl::UnavailableError("peer closed the connection with streams still open"));
      }
      return;
    }
    Fail(absl::DataLossError(absl::StrCat("TLS error from peer: ", TlsErrorString())));
    return;
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
  int w = SSL_write(ssl_.get(), plain_out_.data(), static_cast<int>(plain_out_.size()));
  if (w <= 0 || static_cast<size_t>(w) != plain_out_.size()) {
    tls_write_failed_ = true;
    return false;
  }
  plain_out_.clear();
  return true;
}

void ConnectionImpl::Pump() {
  if (session_ == nullptr || state_ != State::kEstablished) return;
  while (tls_out_.size() < kOutputHighWater) {
    while (plain_out_.size() < kPlainBatch) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0 || tls_write_failed_) {
        Fail(tls_write_failed_
                 ? absl::InternalError(absl::StrCat("TLS write failed: ", TlsErrorString()))
                 : absl::InternalError(absl::StrCat("HTTP/2 send failed: ",
                                                    nghttp2_strerror(static_cast<int>(n)))));
        return;
      }
      if (n == 0) break;
      plain_out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (plain_out_.empty()) break;
    if (!SealPlain()) {
      Fail(absl::InternalError(absl::StrCat("TLS write failed: ", TlsErrorString())));
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
    Fail(absl::DeadlineExceededError(absl::StrCat("TLS handshake not done within ",
                                                  absl::FormatDuration(opts_.settings.handshake_timeout))));
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
    if (!ping_outstanding_) {
      uint8_t opaque[8];
      ++ping_counter_;
      std::memcpy(opaque, &ping_counter_, sizeof(opaque));
      if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) == 0) {
        ping_outstanding_ = true;
        ping_sent_at_ = now;
      }
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
  int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, NGHTTP2_NO_ERROR, nullptr, 0);
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
    // A protocol violation is PROTOCOL_ERROR; our own decision to stop
    // (abort, shutdown, a peer that stopped answering) is NO_ERROR, as
    // ztunnel does; anything else INTERNAL_ERROR.
    uint32_t code = NGHTTP2_INTERNAL_ERROR;
    if (status.code() == absl::StatusCode::kInvalidArgument) code = NGHTTP2_PROTOCOL_ERROR;
    if (status.code() == absl::StatusCode::kDeadlineExceeded ||
        status.code() == absl::StatusCode::kCancelled) {
      code = NGHTTP2_NO_ERROR;
    }
    nghttp2_session_terminate_session(session_, code);
    plain_out_.clear();
    for (int i = 0; i < 16; ++i) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n <= 0) break;
      plain_out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!plain_out_.empty()) SSL_write(ssl_.get(), plain_out_.data(), static_cast<int>(plain_out_.size()));
    plain_out_.clear();
  }
  if (!shutdown_sent_ && ssl_ && SSL_is_init_finished(ssl_.get())) {
    shutdown_sent_ = true;
    SSL_shutdown(ssl_.get());
  }
  ERR_clear_error();
  state_ = State::kClosed;
  close_status_ = status;
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
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
  if (!shutdown_sent_ && ssl_ && SSL_is_init_finished(ssl_.get())) {
    shutdown_sent_ = true;
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
  }
  state_ = State::kClosed;
  close_status_ = absl::OkStatus();
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
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
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
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
  uint32_t theirs =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  return std::min(ours, theirs);
}

// ---------------------------------------------------------------------------
// Streams (host side)

absl::StatusOr<StreamId> ConnectionImpl::OpenStream(const ConnectRequest& request) {
  if (opts_.role != Role::kClient) {
    return absl::FailedPreconditionError("only a client connection opens streams");
  }
  if (!CanOpenStream()) {
    return absl::UnavailableError(state_ != State::kEstablished
                                      ? "connection is not established"
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
    if (h.name.empty() || h.name[0] == ':' ||
        !nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(h.name.data()), h.name.size()) ||
        !nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(h.value.data()),
                                    h.value.size())) {
      return absl::InvalidArgumentError(absl::StrCat("bad request header \"", absl::CHexEscape(h.name), "\""));
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
    if (h.name == "traceparent" || h.name == "forwarded") nva.back().flags = NGHTTP2_NV_FLAG_NO_INDEX;
  }
  auto stream = std::make_unique<Stream>(&pool_);
  stream->phase = Stream::Phase::kAwaitingResponse;
  stream->request = request;
  nghttp2_data_provider prd = Provider(stream.get());
  int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &prd, stream.get());
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
    if (h.name.empty() || h.name[0] == ':' ||
        !nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(h.name.data()), h.name.size()) ||
        !nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(h.value.data()),
                                    h.value.size())) {
      return absl::InvalidArgumentError(absl::StrCat("bad response header \"", absl::CHexEscape(h.name), "\""));
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
  if (s->local_end_requested) return absl::FailedPreconditionError("stream write side is shut down");
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
  if (s->local_end_requested) return absl::FailedPreconditionError("stream write side is shut down");
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

size_t ConnectionImpl::StreamPeekSpans(StreamId id, absl::Span<const uint8_t>* spans,
                                       size_t max) {
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

absl::Status ConnectionImpl::StreamReset(StreamId id) {
  Stream* s = FindLive(id);
  if (s == nullptr) return absl::NotFoundError(absl::StrCat("no stream ", id));
  if (s->h2_closed) return absl::OkStatus();
  s->local_reset = true;
  if (s->close_status.ok()) s->close_status = absl::CancelledError("stream reset locally");
  int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
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

int ConnectionImpl::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                   void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  if (self->opts_.role != Role::kServer || frame->hd.type != NGHTTP2_HEADERS ||
      frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
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

int ConnectionImpl::OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
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
  s->close_status = s->http_status == 401
                        ? absl::PermissionDeniedError("server answered 401 (not authorized)")
                        : absl::UnavailableError(
                              absl::StrCat("server answered ", s->http_status, " to CONNECT"));
  if (!end_stream) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
}

int ConnectionImpl::OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
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

int ConnectionImpl::OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
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
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_sent_ = true;
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR && self->close_status_.ok()) {
      self->close_status_ = absl::InvalidArgumentError(absl::StrCat(
          "HTTP/2 protocol error from peer (sent GOAWAY ",
          nghttp2_http2_strerror(frame->goaway.error_code), ")"));
    }
  }
  return 0;
}

int ConnectionImpl::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
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

int ConnectionImpl::OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                  void* ud) {
  auto* self = static_cast<ConnectionImpl*>(ud);
  Stream* s = self->Find(stream_id);
  if (s == nullptr || s->h2_closed) return 0;
  s->h2_closed = true;
  --self->open_streams_;
  if (s->close_status.ok()) {
    if (s->phase == Stream::Phase::kAwaitingResponse) {
      s->close_status = error_code == NGHTTP2_REFUSED_STREAM
                            ? absl::UnavailableError("stream refused by peer")
                            : absl::UnavailableError(absl::StrCat(
                                  "stream closed before a response: ",
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

ssize_t ConnectionImpl::ReadData(nghttp2_session*, int32_t, uint8_t*, size_t length,
                                 uint32_t* flags, nghttp2_data_source* source, void* ud) {
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

int ConnectionImpl::SendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
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
  // SSL_write, and a short tail is kept back to start the next record.
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
    int w = SSL_write(self->ssl_.get(), f.data(), static_cast<int>(n));
    if (w <= 0 || static_cast<size_t>(w) != n) {
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

ssize_t ConnectionImpl::DataLength(nghttp2_session*, uint8_t, int32_t, int32_t, int32_t,
                                   uint32_t remote_max_frame, void*) {
  return static_cast<ssize_t>(std::min<size_t>(remote_max_frame, kMaxDataFrame));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Connection>> Connection::New(ConnectionOptions options) {
  if (absl::Status s = EnsureBoringSsl(); !s.ok()) return s;
  if (options.ssl_ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  if ((SSL_CTX_get_verify_mode(options.ssl_ctx) & SSL_VERIFY_PEER) == 0) {
    return absl::InvalidArgumentError(
        "the SSL_CTX does not verify peers (SSL_VERIFY_PEER): HBONE needs mutual TLS");
  }
  const Settings& s = options.settings;
  if (s.stream_window < 65535 || s.stream_window > 0x7fffffffu ||
      s.connection_window < 65535 || s.connection_window > 0x7fffffffu) {
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

// ---------------------------------------------------------------------------
// Context preparation

namespace {

int SelectH2(SSL*, const uint8_t** out, uint8_t* out_len, const uint8_t* in, unsigned in_len,
             void*) {
  const uint8_t* p = in;
  const uint8_t* end = in + in_len;
  while (p < end) {
    uint8_t len = *p++;
    if (len > end - p) break;
    if (len == 2 && p[0] == 'h' && p[1] == '2') {
      *out = p;
      *out_len = len;
      return SSL_TLSEXT_ERR_OK;
    }
    p += len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

absl::Status PrepareCommon(SSL_CTX* ctx) {
  if (absl::Status s = EnsureBoringSsl(); !s.ok()) return s;
  if (ctx == nullptr) return absl::InvalidArgumentError("ssl_ctx must not be NULL");
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
    return absl::InternalError("cannot restrict TLS to 1.3");
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return absl::OkStatus();
}

}  // namespace

absl::Status PrepareClientContext(ssl_ctx_st* ctx) {
  if (absl::Status s = PrepareCommon(ctx); !s.ok()) return s;
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnH2, sizeof(kAlpnH2)) != 0) {
    return absl::ResourceExhaustedError("cannot set ALPN");
  }
  return absl::OkStatus();
}

absl::Status PrepareServerContext(ssl_ctx_st* ctx) {
  if (absl::Status s = PrepareCommon(ctx); !s.ok()) return s;
  SSL_CTX_set_alpn_select_cb(ctx, &SelectH2, nullptr);
  int mode = SSL_CTX_get_verify_mode(ctx);
  if ((mode & SSL_VERIFY_PEER) != 0) {
    SSL_CTX_set_verify(ctx, mode | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, SSL_CTX_get_verify_callback(ctx));
  }
  return absl::OkStatus();
}

}  // namespace ambient::hbone
