// AdsClient: a DeltaAdsSession kept streaming over a ControlPlaneConnection.
#include "ambient/xds/ads_client.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ambient::xds {

absl::StatusOr<std::unique_ptr<AdsClient>> AdsClient::New(runtime::EventLoop* loop,
                                                          AdsClientOptions options) {
  if (options.types.empty()) return absl::InvalidArgumentError("xDS client: no types to watch");
  for (const auto& [url, handler] : options.types) {
    if (url.empty() || handler == nullptr) {
      return absl::InvalidArgumentError("xDS client: a type needs a URL and a handler");
    }
  }
  absl::StatusOr<std::unique_ptr<ControlPlaneConnection>> conn =
      ControlPlaneConnection::New(loop, options.connection);
  if (!conn.ok()) return conn.status();
  std::unique_ptr<AdsClient> c(new AdsClient(loop, std::move(options)));
  c->connection_ = std::move(*conn);
  AdsClient* self = c.get();
  ControlPlaneConnection::Handlers h;
  h.on_connected = [self] { self->OpenStream(); };
  h.on_event = [self](const grpc::CallEvent& e) { self->OnEvent(e); };
  h.on_disconnected = [self](const absl::Status& why) {
    // The connection reconnects with its backoff and reopens the stream then.
    if (self->call_ != 0) self->StreamEnded(why);
    self->reopen_.Disarm();
  };
  c->connection_->SetHandlers(std::move(h));
  return c;
}

AdsClient::AdsClient(runtime::EventLoop* loop, AdsClientOptions options)
    : loop_(loop),
      options_(std::move(options)),
      session_(std::make_unique<DeltaAdsSession>(options_.node, options_.types)),
      reopen_(loop, [this] {
        if (connection_->connected() && call_ == 0) OpenStream();
      }) {}

AdsClient::~AdsClient() {
  // The connection goes first: no callback may reach a half-destroyed client.
  connection_.reset();
}

void AdsClient::Start() { connection_->Start(); }

void AdsClient::SetReadyCallback(std::function<void()> ready) {
  on_ready_ = std::move(ready);
  if (ready_ && on_ready_) {
    loop_->Defer(std::move(on_ready_));
    on_ready_ = nullptr;
  }
}

void AdsClient::OpenStream() {
  absl::StatusOr<grpc::CallId> call = connection_->StartCall(kAdsMethod, absl::InfiniteFuture());
  if (!call.ok()) {
    last_error_ = call.status();
    ++stats_.stream_failures;
    connection_->Reconnect(call.status());
    return;
  }
  call_ = *call;
  got_response_ = false;
  if (stats_.streams++ > 0) ++stats_.reconnects;
  for (const std::string& request : session_->StreamStarted()) {
    if (absl::Status s = connection_->SendMessage(call_, request); !s.ok()) {
      connection_->Reconnect(s);
      return;
    }
  }
}

void AdsClient::OnEvent(const grpc::CallEvent& e) {
  if (e.call != call_ || call_ == 0) return;
  if (e.kind == grpc::CallEvent::Kind::kMessage) {
    ++stats_.responses;
    absl::StatusOr<std::string> reply = session_->OnResponse(e.message);
    if (!reply.ok()) {
      ++stats_.terminations_error;
      grpc::CallId bad = call_;
      StreamEnded(reply.status());
      connection_->Cancel(bad);
      return;
    }
    if (!got_response_) {
      got_response_ = true;
      connection_->ResetBackoff();  // this stream works: start again from 10 ms
    }
    if (absl::Status s = connection_->SendMessage(call_, *reply); !s.ok()) {
      StreamEnded(s);
      return;
    }
    if (!ready_ && session_->Ready()) {
      ready_ = true;
      if (on_ready_) {
        std::function<void()> cb = std::move(on_ready_);
        on_ready_ = nullptr;
        cb();
      }
    }
  } else if (e.kind == grpc::CallEvent::Kind::kClosed) {
    absl::StatusCode code = e.status.code();
    if (e.status.ok()) {
      ++stats_.terminations_complete;
    } else if (code == absl::StatusCode::kUnknown || code == absl::StatusCode::kCancelled ||
               code == absl::StatusCode::kDeadlineExceeded ||
               (code == absl::StatusCode::kUnavailable &&
                absl::StrContains(absl::AsciiStrToLower(e.status.message()), "goaway"))) {
      ++stats_.terminations_reconnect;
    } else {
      ++stats_.terminations_error;
    }
    StreamEnded(e.status.ok() ? absl::UnavailableError("istiod ended the xDS stream") : e.status);
  }
}

void AdsClient::StreamEnded(const absl::Status& why) {
  call_ = 0;
  last_error_ = why;
  ++stats_.stream_failures;
  if (connection_ != nullptr && connection_->connected()) {
    reopen_.Arm(loop_->Now() + connection_->NextBackoff());
  }
}

AdsClientStats AdsClient::stats() const {
  AdsClientStats s = stats_;
  s.connects = connection_->stats().connects;
  s.acks = session_->stats().acks;
  s.nacks = session_->stats().nacks;
  s.terminations_connection_error = connection_->stats().failures;
  s.by_type = session_->stats().by_type;
  return s;
}

std::string XdsPrometheus(const AdsClientStats& s, bool up) {
  std::string out =
      "# HELP istio_xds_connection_terminations_total The total number of completed connections "
      "to xds server.\n# TYPE istio_xds_connection_terminations_total counter\n";
  const std::pair<const char*, uint64_t> reasons[] = {
      {"ConnectionError", s.terminations_connection_error},
      {"Error", s.terminations_error},
      {"Reconnect", s.terminations_reconnect},
      {"Complete", s.terminations_complete}};
  for (const auto& [reason, n] : reasons) {
    absl::StrAppend(&out, "istio_xds_connection_terminations_total{reason=\"", reason, "\"} ", n,
                    "\n");
  }
  absl::StrAppend(&out,
                  "# HELP istio_xds_message_total Total number of messages received.\n"
                  "# TYPE istio_xds_message_total counter\n");
  for (const auto& [url, t] : s.by_type) {
    absl::StrAppend(&out, "istio_xds_message_total{url=\"", url, "\"} ", t.responses, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP istio_xds_message_bytes_total Total number of bytes received.\n"
                  "# TYPE istio_xds_message_bytes_total counter\n");
  for (const auto& [url, t] : s.by_type) {
    absl::StrAppend(&out, "istio_xds_message_bytes_total{url=\"", url, "\"} ", t.resource_bytes,
                    "\n");
  }
  absl::StrAppend(&out,
                  "# HELP istio_xds_up Whether the xDS stream is connected (1) or not (0).\n"
                  "# TYPE istio_xds_up gauge\nistio_xds_up ",
                  up ? 1 : 0, "\n");
  return out;
}

std::string AdsClient::StatusText() const {
  AdsClientStats s = stats();
  const char* state = call_ != 0                 ? "streaming"
                      : connection_->connected() ? "connected, stream closed"
                                                 : "disconnected";
  std::string text = absl::StrCat("xds ", options_.connection.address, ": ", state,
                                  "; ready=", ready_ ? "yes" : "no", "; connects=", s.connects,
                                  " connect_failures=", connection_->stats().failures,
                                  " streams=", s.streams, " reconnects=", s.reconnects,
                                  " responses=", s.responses, " acks=", s.acks, " nacks=", s.nacks);
  absl::Status err = !last_error_.ok() ? last_error_ : connection_->last_error();
  if (!connection_->last_error().ok() && !connection_->connected()) err = connection_->last_error();
  if (!err.ok()) absl::StrAppend(&text, "; last error: ", err.ToString());
  if (!session_->last_nack().empty())
    absl::StrAppend(&text, "; last NACK: ", session_->last_nack());
  return text;
}

}  // namespace ambient::xds
