// ZDS proxy and agent ends: against hand-driven peers (bad input) and against
// each other (real namespaces, real in-pod listeners).
#include "ambient/netns/zds.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ambient/netns/pod_listeners.h"
#include "netns/test_util.h"
#include "netns/zds_transport.h"
#include "support/privileged.h"

namespace ambient::netns::zds {
namespace {

using ::ambient::netns::testing::FdLeakCheck;
using ::ambient::netns::testing::OpenFdCount;
using namespace std::string_literals;

// RecordingHandler remembers pods and the order of events.
class RecordingHandler : public WorkloadHandler {
 public:
  absl::Status AddWorkload(const std::string& uid, const WorkloadInfo& info, Netns netns) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!fail_.ok()) return fail_;
    events_.push_back(absl::StrCat("add ", uid, " ", info.name));
    pods_[uid] = std::move(netns);
    return absl::OkStatus();
  }
  void RemoveWorkload(const std::string& uid) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(absl::StrCat("remove ", uid));
    pods_.erase(uid);
  }
  void OnSnapshotComplete() override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back("snapshot");
  }
  std::vector<std::string> TakeEvents() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(events_, {});
  }
  size_t pod_count() {
    std::lock_guard<std::mutex> lock(mu_);
    return pods_.size();
  }
  NetnsId PodNetns(const std::string& uid) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pods_.find(uid);
    return it == pods_.end() ? NetnsId{} : it->second.id();
  }
  void FailAdds(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(s);
  }

 private:
  std::mutex mu_;
  std::vector<std::string> events_;
  std::map<std::string, Netns> pods_;
  absl::Status fail_;
};

// SendWithFds sends one datagram carrying `fds` (any number) as SCM_RIGHTS.
bool SendWithFds(int sock, const std::string& bytes, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()) + 1);
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

std::string Encode(RequestType type, const std::string& uid, bool info = true) {
  Request r;
  r.type = type;
  r.uid = uid;
  r.has_workload_info = info;
  r.workload_info = {"name-" + uid, "default", "sa"};
  return EncodeRequest(r).value();
}

// FakeAgent drives a ZdsProxy through ServeConnection over a socketpair.
class FakeAgent {
 public:
  explicit FakeAgent(ZdsProxy* proxy) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return;
    agent_.reset(sv[0]);
    UniqueFd proxy_end(sv[1]);
    thread_ = std::thread([this, proxy, p = std::move(proxy_end)]() mutable {
      ended_ = proxy->ServeConnection(std::move(p));
      done_ = true;
    });
    absl::StatusOr<Datagram> hello = RecvDatagram(agent_.get(), -1, absl::Seconds(5));
    hello_ok_ = hello.ok() && DecodeHello(hello->bytes).ok();
  }
  ~FakeAgent() {
    agent_.reset();
    if (thread_.joinable()) thread_.join();
  }
  bool hello_ok() const { return hello_ok_; }
  // Request sends bytes (+fds) and returns the ack text, or "<no ack: ...>".
  std::string Request(const std::string& bytes, const std::vector<int>& fds = {}) {
    if (!SendWithFds(agent_.get(), bytes, fds)) return "<send failed>";
    absl::StatusOr<Datagram> reply = RecvDatagram(agent_.get(), -1, absl::Seconds(5));
    if (!reply.ok()) return absl::StrCat("<no ack: ", reply.status().message(), ">");
    absl::StatusOr<std::string> ack = DecodeAck(reply->bytes);
    return ack.ok() ? *ack : "<bad ack>";
  }
  // Closed reports whether the proxy hung up (EOF on our end).
  bool Closed() {
    absl::StatusOr<Datagram> d = RecvDatagram(agent_.get(), -1, absl::Seconds(5));
    return !d.ok() && absl::IsUnavailable(d.status());
  }
  void Hangup() {
    agent_.reset();
    if (thread_.joinable()) thread_.join();
  }
  const absl::Status& ended() const { return ended_; }

 private:
  UniqueFd agent_;
  std::thread thread_;
  absl::Status ended_;
  std::atomic<bool> done_{false};
  bool hello_ok_ = false;
};

int OpenNetnsFd() { return open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC); }

// ZdsProxyWithPod: the setup of the ZdsProxy tests that hand pods over. As
// root, a pod (a new unnamed netns) and a RecordingHandler for the test's
// proxy; the test fails if it leaves a descriptor open.
class ZdsProxyWithPod : public ::testing::Test {
 protected:
  void SetUp() override {
    AMBIENT_REQUIRE_ROOT();
    leak_check_.emplace();
    absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
    ASSERT_TRUE(pod.ok()) << pod.status();
    pod_ = std::move(*pod);
  }

  std::optional<FdLeakCheck> leak_check_;  // first member: destroyed (and checked) last
  Netns pod_;
  RecordingHandler handler_;
};

TEST_F(ZdsProxyWithPod, AddKeepDelAndSnapshotSemantics) {
  absl::StatusOr<Netns> pod_b = Netns::CreateUnnamed();
  ASSERT_TRUE(pod_b.ok());
  ZdsProxy proxy(ZdsProxyOptions{}, &handler_);
  {
    FakeAgent agent(&proxy);
    ASSERT_TRUE(agent.hello_ok());
    EXPECT_TRUE(proxy.connected());
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "a"), {pod_.fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "b"), {pod_b->fd()}), "");
    EXPECT_EQ(handler_.PodNetns("a"), pod_.id());
    // Same uid, same netns: idempotent. Same uid, other netns: replaced.
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "a"), {pod_.fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "b"), {pod_.fd()}), "");
    EXPECT_EQ(handler_.PodNetns("b"), pod_.id());
    EXPECT_FALSE(proxy.snapshot_complete());
    EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
    EXPECT_TRUE(proxy.snapshot_complete());
    EXPECT_EQ(agent.Request(Encode(RequestType::kDel, "a")), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kDel, "never-added")), "");
    EXPECT_EQ(handler_.TakeEvents(),
              (std::vector<std::string>{"add a name-a", "add b name-b", "remove b", "add b name-b",
                                        "snapshot", "remove a"}));
    EXPECT_EQ(proxy.workload_count(), 1u);
  }
  EXPECT_FALSE(proxy.connected());

  // Reconnect: "b" survives until a snapshot that does not name it; Keep
  // keeps "c" (unknown) harmlessly, delete before the snapshot just forgets.
  {
    FakeAgent agent(&proxy);
    ASSERT_TRUE(agent.hello_ok());
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "d"), {pod_b->fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kKeep, "c")), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kDel, "d")), "");
    EXPECT_EQ(proxy.workload_count(), 1u);  // "b" still there before the snapshot
    EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
    EXPECT_EQ(handler_.TakeEvents(),
              (std::vector<std::string>{"add d name-d", "remove d", "remove b", "snapshot"}));
    EXPECT_EQ(proxy.workload_count(), 0u);
    EXPECT_EQ(proxy.connect_count(), 2u);
  }
  // A kept pod is not dropped by the snapshot.
  {
    FakeAgent agent(&proxy);
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "e"), {pod_.fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
  }
  {
    FakeAgent agent(&proxy);
    EXPECT_EQ(agent.Request(Encode(RequestType::kKeep, "e")), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
    EXPECT_EQ(proxy.workload_count(), 1u);
  }
}

TEST_F(ZdsProxyWithPod, BadInputGetsAnErrorAckAndLeaksNothing) {
  ZdsProxy proxy(ZdsProxyOptions{}, &handler_);
  FakeAgent agent(&proxy);
  ASSERT_TRUE(agent.hello_ok());
  const std::string add = Encode(RequestType::kAdd, "p");
  int pipefd[2];
  ASSERT_EQ(pipe2(pipefd, O_CLOEXEC), 0);
  UniqueFd r(pipefd[0]), w(pipefd[1]);
  int uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  UniqueFd uts_fd(uts);

  EXPECT_NE(agent.Request(add).find("exactly one netns fd, got 0"), std::string::npos);
  EXPECT_NE(agent.Request(add, {pod_.fd(), pod_.fd()}).find("got 2"), std::string::npos);
  EXPECT_NE(agent.Request(add, {r.get()}).find("not a namespace"), std::string::npos);
  EXPECT_NE(agent.Request(add, {uts}).find("not a network namespace"), std::string::npos);
  EXPECT_NE(agent.Request(Encode(RequestType::kAdd, "p", /*info=*/false), {pod_.fd()})
                .find("without workload_info"),
            std::string::npos);
  EXPECT_NE(agent.Request(Encode(RequestType::kDel, "p"), {pod_.fd()})
                .find("must not carry a file descriptor"),
            std::string::npos);
  EXPECT_NE(
      agent.Request(Encode(RequestType::kSnapshotSent, ""), {pod_.fd()}).find("must not carry"),
      std::string::npos);
  // A failing handler: the refusal reaches the agent; nothing is recorded.
  handler_.FailAdds(absl::UnavailableError("listeners busy"));
  EXPECT_NE(agent.Request(add, {pod_.fd()}).find("listeners busy"), std::string::npos);
  handler_.FailAdds(absl::OkStatus());
  EXPECT_EQ(proxy.workload_count(), 0u);
  EXPECT_EQ(handler_.pod_count(), 0u);
  // After all that, the connection still works; then protocol order errors.
  EXPECT_EQ(agent.Request(add, {pod_.fd()}), "");
  EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
  EXPECT_NE(agent.Request(Encode(RequestType::kKeep, "p")).find("after snapshot"),
            std::string::npos);
  EXPECT_NE(agent.Request(Encode(RequestType::kSnapshotSent, "")).find("second snapshot"),
            std::string::npos);
  EXPECT_EQ(proxy.workload_count(), 1u);
  // Malformed bytes: error ack, then the proxy hangs up (to reconnect).
  EXPECT_NE(agent.Request("\x0a\x05garbage"s).find("malformed"), std::string::npos);
  EXPECT_TRUE(agent.Closed());
  agent.Hangup();
  EXPECT_EQ(agent.ended().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(proxy.workload_count(), 1u);  // state kept across the reconnect
}

TEST_F(ZdsProxyWithPod, AgentLeavingMidSnapshotKeepsStateConsistent) {
  ZdsProxy proxy(ZdsProxyOptions{}, &handler_);
  {
    FakeAgent agent(&proxy);
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "a"), {pod_.fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "b"), {pod_.fd()}), "");
    agent.Hangup();  // no SnapshotSent
    EXPECT_EQ(agent.ended().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_FALSE(proxy.connected());
  EXPECT_FALSE(proxy.snapshot_complete());
  EXPECT_EQ(proxy.workload_count(), 2u);  // nothing is dropped without a snapshot
  {
    FakeAgent agent(&proxy);
    EXPECT_EQ(agent.Request(Encode(RequestType::kAdd, "b"), {pod_.fd()}), "");
    EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
  }
  EXPECT_EQ(proxy.workload_count(), 1u);
  EXPECT_EQ(handler_.TakeEvents(),
            (std::vector<std::string>{"add a name-a", "add b name-b", "remove a", "snapshot"}));
}

TEST_F(ZdsProxyWithPod, RefusedPodsStayPendingAndAreRetried) {
  ZdsProxyOptions opts;
  opts.retry_interval = absl::Milliseconds(20);
  ZdsProxy proxy(opts, &handler_);
  handler_.FailAdds(absl::UnavailableError("not yet"));
  {
    // A pod refused on an earlier connection is still pending ...
    FakeAgent first(&proxy);
    EXPECT_NE(first.Request(Encode(RequestType::kAdd, "dropped"), {pod_.fd()}).find("not yet"),
              std::string::npos);
  }
  EXPECT_EQ(proxy.pending_count(), 1u);
  FakeAgent agent(&proxy);
  EXPECT_NE(agent.Request(Encode(RequestType::kAdd, "slow"), {pod_.fd()}).find("not yet"),
            std::string::npos);
  EXPECT_NE(agent.Request(Encode(RequestType::kAdd, "gone"), {pod_.fd()}).find("not yet"),
            std::string::npos);
  EXPECT_EQ(agent.Request(Encode(RequestType::kDel, "gone")), "");  // deleting forgets it
  EXPECT_EQ(proxy.pending_count(), 2u);
  absl::SleepFor(absl::Milliseconds(60));  // a few retries, all refused
  EXPECT_EQ(proxy.pending_count(), 2u);
  // ... until a snapshot that does not name it.
  EXPECT_EQ(agent.Request(Encode(RequestType::kSnapshotSent, "")), "");
  EXPECT_EQ(proxy.pending_count(), 1u);
  EXPECT_TRUE(proxy.snapshot_complete());
  EXPECT_FALSE(proxy.ready()) << "a pending pod keeps the proxy not ready";
  handler_.FailAdds(absl::OkStatus());
  for (int i = 0; i < 200 && proxy.pending_count() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(proxy.pending_count(), 0u);
  EXPECT_EQ(proxy.workload_count(), 1u);
  EXPECT_EQ(handler_.PodNetns("slow"), pod_.id());
  EXPECT_TRUE(proxy.ready());
  EXPECT_EQ(handler_.TakeEvents(), (std::vector<std::string>{"snapshot", "add slow name-slow"}));
}

TEST(ZdsProxy, ReconnectBackoffDoublesFromTheInitialUpToTheCap) {
  RecordingHandler handler;
  ZdsProxyOptions opts;
  opts.socket_path = "/nonexistent-dir/ambient-zds.sock";
  opts.initial_backoff = absl::Milliseconds(10);
  opts.max_backoff = absl::Milliseconds(40);
  std::mutex mu;
  std::vector<std::string> waits;
  opts.log = [&](LogLevel, absl::string_view, absl::string_view message) {
    size_t at = message.find("retrying in ");
    if (at == absl::string_view::npos) return;
    std::lock_guard<std::mutex> lock(mu);
    waits.emplace_back(message.substr(at + 12));
  };
  ZdsProxy proxy(opts, &handler);
  ASSERT_TRUE(proxy.Start().ok());
  EXPECT_EQ(proxy.Start().code(), absl::StatusCode::kFailedPrecondition);
  for (int i = 0; i < 200; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
    std::lock_guard<std::mutex> lock(mu);
    if (waits.size() >= 5) break;
  }
  proxy.Stop();
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_GE(waits.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(waits.begin(), waits.begin() + 5),
            (std::vector<std::string>{"10ms", "20ms", "40ms", "40ms", "40ms"}));
  EXPECT_FALSE(proxy.connected());
  EXPECT_EQ(proxy.connect_count(), 0u);

  ZdsProxyOptions bad = opts;
  bad.max_backoff = absl::Milliseconds(5);
  ZdsProxy misconfigured(bad, &handler);
  EXPECT_EQ(misconfigured.Start().code(), absl::StatusCode::kInvalidArgument);
  bad = opts;
  bad.socket_path = std::string(120, 'x');
  ZdsProxy long_path(bad, &handler);
  EXPECT_EQ(long_path.Start().code(), absl::StatusCode::kInvalidArgument);
}

// A node proxy whose agent is not there says so at info level (what it waits
// for, and that it retries) once, and not again within 10 s: the rest of the
// retries are debug lines.
TEST(ZdsProxy, WaitingForTheAgentIsSaidAtInfoOnceThenQuietly) {
  RecordingHandler handler;
  ZdsProxyOptions opts;
  opts.socket_path = "/nonexistent-dir/ambient-zds.sock";
  opts.initial_backoff = absl::Milliseconds(10);
  opts.max_backoff = absl::Milliseconds(20);
  std::mutex mu;
  std::vector<std::string> info;
  int debug = 0;
  opts.log = [&](LogLevel level, absl::string_view, absl::string_view message) {
    std::lock_guard<std::mutex> lock(mu);
    if (level == LogLevel::kDebug) {
      ++debug;
    } else {
      info.emplace_back(message);
    }
  };
  ZdsProxy proxy(opts, &handler);
  ASSERT_TRUE(proxy.Start().ok());
  for (int i = 0; i < 400; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
    std::lock_guard<std::mutex> lock(mu);
    if (debug >= 5) break;
  }
  proxy.Stop();
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_GE(debug, 5);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_NE(info[0].find("waiting for the node agent on /nonexistent-dir/ambient-zds.sock"),
            std::string::npos)
      << info[0];
  EXPECT_NE(info[0].find("retrying in"), std::string::npos) << info[0];
}

// Issue 17: an agent that takes the hello and then hangs up (or sends
// garbage) made the proxy reconnect ~100 times a second, because any
// connection that got as far as the hello reset the back-off. Now only a
// connection that got its snapshot through does.
TEST(ZdsProxy, BackoffKeepsGrowingWhileNoSnapshotGetsThrough) {
  std::string path = absl::StrCat("/tmp/ambient-zds-rude-", getpid(), ".sock");
  unlink(path.c_str());
  UniqueFd listener(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener.get(), 16), 0);
  std::atomic<bool> stop{false};
  std::thread rude([&] {
    while (!stop) {
      pollfd p{listener.get(), POLLIN, 0};
      if (poll(&p, 1, 20) <= 0) continue;
      UniqueFd c(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c) continue;
      RecvDatagram(c.get(), -1, absl::Seconds(1)).IgnoreError();  // the hello
      SendWithFds(c.get(), "\xff\xff\xff", {});                   // garbage, then gone
    }
  });
  RecordingHandler handler;
  ZdsProxyOptions opts;
  opts.socket_path = path;
  opts.initial_backoff = absl::Milliseconds(10);
  opts.max_backoff = absl::Milliseconds(160);
  ZdsProxy proxy(opts, &handler);
  ASSERT_TRUE(proxy.Start().ok());
  absl::SleepFor(absl::Milliseconds(600));
  proxy.Stop();
  stop = true;
  rude.join();
  unlink(path.c_str());
  // 10+20+40+80+160+160 ms of waits fill 600 ms: about 6 connects (the old
  // behaviour, 10 ms after each, made ~50).
  EXPECT_GE(proxy.connect_count(), 3u);
  EXPECT_LE(proxy.connect_count(), 9u);
}

TEST(ZdsProxy, OversizedDatagramsAndFloodsOfFds) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  RecordingHandler handler;
  ZdsProxy proxy(ZdsProxyOptions{}, &handler);
  {
    FakeAgent agent(&proxy);
    EXPECT_NE(agent.Request(std::string(1500, 'x')).find("larger than 1024"), std::string::npos);
    EXPECT_TRUE(agent.Closed());
  }
  {
    FakeAgent agent(&proxy);
    int nsfd = OpenNetnsFd();
    UniqueFd own(nsfd);
    // More descriptors than the proxy makes room for: all closed, error ack.
    std::vector<int> many(40, nsfd);
    std::string reply = agent.Request(Encode(RequestType::kAdd, "x"), many);
    EXPECT_FALSE(reply.empty());
    EXPECT_EQ(proxy.workload_count(), 0u);
  }
}

std::string TempSocketPath() {
  static std::atomic<int> n{0};
  return absl::StrCat("/tmp/ambient-zds-", getpid(), "-", n++, ".sock");
}

// WarnLog collects the WARN lines of an agent (its sink may be called from
// the agent's thread).
class WarnLog {
 public:
  LogSink Sink() {
    return [this](LogLevel level, absl::string_view, absl::string_view message) {
      std::lock_guard<std::mutex> lock(mu_);
      if (level == LogLevel::kWarn) lines_.emplace_back(message);
    };
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// RawProxy is a hand-driven node proxy connecting to a ZdsAgent.
class RawProxy {
 public:
  explicit RawProxy(const std::string& path, bool send_hello = true) {
    fd_.reset(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    connected_ = connect(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (connected_ && send_hello) SendWithFds(fd_.get(), EncodeHello(), {});
  }
  bool connected() const { return connected_; }
  // Next reads one request; `fds` receives its descriptors.
  absl::StatusOr<Request> Next(std::vector<UniqueFd>* fds = nullptr) {
    absl::StatusOr<Datagram> d = RecvDatagram(fd_.get(), -1, absl::Seconds(5));
    if (!d.ok()) return d.status();
    if (fds != nullptr) *fds = std::move(d->fds);
    return DecodeRequest(d->bytes);
  }
  bool Ack(const std::string& error = "") { return SendWithFds(fd_.get(), EncodeAck(error), {}); }
  bool SendRaw(const std::string& bytes) { return SendWithFds(fd_.get(), bytes, {}); }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  bool connected_ = false;
};

TEST(ZdsAgent, SnapshotsAddsDeletesAndBroadcasts) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  absl::StatusOr<Netns> pod_a = Netns::CreateUnnamed();
  ASSERT_TRUE(pod_a.ok());
  ZdsAgentOptions opts;
  opts.socket_path = TempSocketPath();
  opts.io_timeout = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(opts);
  ASSERT_TRUE(agent.ok()) << agent.status();

  // No proxy yet: the pod is recorded, the caller is told.
  EXPECT_EQ((*agent)->AddWorkload("a", {"pa", "default", "sa"}, *pod_a).code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE((*agent)->KeepWorkload("k").ok());

  RawProxy old_proxy(opts.socket_path);
  ASSERT_TRUE(old_proxy.connected());
  std::vector<UniqueFd> fds;
  absl::StatusOr<Request> r = old_proxy.Next(&fds);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, RequestType::kAdd);
  EXPECT_EQ(r->uid, "a");
  EXPECT_EQ(r->workload_info.name, "pa");
  ASSERT_EQ(fds.size(), 1u);
  absl::StatusOr<Netns> got = Netns::FromFd(fds[0].release());
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == *pod_a);
  EXPECT_EQ(fcntl(got->fd(), F_GETFD), FD_CLOEXEC);  // MSG_CMSG_CLOEXEC
  ASSERT_TRUE(old_proxy.Ack());
  r = old_proxy.Next(&fds);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, RequestType::kKeep);
  EXPECT_EQ(r->uid, "k");
  EXPECT_TRUE(fds.empty());
  ASSERT_TRUE(old_proxy.Ack());
  r = old_proxy.Next();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->type, RequestType::kSnapshotSent);
  ASSERT_TRUE(old_proxy.Ack());
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(5)).ok());

  // A second (newer) proxy gets the snapshot; adds go to it only.
  RawProxy new_proxy(opts.socket_path);
  for (int i = 0; i < 3; ++i) {
    r = new_proxy.Next();
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(new_proxy.Ack());
  }
  ASSERT_TRUE((*agent)->WaitForProxies(2, absl::Seconds(5)).ok());
  std::thread answer([&] {
    absl::StatusOr<Request> add = new_proxy.Next(&fds);
    EXPECT_TRUE(add.ok() && add->type == RequestType::kAdd && add->uid == "b");
    EXPECT_EQ(fds.size(), 1u);
    new_proxy.Ack("cannot open listeners");
  });
  absl::Status added = (*agent)->AddWorkload("b", {}, *pod_a);
  answer.join();
  EXPECT_EQ(added.code(), absl::StatusCode::kAborted);
  EXPECT_NE(added.message().find("cannot open listeners"), std::string::npos);

  // Delete goes to both.
  std::thread answer_both([&] {
    for (RawProxy* p : {&old_proxy, &new_proxy}) {
      absl::StatusOr<Request> del = p->Next();
      EXPECT_TRUE(del.ok() && del->type == RequestType::kDel && del->uid == "a");
      p->Ack();
    }
  });
  EXPECT_TRUE((*agent)->DelWorkload("a").ok());
  answer_both.join();
  fds.clear();
}

TEST(ZdsAgent, BadProxiesAreDroppedAndStateStaysConsistent) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
  ASSERT_TRUE(pod.ok());
  ZdsAgentOptions opts;
  opts.socket_path = TempSocketPath();
  opts.io_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(opts);
  ASSERT_TRUE(agent.ok()) << agent.status();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE((*agent)->AddWorkload(absl::StrCat("pod", i), {}, *pod).ok());
  }
  {
    RawProxy bad_hello(opts.socket_path, /*send_hello=*/false);
    bad_hello.SendRaw("\x08\x05"s);       // version 5
    EXPECT_FALSE(bad_hello.Next().ok());  // closed without a snapshot
  }
  {
    RawProxy silent(opts.socket_path, /*send_hello=*/false);
    EXPECT_FALSE(silent.Next().ok());  // hello timeout, closed
  }
  {
    // Disconnects in the middle of the snapshot.
    RawProxy quitter(opts.socket_path);
    std::vector<UniqueFd> fds;
    ASSERT_TRUE(quitter.Next(&fds).ok());
    quitter.Ack();
    ASSERT_TRUE(quitter.Next(&fds).ok());
  }
  {
    // Takes the first request and never answers: dropped after io_timeout.
    RawProxy mute(opts.socket_path);
    std::vector<UniqueFd> fds;
    ASSERT_TRUE(mute.Next(&fds).ok());
    absl::StatusOr<Request> after = mute.Next();
    EXPECT_TRUE(absl::IsUnavailable(after.status())) << after.status();  // EOF
  }
  {
    // Answers with garbage instead of an ack.
    RawProxy rude(opts.socket_path);
    ASSERT_TRUE(rude.Next().ok());
    rude.SendRaw("\xff\xff\xff"s);
    EXPECT_FALSE(rude.Next().ok());
  }
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ((*agent)->proxy_count(), 0u);

  // A good proxy afterwards gets the full, consistent snapshot.
  RawProxy good(opts.socket_path);
  std::vector<std::string> uids;
  for (;;) {
    std::vector<UniqueFd> fds;
    absl::StatusOr<Request> r = good.Next(&fds);
    ASSERT_TRUE(r.ok()) << r.status();
    good.Ack();
    if (r->type == RequestType::kSnapshotSent) break;
    uids.push_back(r->uid);
    EXPECT_EQ(fds.size(), 1u);
  }
  EXPECT_EQ(uids, (std::vector<std::string>{"pod0", "pod1", "pod2"}));
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(5)).ok());
  // A proxy that goes away is noticed without anything being sent to it.
  { RawProxy gone = std::move(good); }
  for (int i = 0; i < 100 && (*agent)->proxy_count() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ((*agent)->proxy_count(), 0u);
}

// Issue 17, finding 4: the agent waited for each connection's hello in turn
// (up to io_timeout each), so three silent connections delayed a real
// proxy's snapshot from 1 ms to 3 x io_timeout. Now each owes its hello on
// its own deadline and the real proxy is served at once.
TEST(ZdsAgent, SilentConnectionsDoNotDelayARealProxy) {
  FdLeakCheck leak_check;
  ZdsAgentOptions opts;
  opts.socket_path = TempSocketPath();
  opts.io_timeout = absl::Seconds(2);
  WarnLog warn;
  opts.log = warn.Sink();
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(opts);
  ASSERT_TRUE(agent.ok()) << agent.status();
  std::vector<std::unique_ptr<RawProxy>> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(std::make_unique<RawProxy>(opts.socket_path, /*send_hello=*/false));
    ASSERT_TRUE(silent.back()->connected());
  }
  absl::SleepFor(absl::Milliseconds(50));  // the agent has accepted them
  absl::Time start = absl::Now();
  RawProxy good(opts.socket_path);
  absl::StatusOr<Request> r = good.Next();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, RequestType::kSnapshotSent);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  ASSERT_TRUE(good.Ack());
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(1)).ok());
  // The silent ones are closed when their own hello deadline passes.
  for (auto& s : silent) {
    absl::StatusOr<Request> none = s->Next();
    EXPECT_TRUE(absl::IsUnavailable(none.status())) << none.status();
  }
  std::vector<std::string> warnings = warn.lines();
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(), "node proxy sent no hello within 2s"), 3);
}

// Issue 17: the agent sent each snapshot synchronously, holding its lock,
// waiting up to io_timeout for every ack. A proxy that said hello and then
// stopped acknowledging half-way froze the agent thread (no other proxy got
// its snapshot) and every AddWorkload/DelWorkload caller for io_timeout, and
// again on each reconnect. Now snapshots are driven one request at a time by
// the agent thread without blocking.
TEST(ZdsAgent, AProxyStallingMidSnapshotDelaysNeitherOtherProxiesNorCallers) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
  ASSERT_TRUE(pod.ok());
  ZdsAgentOptions opts;
  opts.socket_path = TempSocketPath();
  opts.io_timeout = absl::Seconds(3);
  WarnLog warn;
  opts.log = warn.Sink();
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(opts);
  ASSERT_TRUE(agent.ok()) << agent.status();
  for (const char* uid : {"p0", "p1", "p2"}) {
    EXPECT_EQ((*agent)->AddWorkload(uid, {}, *pod).code(), absl::StatusCode::kUnavailable);
  }

  // The staller takes the first request of its snapshot and never acks.
  RawProxy staller(opts.socket_path);
  std::vector<UniqueFd> fds;
  absl::StatusOr<Request> first = staller.Next(&fds);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->uid, "p0");
  fds.clear();

  // A real proxy connecting now gets its whole snapshot at once.
  absl::Time start = absl::Now();
  RawProxy good(opts.socket_path);
  std::vector<std::string> uids;
  for (;;) {
    absl::StatusOr<Request> r = good.Next(&fds);
    ASSERT_TRUE(r.ok()) << r.status();
    fds.clear();
    ASSERT_TRUE(good.Ack());
    if (r->type == RequestType::kSnapshotSent) break;
    uids.push_back(r->uid);
  }
  EXPECT_EQ(uids, (std::vector<std::string>{"p0", "p1", "p2"}));
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(1)).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ((*agent)->proxy_count(), 1u);  // the staller is not counted

  // Adds and deletes reach the real proxy at once; the staller's snapshot
  // takes them in when (if) it gets there.
  std::thread answer([&] {
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<Request> r = good.Next(&fds);
      EXPECT_TRUE(r.ok()) << r.status();
      fds.clear();
      good.Ack();
    }
  });
  start = absl::Now();
  EXPECT_TRUE((*agent)->AddWorkload("p3", {}, *pod).ok());
  EXPECT_TRUE((*agent)->DelWorkload("p1").ok());
  answer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));

  // The staller is dropped io_timeout after its unanswered request, and said so.
  absl::StatusOr<Request> after = staller.Next();
  EXPECT_TRUE(absl::IsUnavailable(after.status())) << after.status();
  std::vector<std::string> warnings = warn.lines();
  EXPECT_EQ(std::count(warnings.begin(), warnings.end(),
                       "snapshot to node proxy failed: no ack for add p0 within 3s"),
            1)
      << absl::StrJoin(warnings, "\n");
}

// Adds, keeps and deletes that happen while a proxy is half-way through its
// snapshot reach it in order: nothing is lost, nothing deleted comes back.
TEST(ZdsAgent, ChangesDuringASnapshotReachThatProxy) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  absl::StatusOr<Netns> pod = Netns::CreateUnnamed();
  ASSERT_TRUE(pod.ok());
  ZdsAgentOptions opts;
  opts.socket_path = TempSocketPath();
  opts.io_timeout = absl::Seconds(3);
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(opts);
  ASSERT_TRUE(agent.ok()) << agent.status();
  for (const char* uid : {"a", "b", "c"}) {
    EXPECT_EQ((*agent)->AddWorkload(uid, {}, *pod).code(), absl::StatusCode::kUnavailable);
  }
  RawProxy proxy(opts.socket_path);
  std::vector<UniqueFd> fds;
  absl::StatusOr<Request> r = proxy.Next(&fds);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->type, RequestType::kAdd);
  EXPECT_EQ(r->uid, "a");
  // While "add a" waits for its ack: "a" goes away, "c" goes away before
  // its turn, "d" arrives, "k" is kept.
  EXPECT_EQ((*agent)->DelWorkload("a").code(), absl::StatusCode::kOk);
  EXPECT_EQ((*agent)->DelWorkload("c").code(), absl::StatusCode::kOk);
  EXPECT_EQ((*agent)->AddWorkload("d", {}, *pod).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE((*agent)->KeepWorkload("k").ok());
  ASSERT_TRUE(proxy.Ack());
  std::vector<std::string> seen;
  for (;;) {
    fds.clear();
    r = proxy.Next(&fds);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_TRUE(proxy.Ack());
    seen.push_back(absl::StrCat(RequestTypeName(r->type), " ", r->uid));
    if (r->type == RequestType::kSnapshotSent) break;
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{"add b", "del a", "add d", "keep k", "snapshot_sent "}));
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(1)).ok());
}

TEST(ZdsAgent, RefusesToReplaceAFileThatIsNotASocket) {
  std::string path = TempSocketPath();
  int f = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(f, 0);
  close(f);
  ZdsAgentOptions opts;
  opts.socket_path = path;
  EXPECT_EQ(ZdsAgent::Start(opts).status().code(), absl::StatusCode::kAlreadyExists);
  unlink(path.c_str());
  opts.socket_path = std::string(200, 'x');
  EXPECT_EQ(ZdsAgent::Start(opts).status().code(), absl::StatusCode::kInvalidArgument);
  opts.socket_path = "/nonexistent-dir/zds.sock";
  EXPECT_EQ(ZdsAgent::Start(opts).status().code(), absl::StatusCode::kNotFound);
}

// ListenerHandler is the real thing: a PodListenerSet per pod.
class ListenerHandler : public WorkloadHandler {
 public:
  absl::Status AddWorkload(const std::string& uid, const WorkloadInfo&, Netns netns) override {
    absl::StatusOr<PodListenerSet> set = PodListenerSet::Open(netns);
    if (!set.ok()) return set.status();
    std::lock_guard<std::mutex> lock(mu_);
    pods_[uid] = std::move(*set);
    return absl::OkStatus();
  }
  void RemoveWorkload(const std::string& uid) override {
    std::lock_guard<std::mutex> lock(mu_);
    pods_.erase(uid);
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu_);
    return pods_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, PodListenerSet> pods_;
};

bool Reachable(const Netns& ns, uint16_t port) {
  absl::StatusOr<UniqueFd> s = SocketIn(ns, AF_INET, SOCK_STREAM, 0);
  if (!s.ok()) return false;
  SocketAddress a = SocketAddress::Loopback(AF_INET, port);
  return connect(s->get(), a.sockaddr_ptr(), a.size()) == 0;
}

TEST(ZdsEndToEnd, AgentAndProxyAgreeAndListenersLiveInThePods) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  ListenerHandler handler;
  ZdsProxyOptions popts;
  popts.socket_path = TempSocketPath();
  popts.max_backoff = absl::Milliseconds(50);
  ZdsProxy proxy(popts, &handler);
  ASSERT_TRUE(proxy.Start().ok());  // before the agent exists: it retries

  std::vector<Netns> pods;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Netns> ns = Netns::CreateUnnamed();
    ASSERT_TRUE(ns.ok());
    ASSERT_TRUE(BringUpLoopback(*ns).ok());
    pods.push_back(std::move(*ns));
  }
  ZdsAgentOptions aopts;
  aopts.socket_path = popts.socket_path;
  {
    absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(aopts);
    ASSERT_TRUE(agent.ok()) << agent.status();
    (void)(*agent)->AddWorkload("pod0", {"p0", "ns", "sa"}, pods[0]);  // goes in the snapshot
    ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(5)).ok());
    for (int i = 0; i < 200 && !proxy.snapshot_complete(); ++i)
      absl::SleepFor(absl::Milliseconds(5));
    EXPECT_TRUE(proxy.snapshot_complete());
    ASSERT_TRUE((*agent)->AddWorkload("pod1", {"p1", "ns", "sa"}, pods[1]).ok());
    ASSERT_TRUE((*agent)->AddWorkload("pod2", {"p2", "ns", "sa"}, pods[2]).ok());
    EXPECT_EQ(handler.count(), 3u);
    absl::StatusOr<Netns> outside = Netns::CreateUnnamed();
    ASSERT_TRUE(outside.ok() && BringUpLoopback(*outside).ok());
    for (const Netns& p : pods) {
      EXPECT_TRUE(Reachable(p, 15001));
      EXPECT_TRUE(Reachable(p, 15008));
    }
    EXPECT_FALSE(Reachable(*outside, 15001));
    ASSERT_TRUE((*agent)->DelWorkload("pod1").ok());
    EXPECT_EQ(handler.count(), 2u);
    EXPECT_FALSE(Reachable(pods[1], 15001));
    EXPECT_TRUE(Reachable(pods[2], 15001));
  }
  // Agent restarts knowing only pod2: the proxy reconnects and the snapshot
  // drops pod0.
  {
    absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(aopts);
    ASSERT_TRUE(agent.ok());
    (void)(*agent)->AddWorkload("pod2", {"p2", "ns", "sa"}, pods[2]);
    ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(5)).ok());
    for (int i = 0; i < 200 && handler.count() != 1; ++i) absl::SleepFor(absl::Milliseconds(5));
    EXPECT_EQ(handler.count(), 1u);
    EXPECT_FALSE(Reachable(pods[0], 15001));
    EXPECT_TRUE(Reachable(pods[2], 15001));
    EXPECT_GE(proxy.connect_count(), 2u);
  }
  proxy.Stop();
}

TEST(ZdsEndToEnd, FiveHundredPodsWithoutFdGrowth) {
  AMBIENT_REQUIRE_ROOT();
  FdLeakCheck leak_check;
  ListenerHandler handler;
  ZdsProxyOptions popts;
  popts.socket_path = TempSocketPath();
  ZdsAgentOptions aopts;
  aopts.socket_path = popts.socket_path;
  absl::StatusOr<std::unique_ptr<ZdsAgent>> agent = ZdsAgent::Start(aopts);
  ASSERT_TRUE(agent.ok());
  ZdsProxy proxy(popts, &handler);
  ASSERT_TRUE(proxy.Start().ok());
  ASSERT_TRUE((*agent)->WaitForProxies(1, absl::Seconds(5)).ok());
  const int connected = OpenFdCount();
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 250; ++i) {
      absl::StatusOr<Netns> ns = Netns::CreateUnnamed();
      ASSERT_TRUE(ns.ok());
      std::string uid = absl::StrCat("pod-", round, "-", i);
      absl::Status s = (*agent)->AddWorkload(uid, {uid, "ns", "sa"}, *ns);
      ASSERT_TRUE(s.ok()) << s;
    }
    EXPECT_EQ(handler.count(), 250u);
    for (int i = 0; i < 250; ++i) {
      ASSERT_TRUE((*agent)->DelWorkload(absl::StrCat("pod-", round, "-", i)).ok());
    }
    EXPECT_EQ(handler.count(), 0u);
    EXPECT_EQ(proxy.workload_count(), 0u);
    EXPECT_EQ(OpenFdCount(), connected) << "round " << round;
  }
  proxy.Stop();
}

}  // namespace
}  // namespace ambient::netns::zds
