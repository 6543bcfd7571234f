// The gRPC client channel over nghttp2 (sans I/O): see ambient/grpc/channel.h.
#include "ambient/grpc/channel.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpc/output_buffer.h"

namespace ambient::grpc {
namespace {

constexpr size_t kPrefix = 5;  // compressed flag + 4-byte big-endian length

// Header names and values as nghttp2 checks them (RFC 9113: lower-case
// token names, no NUL/CR/LF in values); pseudo-headers are ours alone.
bool ValidName(absl::string_view n) {
  return !n.empty() && n[0] != ':' &&
         nghttp2_check_header_name(reinterpret_cast<const uint8_t*>(n.data()), n.size()) != 0;
}

bool ValidValue(absl::string_view v) {
  return nghttp2_check_header_value(reinterpret_cast<const uint8_t*>(v.data()), v.size()) != 0;
}

nghttp2_nv Nv(absl::string_view name, absl::string_view value) {
  nghttp2_nv nv;
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = NGHTTP2_NV_FLAG_NONE;
  return nv;
}

struct Call {
  CallId id = 0;
  absl::Time deadline = absl::InfiniteFuture();
  std::string send;  // queued, not yet handed to nghttp2
  size_t send_off = 0;
  bool send_closed = false;
  std::string recv;
  bool headers_seen = false;
  int http_status = 0;
  bool failed = false;  // final_status decided locally; ignore what follows
  absl::Status final_status;
  bool has_grpc_status = false;
  absl::Status grpc_status;
  Metadata header_block;  // the block being received
  Metadata trailers;
};

class ChannelImpl final : public Channel {
 public:
  explicit ChannelImpl(ChannelOptions o) : opts_(std::move(o)) {}
  ~ChannelImpl() override {
    if (session_ != nullptr) nghttp2_session_del(session_);
  }

  absl::Status Init(absl::Time now) {
    nghttp2_session_callbacks* cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return absl::InternalError("nghttp2 callbacks");
    nghttp2_session_callbacks_set_on_header_callback(cb, &ChannelImpl::OnHeader);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &ChannelImpl::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &ChannelImpl::OnFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &ChannelImpl::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &ChannelImpl::OnStreamClose);
    nghttp2_option* opt;
    if (nghttp2_option_new(&opt) != 0) {
      nghttp2_session_callbacks_del(cb);
      return absl::InternalError("nghttp2 options");
    }
    // Headers and trailers are checked by nghttp2 (HTTP messaging rules).
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
    int rv = nghttp2_session_client_new2(&session_, cb, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) return absl::InternalError(absl::StrCat("nghttp2: ", nghttp2_strerror(rv)));
    nghttp2_settings_entry s[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, opts_.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64 * 1024},
    };
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, s, 3) != 0 ||
        nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                              static_cast<int32_t>(opts_.connection_window)) != 0) {
      return absl::InternalError("nghttp2: initial SETTINGS");
    }
    last_recv_ = now;
    Flush();
    return absl::OkStatus();
  }

  absl::Status Receive(absl::string_view bytes, absl::Time now) override {
    if (broken_) return error_;
    last_recv_ = now;
    ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(bytes.data()),
                                         bytes.size());
    Flush();  // a GOAWAY nghttp2 queued for a protocol error goes out first
    if (n < 0) {
      Break(absl::UnavailableError(
          absl::StrCat("HTTP/2 error from the server: ", nghttp2_strerror(static_cast<int>(n)))));
      return error_;
    }
    CheckDone();
    return broken_ ? error_ : absl::OkStatus();
  }

  void ReceiveEof(absl::Time) override {
    if (!broken_) Break(absl::UnavailableError("the server closed the connection"));
  }

  absl::string_view PendingOutput() override { return out_.Pending(); }
  void ConsumeOutput(size_t n) override { out_.Consume(n); }

  absl::StatusOr<CallId> StartCall(absl::string_view method, absl::Time deadline,
                                   const Metadata& metadata, absl::Time now) override {
    if (broken_) {
      return absl::FailedPreconditionError(absl::StrCat("connection broken: ", error_.message()));
    }
    if (draining_) return absl::FailedPreconditionError("the server is draining the connection");
    if (method.size() < 3 || method[0] != '/' || method.find('/', 1) == absl::string_view::npos ||
        !ValidValue(method) || method.find(' ') != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad gRPC method \"", method, "\": want /package.Service/Method"));
    }
    for (const Metadata* m : {static_cast<const Metadata*>(&opts_.metadata), &metadata}) {
      for (const auto& [k, v] : *m) {
        if (!ValidName(k) || !ValidValue(v) || k == "te" || k == "content-type" ||
            k == "grpc-timeout" || k == "user-agent") {
          return absl::InvalidArgumentError(absl::StrCat("bad or reserved metadata \"", k, "\""));
        }
      }
    }
    std::string timeout;
    std::vector<nghttp2_nv> nva = {Nv(":method", "POST"),
                                   Nv(":scheme", opts_.scheme),
                                   Nv(":path", method),
                                   Nv(":authority", opts_.authority),
                                   Nv("te", "trailers"),
                                   Nv("content-type", "application/grpc"),
                                   Nv("user-agent", opts_.user_agent)};
    if (deadline != absl::InfiniteFuture()) {
      timeout = EncodeTimeout(deadline - now);
      nva.push_back(Nv("grpc-timeout", timeout));
    }
    for (const Metadata* m : {static_cast<const Metadata*>(&opts_.metadata), &metadata}) {
      for (const auto& [k, v] : *m) nva.push_back(Nv(k, v));
    }
    auto call = std::make_unique<Call>();
    call->deadline = deadline;
    nghttp2_data_provider dp;
    dp.source.ptr = nullptr;
    dp.read_callback = &ChannelImpl::ReadBody;
    int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), &dp, nullptr);
    if (id < 0) {
      if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
        draining_ = true;
        return absl::FailedPreconditionError("stream ids exhausted; make a new connection");
      }
      return absl::InternalError(absl::StrCat("nghttp2: ", nghttp2_strerror(id)));
    }
    call->id = id;
    calls_[id] = std::move(call);
    Flush();
    return id;
  }

  absl::Status SendMessage(CallId id, absl::string_view message, absl::Time /*now*/) override {
    Call* c = Find(id);
    if (c == nullptr) return absl::NotFoundError(absl::StrCat("no open call ", id));
    if (c->send_closed) return absl::FailedPreconditionError("the call's sending side is closed");
    if (message.size() > 0xffffffffu) return absl::InvalidArgumentError("message over 4 GiB");
    if (c->failed) return absl::OkStatus();  // its kClosed event is on the way
    char prefix[kPrefix] = {
        0, static_cast<char>(message.size() >> 24), static_cast<char>(message.size() >> 16),
        static_cast<char>(message.size() >> 8), static_cast<char>(message.size())};
    c->send.append(prefix, kPrefix);
    c->send.append(message.data(), message.size());
    nghttp2_session_resume_data(session_, id);
    Flush();
    return absl::OkStatus();
  }

  absl::Status CloseSend(CallId id, absl::Time /*now*/) override {
    Call* c = Find(id);
    if (c == nullptr) return absl::NotFoundError(absl::StrCat("no open call ", id));
    if (c->send_closed) return absl::OkStatus();
    c->send_closed = true;
    nghttp2_session_resume_data(session_, id);
    Flush();
    return absl::OkStatus();
  }

  void Cancel(CallId id, absl::Time /*now*/) override {
    Call* c = Find(id);
    if (c == nullptr) return;
    Fail(c, absl::CancelledError("call cancelled by the client"), NGHTTP2_CANCEL);
    Flush();
  }

  void Abort(absl::Status why) override {
    if (!broken_) Break(absl::UnavailableError(why.message()));
  }

  void SetMetadata(Metadata metadata) override { opts_.metadata = std::move(metadata); }

  bool PollEvent(CallEvent* out) override {
    if (events_.empty()) return false;
    *out = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  absl::Time NextDeadline() const override {
    if (broken_) return absl::InfiniteFuture();
    absl::Time t = ping_outstanding_ ? ping_sent_ + opts_.keepalive_timeout
                                     : last_recv_ + opts_.keepalive_interval;
    for (const auto& [id, c] : calls_) {
      if (!c->failed) t = std::min(t, c->deadline);
    }
    return t;
  }

  void OnTimeout(absl::Time now) override {
    if (broken_) return;
    for (auto& [id, c] : calls_) {
      if (!c->failed && now >= c->deadline) {
        Fail(c.get(), absl::DeadlineExceededError("deadline exceeded"), NGHTTP2_CANCEL);
      }
    }
    if (ping_outstanding_ && now >= ping_sent_ + opts_.keepalive_timeout) {
      Break(absl::UnavailableError(absl::StrCat("keepalive: no PING ack within ",
                                                absl::FormatDuration(opts_.keepalive_timeout))));
      return;
    }
    if (!ping_outstanding_ && now >= last_recv_ + opts_.keepalive_interval) {
      uint8_t opaque[8] = {'a', 'm', 'b', 'i', 'e', 'n', 't', 0};
      if (nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, opaque) == 0) {
        ping_outstanding_ = true;
        ping_sent_ = now;
      }
    }
    Flush();
  }

  bool broken() const override { return broken_; }
  absl::Status error() const override { return error_; }
  bool draining() const override { return draining_; }
  size_t open_calls() const override { return calls_.size(); }

 private:
  static ChannelImpl* Self(void* p) { return static_cast<ChannelImpl*>(p); }

  Call* Find(CallId id) {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : it->second.get();
  }

  // Fail decides the call's status here and resets its stream; the kClosed
  // event follows when nghttp2 closes the stream.
  void Fail(Call* c, absl::Status status, uint32_t code) {
    if (c->failed) return;
    c->failed = true;
    c->final_status = std::move(status);
    c->recv.clear();
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, c->id, code);
  }

  void Flush() {
    if (broken_) return;
    for (;;) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Break(absl::InternalError(absl::StrCat("HTTP/2: ", nghttp2_strerror(static_cast<int>(n)))));
        return;
      }
      if (n == 0) break;
      out_.Append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
  }

  void CheckDone() {
    if (!broken_ && nghttp2_session_want_read(session_) == 0 &&
        nghttp2_session_want_write(session_) == 0) {
      Break(absl::UnavailableError(draining_ ? "the server drained the connection (GOAWAY)"
                                             : "the HTTP/2 session ended"));
    }
  }

  void Break(absl::Status why) {
    if (broken_) return;
    broken_ = true;
    error_ = why;
    for (auto& [id, c] : calls_) {
      CallEvent e;
      e.kind = CallEvent::Kind::kClosed;
      e.call = id;
      e.status = c->failed
                     ? c->final_status
                     : absl::UnavailableError(absl::StrCat("connection lost: ", why.message()));
      events_.push_back(std::move(e));
    }
    calls_.clear();
  }

  void Emit(CallEvent::Kind kind, CallId id, std::string message = {}, Metadata md = {}) {
    CallEvent e;
    e.kind = kind;
    e.call = id;
    e.message = std::move(message);
    e.metadata = std::move(md);
    events_.push_back(std::move(e));
  }

  // ParseMessages emits every whole message in the call's receive buffer.
  void ParseMessages(Call* c) {
    size_t off = 0;
    while (!c->failed && c->recv.size() - off >= kPrefix) {
      const auto* b = reinterpret_cast<const uint8_t*>(c->recv.data() + off);
      uint32_t len = (uint32_t{b[1]} << 24) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 8) | b[4];
      if (b[0] != 0) {
        Fail(c,
             absl::InternalError(b[0] == 1 ? "compressed message, but no compression was agreed"
                                           : absl::StrCat("bad message flag ", int{b[0]})),
             NGHTTP2_CANCEL);
        return;
      }
      if (len > opts_.max_receive_message) {
        Fail(c,
             absl::ResourceExhaustedError(absl::StrCat("received message of ", len,
                                                       " bytes, over the limit of ",
                                                       opts_.max_receive_message)),
             NGHTTP2_CANCEL);
        return;
      }
      if (c->recv.size() - off - kPrefix < len) break;
      Emit(CallEvent::Kind::kMessage, c->id, c->recv.substr(off + kPrefix, len));
      off += kPrefix + len;
    }
    if (!c->failed) c->recv.erase(0, off);
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user) {
    ChannelImpl* self = Self(user);
    Call* c = self->Find(id);
    if (c == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t left = c->send.size() - c->send_off;
    size_t n = std::min(length, left);
    std::memcpy(buf, c->send.data() + c->send_off, n);
    c->send_off += n;
    if (c->send_off == c->send.size()) {
      c->send.clear();
      c->send_off = 0;
      if (c->send_closed) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      } else if (n == 0) {
        return NGHTTP2_ERR_DEFERRED;
      }
    }
    return static_cast<ssize_t>(n);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (Call* c = Self(user)->Find(frame->hd.stream_id)) c->header_block.clear();
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Call* c = Self(user)->Find(frame->hd.stream_id);
    if (c == nullptr) return 0;
    absl::string_view n(reinterpret_cast<const char*>(name), namelen);
    absl::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      int s = 0;
      if (absl::SimpleAtoi(v, &s)) c->http_status = s;
      return 0;
    }
    if (c->header_block.size() < 256) c->header_block.emplace_back(std::string(n), std::string(v));
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    ChannelImpl* self = Self(user);
    switch (frame->hd.type) {
      case NGHTTP2_GOAWAY:
        self->draining_ = true;
        return 0;
      case NGHTTP2_PING:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) self->ping_outstanding_ = false;
        return 0;
      case NGHTTP2_HEADERS:
        break;
      default:
        return 0;
    }
    Call* c = self->Find(frame->hd.stream_id);
    if (c == nullptr || c->failed) return 0;
    const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    Metadata block = std::move(c->header_block);
    c->header_block.clear();
    if (!c->headers_seen) {
      c->headers_seen = true;
      if (c->http_status != 200) {
        self->Fail(c,
                   absl::Status(HttpStatusToCode(c->http_status),
                                absl::StrCat("HTTP status ", c->http_status, " from the server")),
                   NGHTTP2_CANCEL);
        return 0;
      }
      bool grpc_type = false;
      for (const auto& [k, v] : block) {
        if (k == "content-type") grpc_type = absl::StartsWith(v, "application/grpc");
      }
      if (!end && !grpc_type) {
        self->Fail(c, absl::InternalError("response content-type is not application/grpc"),
                   NGHTTP2_CANCEL);
        return 0;
      }
      if (!end) {
        self->Emit(CallEvent::Kind::kHeaders, c->id, {}, std::move(block));
        return 0;
      }
      // Trailers-only response: this block is the trailers.
    } else if (!end) {
      return 0;  // a second non-final header block: ignored
    }
    self->Trailers(c, std::move(block));
    return 0;
  }

  void Trailers(Call* c, Metadata block) {
    absl::StatusCode code = absl::StatusCode::kUnknown;
    std::string message;
    bool has = false;
    Metadata rest;
    for (auto& [k, v] : block) {
      if (k == "grpc-status") {
        int s = -1;
        has = true;
        if (absl::SimpleAtoi(v, &s) && s >= 0 && s <= 16) {
          code = static_cast<absl::StatusCode>(s);
        } else {
          code = absl::StatusCode::kUnknown;
          message = absl::StrCat("malformed grpc-status \"", v, "\"");
        }
      } else if (k == "grpc-message") {
        if (message.empty()) message = PercentDecode(v);
      } else {
        rest.emplace_back(std::move(k), std::move(v));
      }
    }
    c->trailers = std::move(rest);
    if (!has) {
      c->has_grpc_status = true;
      c->grpc_status = absl::InternalError("the server's trailers carry no grpc-status");
      return;
    }
    c->has_grpc_status = true;
    c->grpc_status = code == absl::StatusCode::kOk ? absl::OkStatus() : absl::Status(code, message);
    if (!c->recv.empty() && code == absl::StatusCode::kOk) {
      c->grpc_status = absl::InternalError("the stream ended inside a message");
    }
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    ChannelImpl* self = Self(user);
    Call* c = self->Find(id);
    if (c == nullptr || c->failed) return 0;
    if (!c->headers_seen) {
      self->Fail(c, absl::InternalError("data before the response headers"),
                 NGHTTP2_PROTOCOL_ERROR);
      return 0;
    }
    c->recv.append(reinterpret_cast<const char*>(data), len);
    self->ParseMessages(c);
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t id, uint32_t error_code, void* user) {
    ChannelImpl* self = Self(user);
    auto it = self->calls_.find(id);
    if (it == self->calls_.end()) return 0;
    Call* c = it->second.get();
    absl::Status st;
    if (c->failed) {
      st = c->final_status;
    } else if (c->has_grpc_status) {
      st = c->grpc_status;
    } else if (error_code != NGHTTP2_NO_ERROR) {
      st = absl::Status(ResetToCode(error_code), absl::StrCat("stream reset by the server: ",
                                                              nghttp2_http2_strerror(error_code)));
    } else {
      st = absl::InternalError("the server ended the stream without grpc-status");
    }
    CallEvent e;
    e.kind = CallEvent::Kind::kClosed;
    e.call = id;
    e.status = std::move(st);
    e.metadata = std::move(c->trailers);
    self->events_.push_back(std::move(e));
    self->calls_.erase(it);
    return 0;
  }

  ChannelOptions opts_;
  nghttp2_session* session_ = nullptr;
  std::map<CallId, std::unique_ptr<Call>> calls_;
  std::deque<CallEvent> events_;
  OutputBuffer out_;
  bool broken_ = false;
  absl::Status error_;
  bool draining_ = false;
  absl::Time last_recv_;
  bool ping_outstanding_ = false;
  absl::Time ping_sent_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Channel>> Channel::New(ChannelOptions options, absl::Time now) {
  if (options.authority.empty() || !ValidValue(options.authority)) {
    return absl::InvalidArgumentError("gRPC channel needs an :authority");
  }
  if (options.max_receive_message == 0 || options.stream_window == 0 ||
      options.connection_window < 65535 || options.stream_window > 0x7fffffffu ||
      options.connection_window > 0x7fffffffu) {
    return absl::InvalidArgumentError("gRPC channel limits out of range");
  }
  if (options.keepalive_interval <= absl::ZeroDuration() ||
      options.keepalive_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("gRPC keepalive interval and timeout must be positive");
  }
  auto c = std::make_unique<ChannelImpl>(std::move(options));
  if (absl::Status st = c->Init(now); !st.ok()) return st;
  return c;
}

absl::StatusCode HttpStatusToCode(int s) {
  switch (s) {
    case 400:
      return absl::StatusCode::kInternal;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

absl::StatusCode ResetToCode(uint32_t e) {
  switch (e) {
    case NGHTTP2_REFUSED_STREAM:
      return absl::StatusCode::kUnavailable;
    case NGHTTP2_CANCEL:
      return absl::StatusCode::kCancelled;
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return absl::StatusCode::kResourceExhausted;
    case NGHTTP2_INADEQUATE_SECURITY:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

std::string EncodeTimeout(absl::Duration d) {
  // In nanoseconds (saturating); at least 1 ns.
  const int64_t ns = std::max<int64_t>(1, absl::ToInt64Nanoseconds(d));
  struct Unit {
    int64_t ns;
    char name;
  };
  constexpr Unit kUnits[] = {{1, 'n'},
                             {1000, 'u'},
                             {1000 * 1000, 'm'},
                             {1000 * 1000 * 1000, 'S'},
                             {int64_t{60} * 1000 * 1000 * 1000, 'M'},
                             {int64_t{3600} * 1000 * 1000 * 1000, 'H'}};
  for (const Unit& u : kUnits) {
    int64_t n = ns / u.ns + (ns % u.ns != 0 ? 1 : 0);  // rounded up
    if (n <= 99999999) return absl::StrCat(n, std::string(1, u.name));
  }
  return "99999999H";
}

std::string PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      int hi = absl::ascii_isxdigit(text[i + 1]) ? text[i + 1] : -1;
      int lo = absl::ascii_isxdigit(text[i + 2]) ? text[i + 2] : -1;
      if (hi >= 0 && lo >= 0) {
        auto val = [](int c) { return absl::ascii_isdigit(c) ? c - '0' : (c | 0x20) - 'a' + 10; };
        out.push_back(static_cast<char>(val(hi) * 16 + val(lo)));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

}  // namespace ambient::grpc
