// runtime::ZdsClient: the proxy end of ZDS on an EventLoop, against a real
// ZdsAgent over a unix socket in a temporary directory. The loop runs on the
// test's thread; the agent's blocking calls run on another.
#include "ambient/runtime/zds_client.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "ambient/netns/zds.h"

namespace ambient::runtime {
namespace {

namespace zds = netns::zds;

class ZdsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ambient-zds-client-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    auto loop = EventLoop::New();
    ASSERT_TRUE(loop.ok());
    loop_ = std::move(*loop);
    absl::StatusOr<netns::Netns> ns = netns::Netns::Current();
    ASSERT_TRUE(ns.ok()) << ns.status();
    pod_ = std::move(*ns);
  }
  void TearDown() override {
    client_.reset();
    agent_.reset();
    if (!dir_.empty()) {
      unlink((dir_ + "/zds.sock").c_str());
      rmdir(dir_.c_str());
    }
  }

  std::string SocketPath() const { return dir_ + "/zds.sock"; }

  void StartAgent() {
    zds::ZdsAgentOptions ao;
    ao.socket_path = SocketPath();
    ao.io_timeout = absl::Seconds(5);
    auto agent = zds::ZdsAgent::Start(ao);
    ASSERT_TRUE(agent.ok()) << agent.status();
    agent_ = std::move(*agent);
  }

  // MakeClient makes (not starts) a client whose log lines are kept.
  void MakeClient(ZdsClientHandlers h) {
    zds::ZdsProxyOptions o;
    o.socket_path = SocketPath();
    o.log = [this](LogLevel, absl::string_view, absl::string_view m) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.emplace_back(m);
    };
    auto client = ZdsClient::New(loop_.get(), o, std::move(h));
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // RunWhile runs the loop until `f` (on another thread) returns.
  template <typename F>
  auto RunWhile(F f) -> decltype(f()) {
    auto fut = std::async(std::launch::async, f);
    const bool done = loop_->RunUntil(
        [&] { return fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready; },
        absl::Seconds(20));
    EXPECT_TRUE(done) << "the agent call never returned";
    return fut.get();
  }

  size_t LinesContaining(absl::string_view text) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const std::string& l : lines_) n += absl::StrContains(l, text);
    return n;
  }

  std::string dir_;
  std::unique_ptr<EventLoop> loop_;
  netns::Netns pod_;
  std::unique_ptr<zds::ZdsAgent> agent_;
  std::unique_ptr<ZdsClient> client_;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// What the old blocking bridge could not do: an add that takes its time is
// finished later on the loop, and the loop keeps serving other work (here a
// 10 ms ticker) while the agent waits for the Ack, which carries the real
// result.
TEST_F(ZdsClientTest, SlowAddFinishesLaterWhileTheLoopKeepsServing) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::map<std::string, netns::Netns> captured;
  uint64_t pending_call = 0;
  std::string pending_uid;
  netns::Netns pending_ns;
  absl::Time add_started;
  Timer finish(loop_.get(), [&] {
    captured[pending_uid] = std::move(pending_ns);
    ASSERT_TRUE(client_->AddDone(pending_call, absl::OkStatus()).ok());
  });
  ZdsClientHandlers h;
  h.add = [&](uint64_t call, const std::string& uid, const zds::WorkloadInfo&, netns::Netns ns) {
    pending_call = call;
    pending_uid = uid;
    pending_ns = std::move(ns);
    add_started = loop_->Now();
    finish.Arm(loop_->Now() + absl::Milliseconds(300));  // a slow start
  };
  h.remove = [&](const std::string& uid) { captured.erase(uid); };
  ASSERT_NO_FATAL_FAILURE(MakeClient(std::move(h)));
  ASSERT_TRUE(client_->Start().ok());
  EXPECT_EQ(client_->Start().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(RunWhile([&] { return agent_->WaitForProxies(1, absl::Seconds(10)); }).ok());
  EXPECT_TRUE(client_->session().ready());

  int ticks = 0;
  int ticks_while_adding = 0;
  Timer ticker(loop_.get(), [&] {
    ++ticks;
    if (!pending_uid.empty() && captured.empty()) ++ticks_while_adding;
    ticker.Arm(loop_->Now() + absl::Milliseconds(10));
  });
  ticker.Arm(loop_->Now());
  absl::Status added = RunWhile([&] {
    return agent_->AddWorkload("pod-a", {"a", "demo", "sa"}, pod_);
  });
  EXPECT_TRUE(added.ok()) << added;
  EXPECT_EQ(captured.count("pod-a"), 1u);
  EXPECT_GE(loop_->Now() - add_started, absl::Milliseconds(300));
  EXPECT_GE(ticks_while_adding, 10) << "the loop stalled during the add (" << ticks << " ticks)";
  EXPECT_EQ(client_->session().workload_count(), 1u);
  EXPECT_TRUE(client_->session().ready());

  // The agent deletes it: removed on the loop.
  ASSERT_TRUE(RunWhile([&] { return agent_->DelWorkload("pod-a"); }).ok());
  EXPECT_TRUE(captured.empty());
}

// A refused add is acked with the host's text; the pod stays pending (not
// ready) until a retry succeeds.
TEST_F(ZdsClientTest, RefusedAddIsAckedAndRetriedOnTheLoop) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  int attempts = 0;
  ZdsClientHandlers h;
  h.add = [&](uint64_t call, const std::string&, const zds::WorkloadInfo&, netns::Netns) {
    ++attempts;
    absl::Status st = attempts < 3 ? absl::UnavailableError("not yet") : absl::OkStatus();
    ASSERT_TRUE(client_->AddDone(call, st).ok());  // from inside the call
  };
  h.remove = [](const std::string&) {};
  zds::ZdsProxyOptions o;
  o.socket_path = SocketPath();
  o.retry_interval = absl::Milliseconds(50);
  auto client = ZdsClient::New(loop_.get(), o, std::move(h));
  ASSERT_TRUE(client.ok());
  client_ = std::move(*client);
  ASSERT_TRUE(client_->Start().ok());
  ASSERT_TRUE(RunWhile([&] { return agent_->WaitForProxies(1, absl::Seconds(10)); }).ok());
  absl::Status st = RunWhile([&] {
    return agent_->AddWorkload("pod-a", {"a", "demo", "sa"}, pod_);
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kAborted) << st;
  EXPECT_TRUE(absl::StrContains(st.message(), "add for pod-a failed: not yet")) << st;
  EXPECT_FALSE(client_->session().ready());
  EXPECT_EQ(client_->session().pending_count(), 1u);
  EXPECT_TRUE(loop_->RunUntil([&] { return client_->session().ready(); }, absl::Seconds(5)));
  EXPECT_EQ(attempts, 3);
  EXPECT_EQ(client_->session().workload_count(), 1u);
}

// Reconnecting: 10 ms doubling while nobody listens, said at info once; the
// agent appearing later is found; its leaving makes the client unready and
// it comes back to the next agent.
TEST_F(ZdsClientTest, ReconnectsWithBackoffAndTracksReadiness) {
  ZdsClientHandlers h;
  h.add = [&](uint64_t call, const std::string&, const zds::WorkloadInfo&, netns::Netns) {
    client_->AddDone(call, absl::OkStatus()).IgnoreError();
  };
  h.remove = [](const std::string&) {};
  int disconnects = 0;
  h.disconnected = [&](const absl::Status&) { ++disconnects; };
  ASSERT_NO_FATAL_FAILURE(MakeClient(std::move(h)));
  ASSERT_TRUE(client_->Start().ok());
  loop_->RunFor(absl::Milliseconds(200));
  // Attempts at 0, 10, 30, 70, 150 ms (a slow machine may see fewer).
  const size_t waits = LinesContaining("waiting for the node agent");
  EXPECT_GE(waits, 3u);
  EXPECT_LE(waits, 6u);
  EXPECT_FALSE(client_->session().connected());

  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(RunWhile([&] { return agent_->WaitForProxies(1, absl::Seconds(10)); }).ok());
  EXPECT_TRUE(client_->session().ready());
  EXPECT_EQ(client_->session().connect_count(), 1u);

  agent_.reset();
  EXPECT_TRUE(loop_->RunUntil([&] { return !client_->session().connected(); }, absl::Seconds(5)));
  EXPECT_FALSE(client_->session().ready());
  EXPECT_EQ(disconnects, 1);
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  ASSERT_TRUE(RunWhile([&] { return agent_->WaitForProxies(1, absl::Seconds(10)); }).ok());
  EXPECT_EQ(client_->session().connect_count(), 2u);
  EXPECT_TRUE(client_->session().ready());
}

// No shutdown order: the client is destroyed on the loop thread while an
// add is outstanding and the loop no longer runs; nothing waits, no handler
// is called, and the agent hears at once that the proxy went away.
TEST_F(ZdsClientTest, DestroyedMidAddWithoutWaitingForAnything) {
  ASSERT_NO_FATAL_FAILURE(StartAgent());
  std::atomic<bool> add_called{false};
  int disconnects = 0;
  ZdsClientHandlers h;
  h.add = [&](uint64_t, const std::string&, const zds::WorkloadInfo&, netns::Netns) {
    add_called = true;  // never finished
  };
  h.remove = [](const std::string&) {};
  h.disconnected = [&](const absl::Status&) { ++disconnects; };
  ASSERT_NO_FATAL_FAILURE(MakeClient(std::move(h)));
  ASSERT_TRUE(client_->Start().ok());
  ASSERT_TRUE(RunWhile([&] { return agent_->WaitForProxies(1, absl::Seconds(10)); }).ok());
  auto fut = std::async(std::launch::async, [&] {
    return agent_->AddWorkload("pod-a", {"a", "demo", "sa"}, pod_);
  });
  ASSERT_TRUE(loop_->RunUntil([&] { return add_called.load(); }, absl::Seconds(10)));
  const absl::Time before = absl::Now();
  client_.reset();
  EXPECT_LT(absl::Now() - before, absl::Milliseconds(100));
  absl::Status st = fut.get();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_LT(absl::Now() - before, absl::Seconds(2));  // not the agent's 5 s timeout
  EXPECT_EQ(disconnects, 0);
}

TEST_F(ZdsClientTest, NewRefusesBadArguments) {
  ZdsClientHandlers h;
  zds::ZdsProxyOptions o;
  o.socket_path = SocketPath();
  EXPECT_EQ(ZdsClient::New(loop_.get(), o, h).status().code(),
            absl::StatusCode::kInvalidArgument);  // no handlers
  h.add = [](uint64_t, const std::string&, const zds::WorkloadInfo&, netns::Netns) {};
  h.remove = [](const std::string&) {};
  EXPECT_EQ(ZdsClient::New(nullptr, o, h).status().code(), absl::StatusCode::kInvalidArgument);
  o.socket_path = "/" + std::string(200, 'x');
  EXPECT_EQ(ZdsClient::New(loop_.get(), o, h).status().code(), absl::StatusCode::kInvalidArgument);
  o.socket_path = SocketPath();
  o.initial_backoff = absl::ZeroDuration();
  EXPECT_EQ(ZdsClient::New(loop_.get(), o, h).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ambient::runtime
