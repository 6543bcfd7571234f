// grpc::Channel against an independent gRPC server: Debian's python3-grpcio
// (gRPC's C core) in cleartext HTTP/2 on loopback (tests/grpc/grpc_peer.py).
// The test is the host: a blocking socket and poll() drive the sans-IO
// channel, the way lib/runtime's loop will.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ambient/grpc/channel.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace ambient::grpc {
namespace {

class GrpcioInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_ = test_support::Child::Spawn(
        {"/usr/bin/python3", AMBIENT_SOURCE_DIR "/tests/grpc/grpc_peer.py"});
    std::string line = test_support::ReadLine(peer_.out(), 20000);
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(line, &port) && port > 0)
        << "grpc_peer.py did not start: " << line << test_support::Drain(peer_.err(), 500);
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    ChannelOptions o;
    o.authority = absl::StrCat("127.0.0.1:", port);
    o.scheme = "http";
    o.metadata = {{"authorization", "Bearer t0ken"}};
    auto ch = Channel::New(o, absl::Now());
    ASSERT_TRUE(ch.ok()) << ch.status();
    ch_ = std::move(*ch);
  }
  void TearDown() override {
    if (fd_ >= 0) close(fd_);
  }

  // Drive runs the host loop until `done` says so or `timeout` passes.
  void Drive(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
    absl::Time end = absl::Now() + timeout;
    while (!done() && absl::Now() < end && !ch_->broken()) {
      absl::string_view out = ch_->PendingOutput();
      while (!out.empty()) {
        ssize_t n = send(fd_, out.data(), out.size(), MSG_NOSIGNAL);
        ASSERT_GT(n, 0);
        ch_->ConsumeOutput(static_cast<size_t>(n));
        out = ch_->PendingOutput();
      }
      absl::Time wake = std::min(end, ch_->NextDeadline());
      int ms = static_cast<int>(
          std::max<int64_t>(0, absl::ToInt64Milliseconds(wake - absl::Now()) + 1));
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, std::min(ms, 50)) == 1) {
        char buf[65536];
        ssize_t n = read(fd_, buf, sizeof(buf));
        if (n <= 0) {
          ch_->ReceiveEof(absl::Now());
        } else {
          (void)ch_->Receive(absl::string_view(buf, static_cast<size_t>(n)), absl::Now());
        }
      }
      if (absl::Now() >= ch_->NextDeadline()) ch_->OnTimeout(absl::Now());
      CallEvent e;
      while (ch_->PollEvent(&e)) events_[e.call].push_back(std::move(e));
    }
  }
  bool IsClosed(CallId id) {
    for (const CallEvent& e : events_[id]) {
      if (e.kind == CallEvent::Kind::kClosed) return true;
    }
    return false;
  }
  void DriveUntilClosed(CallId id, absl::Duration timeout = absl::Seconds(10)) {
    Drive([&] { return IsClosed(id); }, timeout);
  }
  absl::Status StatusOf(CallId id) {
    for (const CallEvent& e : events_[id]) {
      if (e.kind == CallEvent::Kind::kClosed) return e.status;
    }
    return absl::UnknownError("not closed");
  }
  std::vector<std::string> Messages(CallId id) {
    std::vector<std::string> out;
    for (const CallEvent& e : events_[id]) {
      if (e.kind == CallEvent::Kind::kMessage) out.push_back(e.message);
    }
    return out;
  }
  std::string Trailer(CallId id, const std::string& name) {
    for (const CallEvent& e : events_[id]) {
      if (e.kind != CallEvent::Kind::kClosed) continue;
      for (const auto& [k, v] : e.metadata) {
        if (k == name) return v;
      }
    }
    return "";
  }
  CallId Unary(const std::string& method, const std::string& request,
               absl::Time deadline = absl::InfiniteFuture()) {
    absl::StatusOr<CallId> id = ch_->StartCall(method, deadline, {}, absl::Now());
    EXPECT_TRUE(id.ok()) << id.status();
    EXPECT_TRUE(ch_->SendMessage(*id, request, absl::Now()).ok());
    EXPECT_TRUE(ch_->CloseSend(*id, absl::Now()).ok());
    return *id;
  }

  test_support::Child peer_;
  int fd_ = -1;
  std::unique_ptr<Channel> ch_;
  std::map<CallId, std::vector<CallEvent>> events_;
};

TEST_F(GrpcioInteropTest, UnaryCallWithMetadataAndTrailers) {
  CallId id = Unary("/test.Echo/Unary", "hello", absl::Now() + absl::Seconds(30));
  DriveUntilClosed(id);
  EXPECT_TRUE(StatusOf(id).ok()) << StatusOf(id);
  EXPECT_EQ(Messages(id), std::vector<std::string>{"echo:hello"});
  EXPECT_EQ(Trailer(id, "x-auth"), "Bearer t0ken");
  EXPECT_EQ(Trailer(id, "x-timeout"), "set");  // grpcio read our grpc-timeout
  ASSERT_FALSE(events_[id].empty());
  EXPECT_EQ(events_[id][0].kind, CallEvent::Kind::kHeaders);
}

TEST_F(GrpcioInteropTest, ServerStreamingAndBidiStreaming) {
  CallId stream = Unary("/test.Echo/ServerStream", "200");
  DriveUntilClosed(stream);
  EXPECT_TRUE(StatusOf(stream).ok()) << StatusOf(stream);
  std::vector<std::string> got = Messages(stream);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_EQ(got[0], "m0");
  EXPECT_EQ(got[199], "m199");

  absl::StatusOr<CallId> bidi = ch_->StartCall("/test.Echo/Bidi", absl::InfiniteFuture(), {},
                                               absl::Now());
  ASSERT_TRUE(bidi.ok());
  // One message at a time: each answer arrives before the next is sent.
  for (const char* m : {"abc", "hello", "xy"}) {
    size_t before = Messages(*bidi).size();
    ASSERT_TRUE(ch_->SendMessage(*bidi, m, absl::Now()).ok());
    Drive([&] { return Messages(*bidi).size() > before; });
  }
  EXPECT_EQ(Messages(*bidi), (std::vector<std::string>{"cba", "olleh", "yx"}));
  EXPECT_FALSE(IsClosed(*bidi));
  ASSERT_TRUE(ch_->CloseSend(*bidi, absl::Now()).ok());
  DriveUntilClosed(*bidi);
  EXPECT_TRUE(StatusOf(*bidi).ok()) << StatusOf(*bidi);
}

TEST_F(GrpcioInteropTest, ErrorStatusAndMessageComeThroughDecoded) {
  CallId id = Unary("/test.Echo/Fail", "");
  DriveUntilClosed(id);
  EXPECT_EQ(StatusOf(id), absl::PermissionDeniedError("denied: 100% sure \xe2\x9c\x93"));
  CallId missing = Unary("/test.Nope/Method", "");
  DriveUntilClosed(missing);
  EXPECT_EQ(StatusOf(missing).code(), absl::StatusCode::kUnimplemented) << StatusOf(missing);
}

TEST_F(GrpcioInteropTest, DeadlineEndsASlowCallAndTheConnectionStaysUsable) {
  absl::Time start = absl::Now();
  CallId slow = Unary("/test.Echo/Slow", "", absl::Now() + absl::Milliseconds(300));
  DriveUntilClosed(slow);
  EXPECT_EQ(StatusOf(slow).code(), absl::StatusCode::kDeadlineExceeded) << StatusOf(slow);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  CallId next = Unary("/test.Echo/Unary", "again");
  DriveUntilClosed(next);
  EXPECT_EQ(Messages(next), std::vector<std::string>{"echo:again"});
}

TEST_F(GrpcioInteropTest, ManyCallsAtOnceAndLargeMessages) {
  std::vector<CallId> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(Unary("/test.Echo/Unary", absl::StrCat(i)));
  Drive([&] {
    for (CallId id : ids) {
      if (!IsClosed(id)) return false;
    }
    return true;
  });
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(Messages(ids[i]), std::vector<std::string>{absl::StrCat("echo:", i)}) << i;
  }
  CallId big = Unary("/test.Echo/Big", absl::StrCat(3 << 20));
  DriveUntilClosed(big);
  EXPECT_TRUE(StatusOf(big).ok()) << StatusOf(big);
  ASSERT_EQ(Messages(big).size(), 1u);
  EXPECT_EQ(Messages(big)[0].size(), 3u << 20);
  // Over the 4 MiB default: the call ends, the connection does not.
  CallId huge = Unary("/test.Echo/Big", absl::StrCat(5 << 20));
  DriveUntilClosed(huge);
  EXPECT_EQ(StatusOf(huge).code(), absl::StatusCode::kResourceExhausted) << StatusOf(huge);
  EXPECT_TRUE(Messages(huge).empty());
  CallId after = Unary("/test.Echo/Unary", "still");
  DriveUntilClosed(after);
  EXPECT_EQ(Messages(after), std::vector<std::string>{"echo:still"});
  EXPECT_FALSE(ch_->broken());
}

}  // namespace
}  // namespace ambient::grpc
