// grpc::Channel driven in memory, with no sockets, threads or clocks: the
// server end is nghttp2's own server session (an independent HTTP/2
// implementation), so every byte the channel sends is parsed by it and
// every response is framed by it.
#include "ambient/grpc/channel.h"

#include <nghttp2/nghttp2.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ambient::grpc {
namespace {

std::string Framed(absl::string_view message, uint8_t flag = 0) {
  std::string out(5, '\0');
  out[0] = static_cast<char>(flag);
  out[1] = static_cast<char>(message.size() >> 24);
  out[2] = static_cast<char>(message.size() >> 16);
  out[3] = static_cast<char>(message.size() >> 8);
  out[4] = static_cast<char>(message.size());
  return out + std::string(message);
}

// FakeServer is an HTTP/2 server on nghttp2 that records requests and sends
// whatever response a test scripts.
class FakeServer {
 public:
  struct Request {
    std::map<std::string, std::string> headers;
    std::string body;
    bool ended = false;          // END_STREAM seen
    uint32_t reset_code = 0xff;  // RST_STREAM code received (0xff: none)
    bool closed = false;
  };

  FakeServer() {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
               const uint8_t* v, size_t vl, uint8_t, void* u) {
          static_cast<FakeServer*>(u)
              ->requests[f->hd.stream_id]
              .headers[std::string(reinterpret_cast<const char*>(n), nl)] =
              std::string(reinterpret_cast<const char*>(v), vl);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t l, void* u) {
          static_cast<FakeServer*>(u)->requests[id].body.append(reinterpret_cast<const char*>(d),
                                                                l);
          return 0;
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          auto* self = static_cast<FakeServer*>(u);
          if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
              (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            self->requests[f->hd.stream_id].ended = true;
          }
          if (f->hd.type == NGHTTP2_RST_STREAM) {
            self->requests[f->hd.stream_id].reset_code = f->rst_stream.error_code;
          }
          if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) == 0) ++self->pings;
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session*, int32_t id, uint32_t, void* u) {
          static_cast<FakeServer*>(u)->requests[id].closed = true;
          return 0;
        });
    nghttp2_session_server_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
  }
  ~FakeServer() { nghttp2_session_del(session_); }

  // Respond sends :status (and content-type unless empty), then `body` as
  // DATA, then `trailers` (or END_STREAM on the data when there are none and
  // `trailers_only` is false). trailers_only: one HEADERS with END_STREAM.
  void Respond(int32_t id, int status, const std::string& content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> trailers,
               bool trailers_only = false) {
    std::vector<std::pair<std::string, std::string>> h = {{":status", std::to_string(status)}};
    if (!content_type.empty()) h.emplace_back("content-type", content_type);
    if (trailers_only) {
      for (auto& t : trailers) h.push_back(t);
      auto nv = Nvs(h);
      nghttp2_submit_response(session_, id, nv.data(), nv.size(), nullptr);
      return;
    }
    auto& out = outgoing_[id];
    out.body = std::move(body);
    out.trailers = std::move(trailers);
    nghttp2_data_provider dp;
    dp.source.ptr = this;
    dp.read_callback = [](nghttp2_session* s, int32_t sid, uint8_t* buf, size_t len,
                          uint32_t* flags, nghttp2_data_source* src, void*) -> ssize_t {
      auto* self = static_cast<FakeServer*>(src->ptr);
      auto& o = self->outgoing_[sid];
      size_t n = std::min(len, o.body.size() - o.off);
      std::memcpy(buf, o.body.data() + o.off, n);
      o.off += n;
      if (o.off == o.body.size()) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (!o.trailers.empty()) {
          *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          auto tv = Nvs(o.trailers);
          nghttp2_submit_trailer(s, sid, tv.data(), tv.size());
        }
      }
      return static_cast<ssize_t>(n);
    };
    auto nv = Nvs(h);
    nghttp2_submit_response(session_, id, nv.data(), nv.size(), &dp);
  }
  void Reset(int32_t id, uint32_t code) {
    nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  }
  void GoAway(int32_t last_id) {
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last_id, NGHTTP2_NO_ERROR, nullptr, 0);
  }

  // Exchange moves bytes both ways until neither side has more.
  void Exchange(Channel* ch, absl::Time now) {
    for (int round = 0; round < 100; ++round) {
      bool moved = false;
      absl::string_view out = ch->PendingOutput();
      if (!out.empty()) {
        moved = true;
        ssize_t n = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(out.data()),
                                             out.size());
        EXPECT_GE(n, 0) << nghttp2_strerror(static_cast<int>(n));
        ch->ConsumeOutput(out.size());
      }
      const uint8_t* data;
      ssize_t n;
      std::string back;
      while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
        back.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
      }
      if (!back.empty()) {
        moved = true;
        if (byte_at_a_time) {
          for (char c : back) (void)ch->Receive(absl::string_view(&c, 1), now);
        } else {
          (void)ch->Receive(back, now);
        }
      }
      if (!moved) return;
    }
  }

  std::map<int32_t, Request> requests;
  int pings = 0;
  bool byte_at_a_time = false;

 private:
  struct Outgoing {
    std::string body;
    size_t off = 0;
    std::vector<std::pair<std::string, std::string>> trailers;
  };
  static std::vector<nghttp2_nv> Nvs(const std::vector<std::pair<std::string, std::string>>& h) {
    std::vector<nghttp2_nv> out;
    for (const auto& [k, v] : h) {
      out.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(), v.size(),
                     NGHTTP2_NV_FLAG_NONE});
    }
    return out;
  }
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, Outgoing> outgoing_;
};

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ChannelOptions o;
    o.authority = "istiod.istio-system.svc:15012";
    o.metadata = {{"authorization", "Bearer t0ken"}, {"clusterid", "Kubernetes"}};
    o.max_receive_message = 1024;
    o.keepalive_interval = absl::Seconds(30);
    o.keepalive_timeout = absl::Seconds(10);
    auto ch = Channel::New(o, now_);
    ASSERT_TRUE(ch.ok()) << ch.status();
    ch_ = std::move(*ch);
  }
  std::vector<CallEvent> Events() {
    std::vector<CallEvent> out;
    CallEvent e;
    while (ch_->PollEvent(&e)) out.push_back(std::move(e));
    return out;
  }
  // Unary starts a call of /test.Echo/Unary, sends "hello" and half-closes.
  CallId Unary(absl::Time deadline = absl::InfiniteFuture()) {
    absl::StatusOr<CallId> id =
        ch_->StartCall("/test.Echo/Unary", deadline, {{"x-call", "1"}}, now_);
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(ch_->SendMessage(*id, "hello", now_).ok());
    EXPECT_TRUE(ch_->CloseSend(*id, now_).ok());
    server_.Exchange(ch_.get(), now_);
    return *id;
  }
  absl::Status Closed(const std::vector<CallEvent>& events, CallId id) {
    for (const CallEvent& e : events) {
      if (e.kind == CallEvent::Kind::kClosed && e.call == id) return e.status;
    }
    return absl::UnknownError("no kClosed event");
  }

  absl::Time now_ = absl::FromUnixSeconds(1000000);
  FakeServer server_;
  std::unique_ptr<Channel> ch_;
};

TEST_F(ChannelTest, UnaryCallCarriesGrpcHeadersMessageAndTrailers) {
  CallId id = Unary(now_ + absl::Seconds(2));
  FakeServer::Request& r = server_.requests[id];
  EXPECT_EQ(r.headers[":method"], "POST");
  EXPECT_EQ(r.headers[":path"], "/test.Echo/Unary");
  EXPECT_EQ(r.headers[":authority"], "istiod.istio-system.svc:15012");
  EXPECT_EQ(r.headers["te"], "trailers");
  EXPECT_EQ(r.headers["content-type"], "application/grpc");
  EXPECT_EQ(r.headers["grpc-timeout"], "2000000u");
  EXPECT_EQ(r.headers["authorization"], "Bearer t0ken");
  EXPECT_EQ(r.headers["clusterid"], "Kubernetes");
  EXPECT_EQ(r.headers["x-call"], "1");
  EXPECT_EQ(r.body, Framed("hello"));
  EXPECT_TRUE(r.ended);

  server_.Respond(id, 200, "application/grpc", Framed("world") + Framed(""),
                  {{"grpc-status", "0"}, {"x-trailer", "t"}});
  server_.Exchange(ch_.get(), now_);
  std::vector<CallEvent> ev = Events();
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].kind, CallEvent::Kind::kHeaders);
  EXPECT_EQ(ev[1].kind, CallEvent::Kind::kMessage);
  EXPECT_EQ(ev[1].message, "world");
  EXPECT_EQ(ev[2].kind, CallEvent::Kind::kMessage);
  EXPECT_EQ(ev[2].message, "");
  EXPECT_EQ(ev[3].kind, CallEvent::Kind::kClosed);
  EXPECT_TRUE(ev[3].status.ok()) << ev[3].status;
  ASSERT_EQ(ev[3].metadata.size(), 1u);
  EXPECT_EQ(ev[3].metadata[0].first, "x-trailer");
  EXPECT_EQ(ch_->open_calls(), 0u);
}

TEST_F(ChannelTest, MessagesSplitAcrossFramesAndBytesAreReassembled) {
  server_.byte_at_a_time = true;
  CallId id = Unary();
  std::string big(900, 'b');
  server_.Respond(id, 200, "application/grpc+proto", Framed("one") + Framed(big),
                  {{"grpc-status", "0"}});
  server_.Exchange(ch_.get(), now_);
  std::vector<CallEvent> ev = Events();
  std::vector<std::string> messages;
  for (const CallEvent& e : ev) {
    if (e.kind == CallEvent::Kind::kMessage) messages.push_back(e.message);
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"one", big}));
  EXPECT_TRUE(Closed(ev, id).ok());
}

TEST_F(ChannelTest, ServerErrorsBecomeTheirStatus) {
  CallId a = Unary();
  CallId b = Unary();
  CallId c = Unary();
  CallId d = Unary();
  CallId e = Unary();
  // Trailers-only with a percent-encoded message.
  server_.Respond(a, 200, "application/grpc", "",
                  {{"grpc-status", "7"}, {"grpc-message", "not allowed: 100%25 sure%0A"}}, true);
  server_.Respond(b, 503, "text/plain", "busy", {});                       // HTTP error
  server_.Respond(c, 200, "application/grpc", Framed("x"), {});            // no grpc-status
  server_.Respond(d, 200, "text/html", "<html>", {{"grpc-status", "0"}});  // not gRPC
  server_.Reset(e, NGHTTP2_REFUSED_STREAM);
  server_.Exchange(ch_.get(), now_);
  std::vector<CallEvent> ev = Events();
  EXPECT_EQ(Closed(ev, a), absl::PermissionDeniedError("not allowed: 100% sure\n"));
  EXPECT_EQ(Closed(ev, b).code(), absl::StatusCode::kUnavailable) << Closed(ev, b);
  EXPECT_EQ(Closed(ev, c).code(), absl::StatusCode::kInternal) << Closed(ev, c);
  EXPECT_EQ(Closed(ev, d).code(), absl::StatusCode::kInternal) << Closed(ev, d);
  EXPECT_EQ(Closed(ev, e).code(), absl::StatusCode::kUnavailable) << Closed(ev, e);
  EXPECT_EQ(ch_->open_calls(), 0u);
  EXPECT_FALSE(ch_->broken());
}

TEST_F(ChannelTest, OversizedAndCompressedMessagesEndOnlyTheirCall) {
  CallId big = Unary();
  CallId zipped = Unary();
  CallId fine = Unary();
  server_.Respond(big, 200, "application/grpc", Framed(std::string(1025, 'x')),
                  {{"grpc-status", "0"}});
  server_.Respond(zipped, 200, "application/grpc", Framed("z", 1), {{"grpc-status", "0"}});
  server_.Respond(fine, 200, "application/grpc", Framed("ok"), {{"grpc-status", "0"}});
  server_.Exchange(ch_.get(), now_);
  std::vector<CallEvent> ev = Events();
  EXPECT_EQ(Closed(ev, big).code(), absl::StatusCode::kResourceExhausted) << Closed(ev, big);
  EXPECT_EQ(Closed(ev, zipped).code(), absl::StatusCode::kInternal) << Closed(ev, zipped);
  EXPECT_TRUE(Closed(ev, fine).ok());
  // The server was told to stop (RST_STREAM CANCEL) rather than left sending.
  EXPECT_EQ(server_.requests[big].reset_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
  for (const CallEvent& e : ev) {
    if (e.kind == CallEvent::Kind::kMessage) {
      EXPECT_NE(e.call, big);
    }
  }
}

TEST_F(ChannelTest, DeadlineEndsTheCallAndResetsTheStream) {
  CallId id = Unary(now_ + absl::Milliseconds(1500));
  EXPECT_EQ(ch_->NextDeadline(), now_ + absl::Milliseconds(1500));
  ch_->OnTimeout(now_ + absl::Milliseconds(1499));
  EXPECT_TRUE(Events().empty());
  ch_->OnTimeout(now_ + absl::Milliseconds(1500));
  server_.Exchange(ch_.get(), now_);
  EXPECT_EQ(Closed(Events(), id).code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server_.requests[id].reset_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
}

TEST_F(ChannelTest, CancelSendsCancelAndReportsCancelled) {
  CallId id = Unary();
  ch_->Cancel(id, now_);
  server_.Exchange(ch_.get(), now_);
  EXPECT_EQ(Closed(Events(), id).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server_.requests[id].reset_code, static_cast<uint32_t>(NGHTTP2_CANCEL));
  EXPECT_EQ(ch_->SendMessage(id, "late", now_).code(), absl::StatusCode::kNotFound);
}

TEST_F(ChannelTest, StreamingBothWaysInterleaves) {
  absl::StatusOr<CallId> id = ch_->StartCall("/test.Echo/Bidi", absl::InfiniteFuture(), {}, now_);
  ASSERT_TRUE(id.ok());
  server_.Exchange(ch_.get(), now_);
  ASSERT_TRUE(ch_->SendMessage(*id, "a", now_).ok());
  server_.Exchange(ch_.get(), now_);
  EXPECT_EQ(server_.requests[*id].body, Framed("a"));
  EXPECT_FALSE(server_.requests[*id].ended);
  ASSERT_TRUE(ch_->SendMessage(*id, "b", now_).ok());
  ASSERT_TRUE(ch_->CloseSend(*id, now_).ok());
  EXPECT_EQ(ch_->SendMessage(*id, "c", now_).code(), absl::StatusCode::kFailedPrecondition);
  server_.Exchange(ch_.get(), now_);
  EXPECT_EQ(server_.requests[*id].body, Framed("a") + Framed("b"));
  EXPECT_TRUE(server_.requests[*id].ended);
}

TEST_F(ChannelTest, KeepalivePingsAnIdleConnectionAndBreaksWhenUnanswered) {
  CallId id = Unary();
  EXPECT_EQ(ch_->NextDeadline(), now_ + absl::Seconds(30));
  absl::Time t = now_ + absl::Seconds(30);
  ch_->OnTimeout(t);
  server_.Exchange(ch_.get(), t);  // the server answers: no break
  EXPECT_EQ(server_.pings, 1);
  EXPECT_FALSE(ch_->broken());
  EXPECT_EQ(ch_->NextDeadline(), t + absl::Seconds(30));
  // Now the server goes silent.
  t += absl::Seconds(30);
  ch_->OnTimeout(t);
  ch_->ConsumeOutput(ch_->PendingOutput().size());  // the PING is lost
  EXPECT_EQ(ch_->NextDeadline(), t + absl::Seconds(10));
  ch_->OnTimeout(t + absl::Seconds(10));
  EXPECT_TRUE(ch_->broken());
  EXPECT_NE(ch_->error().message().find("keepalive"), std::string::npos) << ch_->error();
  EXPECT_EQ(Closed(Events(), id).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ch_->StartCall("/test.Echo/Unary", absl::InfiniteFuture(), {}, t).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ChannelTest, GoawayLetsAcceptedCallsFinishAndRefusesNewOnes) {
  CallId first = Unary();
  CallId second = Unary();
  server_.GoAway(first);
  server_.Exchange(ch_.get(), now_);
  EXPECT_TRUE(ch_->draining());
  EXPECT_EQ(Closed(Events(), second).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ch_->StartCall("/test.Echo/Unary", absl::InfiniteFuture(), {}, now_).status().code(),
            absl::StatusCode::kFailedPrecondition);
  server_.Respond(first, 200, "application/grpc", Framed("done"), {{"grpc-status", "0"}});
  server_.Exchange(ch_.get(), now_);
  EXPECT_TRUE(Closed(Events(), first).ok());
}

TEST_F(ChannelTest, GarbageFromTheServerBreaksTheConnection) {
  CallId id = Unary();
  absl::Status st = ch_->Receive("HTTP/1.1 400 Bad Request\r\n\r\n", now_);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_TRUE(ch_->broken());
  EXPECT_EQ(Closed(Events(), id).code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ch_->Receive("more", now_).ok());
}

TEST_F(ChannelTest, BadArgumentsAreRefusedAndChangeNothing) {
  for (const char* m : {"", "/", "noslash", "/only", "/a/b\r\n"}) {
    EXPECT_EQ(ch_->StartCall(m, absl::InfiniteFuture(), {}, now_).status().code(),
              absl::StatusCode::kInvalidArgument)
        << m;
  }
  EXPECT_EQ(ch_->StartCall("/a/b", absl::InfiniteFuture(), {{"Upper", "x"}}, now_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ch_->StartCall("/a/b", absl::InfiniteFuture(), {{"te", "x"}}, now_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ch_->StartCall("/a/b", absl::InfiniteFuture(), {{"x", "a\nb"}}, now_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ch_->open_calls(), 0u);
  EXPECT_EQ(ch_->SendMessage(99, "x", now_).code(), absl::StatusCode::kNotFound);
  ChannelOptions o;
  EXPECT_EQ(Channel::New(o, now_).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcWireTest, TimeoutsUseTheSmallestUnitThatFitsRoundedUp) {
  EXPECT_EQ(EncodeTimeout(absl::Nanoseconds(1)), "1n");
  EXPECT_EQ(EncodeTimeout(absl::ZeroDuration()), "1n");
  EXPECT_EQ(EncodeTimeout(absl::Milliseconds(5)), "5000000n");
  EXPECT_EQ(EncodeTimeout(absl::Seconds(1)), "1000000u");
  EXPECT_EQ(EncodeTimeout(absl::Seconds(100) + absl::Nanoseconds(1)), "100001m");
  EXPECT_EQ(EncodeTimeout(absl::Hours(30)), "108000S");
  EXPECT_EQ(EncodeTimeout(absl::Hours(24 * 365 * 200)), "1752000H");
  EXPECT_EQ(EncodeTimeout(absl::InfiniteDuration()), "2562048H");
}

TEST(GrpcWireTest, StatusMappings) {
  EXPECT_EQ(HttpStatusToCode(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(HttpStatusToCode(404), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(HttpStatusToCode(504), absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpStatusToCode(418), absl::StatusCode::kUnknown);
  EXPECT_EQ(ResetToCode(NGHTTP2_CANCEL), absl::StatusCode::kCancelled);
  EXPECT_EQ(ResetToCode(NGHTTP2_ENHANCE_YOUR_CALM), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ResetToCode(NGHTTP2_PROTOCOL_ERROR), absl::StatusCode::kInternal);
  EXPECT_EQ(PercentDecode("a%20b%2"), "a b%2");
  EXPECT_EQ(PercentDecode("%zz%41"), "%zzA");
}

}  // namespace
}  // namespace ambient::grpc
