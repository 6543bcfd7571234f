// The node agent end of ZDS (istio-cni's role).
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"
#include "ambient/netns/zds.h"
#include "netns/zds_transport.h"

namespace ambient::netns::zds {
namespace {

// Connections owing their hello at most; more are closed at once.
constexpr size_t kMaxGreeting = 64;

absl::StatusOr<UniqueFd> ListenSeqpacket(const std::string& path) {
  if (absl::Status s = CheckSocketPath(path); !s.ok()) return s;
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " exists and is not a socket; refusing to replace it"));
    }
    if (unlink(path.c_str()) != 0) return ErrnoStatus(errno, absl::StrCat("remove stale ", path));
  }
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind ", path));
  }
  if (listen(fd.get(), 16) != 0) {
    int err = errno;
    unlink(path.c_str());
    return ErrnoStatus(err, absl::StrCat("listen ", path));
  }
  return fd;
}

// AckOf reads a node proxy's answer to one request: a single datagram with
// no descriptors holding an Ack. The Ack's error text ("" when it took the
// request), or why the answer is not one.
absl::StatusOr<std::string> AckOf(const absl::StatusOr<Datagram>& reply) {
  if (!reply.ok()) return reply.status();
  if (reply->truncated || !reply->fds.empty()) {
    return absl::InvalidArgumentError("reply too long or carrying descriptors");
  }
  return DecodeAck(reply->bytes);
}

}  // namespace

ZdsAgent::ZdsAgent(ZdsAgentOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ZdsAgent>> ZdsAgent::Start(ZdsAgentOptions options) {
  if (options.io_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("ZdsAgent io_timeout must be positive");
  }
  std::unique_ptr<ZdsAgent> agent(new ZdsAgent(std::move(options)));
  absl::StatusOr<UniqueFd> stop = MakeEventFd();
  if (!stop.ok()) return stop.status();
  absl::StatusOr<UniqueFd> wake = MakeEventFd();
  if (!wake.ok()) return wake.status();
  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(agent->options_.socket_path);
  if (!listener.ok()) return listener.status();
  agent->stop_fd_ = std::move(*stop);
  agent->wake_fd_ = std::move(*wake);
  agent->listen_fd_ = std::move(*listener);
  agent->thread_ = std::thread([a = agent.get()] { a->Loop(); });
  return agent;
}

ZdsAgent::~ZdsAgent() {
  stopping_ = true;
  if (stop_fd_) SignalEventFd(stop_fd_.get());
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    conns_.clear();
    pods_.clear();
  }
  if (listen_fd_) {
    listen_fd_.reset();
    unlink(options_.socket_path.c_str());
  }
}

void ZdsAgent::Log(LogLevel level, absl::string_view message) {
  if (options_.log) options_.log(level, "zds", message);
}

void ZdsAgent::Wake() { SignalEventFd(wake_fd_.get()); }

void ZdsAgent::Loop() {
  while (!stopping_) {
    try {
      LoopOnce();
    } catch (...) {  // e.g. std::bad_alloc: never let it end the process
      Log(LogLevel::kError, "exception in the agent loop; continuing");
      SleepUnlessStopped(stop_fd_.get(), absl::Milliseconds(100));
    }
  }
}

void ZdsAgent::LoopOnce() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> serials;
  while (!stopping_) {
    fds.assign(
        {{stop_fd_.get(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}});
    // Connections owing their hello come next: each is polled with its own
    // deadline, so a silent one delays nobody.
    const size_t greet_base = fds.size();
    absl::Time first_deadline = absl::InfiniteFuture();
    for (const Greeting& g : greeting_) {
      fds.push_back({g.fd.get(), POLLIN | POLLRDHUP, 0});
      first_deadline = std::min(first_deadline, g.deadline);
    }
    const size_t conn_base = fds.size();
    serials.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& c : conns_) {
        if (c->broken) continue;
        // Past its snapshot, the proxy never speaks unprompted: readable
        // means it left or misbehaves. During it, readable is the ack due.
        fds.push_back({c->fd.get(), POLLIN | POLLRDHUP, 0});
        serials.push_back(c->serial);
        if (!c->ready && !c->awaiting.empty())
          first_deadline = std::min(first_deadline, c->deadline);
      }
    }
    int wait_ms = -1;
    if (first_deadline != absl::InfiniteFuture()) {
      absl::Duration left = std::max(first_deadline - absl::Now(), absl::ZeroDuration());
      wait_ms =
          static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    }
    int n = poll(fds.data(), fds.size(), wait_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, absl::StrCat("poll failed: ", std::strerror(errno)));
      SleepUnlessStopped(stop_fd_.get(), absl::Milliseconds(100));
      continue;
    }
    if (fds[0].revents != 0 || stopping_) {
      stopping_ = true;
      return;
    }
    if (fds[1].revents != 0) DrainEventFd(wake_fd_.get());
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = conn_base; i < fds.size(); ++i) {
        if (fds[i].revents == 0) continue;
        for (auto& c : conns_) {
          if (c->serial != serials[i - conn_base] || c->broken) continue;
          if (!c->ready) {
            OnSnapshotAck(*c);
            Pump(*c);
            continue;
          }
          // Re-check now that we hold the lock: an ack read by Exchange is fine.
          pollfd again{c->fd.get(), POLLIN | POLLRDHUP, 0};
          if (poll(&again, 1, 0) > 0) {
            Log(LogLevel::kInfo, "node proxy disconnected (or sent unsolicited data)");
            c->broken = true;
            conns_changed_.notify_all();
          }
        }
      }
      const absl::Time now = absl::Now();
      for (auto& c : conns_) {
        if (c->broken || c->ready || c->awaiting.empty() || now < c->deadline) continue;
        Break(*c, absl::StrCat("no ack for ", c->awaiting, " within ",
                               absl::FormatDuration(options_.io_timeout)));
      }
      size_t before = conns_.size();
      conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                  [](const std::unique_ptr<Conn>& c) { return c->broken; }),
                   conns_.end());
      if (conns_.size() != before) {
        Log(LogLevel::kInfo, absl::StrCat(conns_.size(), " node proxies connected"));
      }
    }
    // Hellos that arrived, and those that did not in time.
    std::vector<Greeting> waiting = std::move(greeting_);
    greeting_.clear();
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < waiting.size(); ++i) {
      if (fds[greet_base + i].revents != 0) {
        Greet(std::move(waiting[i].fd));
      } else if (now >= waiting[i].deadline) {
        Log(LogLevel::kWarn, absl::StrCat("node proxy sent no hello within ",
                                          absl::FormatDuration(options_.io_timeout)));
      } else {
        greeting_.push_back(std::move(waiting[i]));
      }
    }
    if (fds[2].revents != 0) AcceptOne();
  }
}

void ZdsAgent::AcceptOne() {
  // A bounded batch: the listener is level-triggered and polled again.
  for (int i = 0; i < 16; ++i) {
    UniqueFd fd(accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!fd) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        Log(LogLevel::kWarn,
            absl::StrCat("accept failed: ", std::strerror(errno), "; pausing 100ms"));
        SleepUnlessStopped(stop_fd_.get(), absl::Milliseconds(100));
      } else if (errno != EAGAIN && errno != EINTR) {
        Log(LogLevel::kWarn, absl::StrCat("accept failed: ", std::strerror(errno)));
      }
      return;
    }
    if (greeting_.size() >= kMaxGreeting) {
      Log(LogLevel::kWarn, absl::StrCat("more than ", kMaxGreeting,
                                        " connections owe their hello; closing a new one"));
      continue;
    }
    greeting_.push_back(Greeting{std::move(fd), absl::Now() + options_.io_timeout});
  }
}

void ZdsAgent::Greet(UniqueFd fd) {
  // The hello is there (or the peer left): this does not wait.
  absl::StatusOr<Datagram> hello = RecvDatagram(fd.get(), stop_fd_.get(), absl::ZeroDuration());
  if (!hello.ok()) {
    Log(LogLevel::kWarn, absl::StrCat("node proxy sent no hello: ", hello.status().message()));
    return;
  }
  absl::Status ok = hello->truncated || !hello->fds.empty()
                        ? absl::InvalidArgumentError("hello too long or carrying descriptors")
                        : DecodeHello(hello->bytes);
  if (!ok.ok()) {
    Log(LogLevel::kWarn, absl::StrCat("bad hello from node proxy: ", ok.message()));
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto conn = std::make_unique<Conn>();
  conn->fd = std::move(fd);
  conn->serial = next_serial_++;
  for (const auto& [uid, pod] : pods_) conn->todo.push_back(uid);
  conn->snapshot_pods = pods_.size();
  Conn& c = *conn;
  conns_.push_back(std::move(conn));
  Log(LogLevel::kInfo,
      absl::StrCat("node proxy connected; sending a snapshot of ", c.snapshot_pods, " pods"));
  Pump(c);
}

void ZdsAgent::Break(Conn& conn, absl::string_view why) {
  Log(LogLevel::kWarn,
      absl::StrCat(conn.ready ? "node proxy failed: " : "snapshot to node proxy failed: ", why));
  conn.broken = true;
  conns_changed_.notify_all();
}

void ZdsAgent::Pump(Conn& conn) {
  while (!conn.broken && !conn.ready && conn.awaiting.empty()) {
    Request req;
    int pass_fd = -1;
    if (!conn.todo.empty()) {
      req.uid = std::move(conn.todo.front());
      conn.todo.pop_front();
      auto it = pods_.find(req.uid);
      if (it != pods_.end()) {
        // A keep is only allowed before SnapshotSent; one recorded later has
        // nothing to tell a proxy (as for proxies past their snapshot).
        if (!it->second.netns.valid() && conn.snapshot_sent) continue;
        conn.sent.insert(req.uid);
        if (it->second.netns.valid()) {
          req.type = RequestType::kAdd;
          req.has_workload_info = true;
          req.workload_info = it->second.info;
          pass_fd = it->second.netns.fd();
        } else {
          req.type = RequestType::kKeep;
        }
      } else if (conn.sent.erase(req.uid) > 0) {
        req.type = RequestType::kDel;  // told about it earlier in this snapshot; gone since
      } else {
        continue;  // added and deleted before its turn
      }
    } else if (!conn.snapshot_sent) {
      req.type = RequestType::kSnapshotSent;
      conn.snapshot_sent = true;
    } else {
      return;
    }
    absl::StatusOr<std::string> bytes = EncodeRequest(req);
    absl::Status sent = bytes.status();
    // One request is out at a time and it is small: the proxy's queue has
    // room, so this does not wait; if it would, the proxy is not reading.
    if (sent.ok()) sent = SendDatagram(conn.fd.get(), *bytes, pass_fd, -1, absl::ZeroDuration());
    const std::string what = absl::StrCat(RequestTypeName(req.type), " ", req.uid);
    if (!sent.ok()) {
      Break(conn, absl::StrCat("sending ", what, ": ", sent.message()));
      return;
    }
    conn.awaiting = what;
    conn.deadline = absl::Now() + options_.io_timeout;
  }
}

void ZdsAgent::OnSnapshotAck(Conn& conn) {
  if (conn.awaiting.empty()) {
    Break(conn, "unsolicited data during the snapshot");
    return;
  }
  absl::StatusOr<std::string> ack = AckOf(RecvDatagram(conn.fd.get(), -1, absl::ZeroDuration()));
  if (!ack.ok()) {
    Break(conn, absl::StrCat("on ", conn.awaiting, ": ", ack.status().message()));
    return;
  }
  if (!ack->empty()) {
    Log(LogLevel::kWarn, absl::StrCat("snapshot: node proxy refused ", conn.awaiting, ": ", *ack));
  }
  conn.awaiting.clear();
  if (conn.snapshot_sent && conn.todo.empty()) {
    conn.ready = true;
    conn.sent.clear();
    conns_changed_.notify_all();
    Log(LogLevel::kInfo, absl::StrCat("node proxy connected; snapshot of ", conn.snapshot_pods,
                                      " pods sent; ", LiveConns(), " proxies connected"));
  }
}

absl::Status ZdsAgent::Exchange(Conn& conn, const Request& request, int fd) {
  absl::StatusOr<std::string> bytes = EncodeRequest(request);
  if (!bytes.ok()) return bytes.status();
  const std::string what = absl::StrCat(RequestTypeName(request.type), " ", request.uid);
  absl::Status sent = SendDatagram(conn.fd.get(), *bytes, fd, stop_fd_.get(), options_.io_timeout);
  absl::StatusOr<std::string> ack =
      sent.ok() ? AckOf(RecvDatagram(conn.fd.get(), stop_fd_.get(), options_.io_timeout))
                : absl::StatusOr<std::string>(sent);
  if (!ack.ok()) {
    conn.broken = true;
    conns_changed_.notify_all();
    Wake();
    return absl::UnavailableError(
        absl::StrCat("node proxy failed on ", what, ": ", ack.status().message()));
  }
  if (!ack->empty()) {
    return absl::AbortedError(absl::StrCat("node proxy refused ", what, ": ", *ack));
  }
  return absl::OkStatus();
}

absl::Status ZdsAgent::AddWorkload(const std::string& uid, const WorkloadInfo& info,
                                   const Netns& netns) {
  if (uid.empty()) return absl::InvalidArgumentError("AddWorkload needs a uid");
  if (!netns.valid()) return absl::InvalidArgumentError("AddWorkload needs a netns");
  Request req;
  req.type = RequestType::kAdd;
  req.uid = uid;
  req.has_workload_info = true;
  req.workload_info = info;
  absl::StatusOr<std::string> check = EncodeRequest(req);  // size and UTF-8 up front
  if (!check.ok()) return check.status();
  absl::StatusOr<Netns> own = netns.Dup();
  if (!own.ok()) return own.status();
  std::lock_guard<std::mutex> lock(mu_);
  Pod& pod = pods_[uid];
  pod.info = info;
  pod.netns = std::move(*own);
  QueueForSnapshots(uid);
  for (auto it = conns_.rbegin(); it != conns_.rend(); ++it) {
    if ((*it)->broken || !(*it)->ready) continue;
    return Exchange(**it, req, pod.netns.fd());
  }
  return absl::UnavailableError(
      absl::StrCat("no node proxy connected; pod ", uid, " will be sent with the next snapshot"));
}

absl::Status ZdsAgent::KeepWorkload(const std::string& uid) {
  Request req;
  req.type = RequestType::kKeep;
  req.uid = uid;
  if (uid.empty()) return absl::InvalidArgumentError("KeepWorkload needs a uid");
  absl::StatusOr<std::string> check = EncodeRequest(req);
  if (!check.ok()) return check.status();
  std::lock_guard<std::mutex> lock(mu_);
  Pod& pod = pods_[uid];
  pod.info = WorkloadInfo();
  pod.netns = Netns();
  QueueForSnapshots(uid);
  return absl::OkStatus();
}

absl::Status ZdsAgent::DelWorkload(const std::string& uid) {
  if (uid.empty()) return absl::InvalidArgumentError("DelWorkload needs a uid");
  Request req;
  req.type = RequestType::kDel;
  req.uid = uid;
  absl::StatusOr<std::string> check = EncodeRequest(req);
  if (!check.ok()) return check.status();
  std::lock_guard<std::mutex> lock(mu_);
  pods_.erase(uid);
  QueueForSnapshots(uid);  // a proxy told about it earlier in its snapshot gets a delete
  absl::Status first;
  for (auto& c : conns_) {
    if (c->broken || !c->ready) continue;
    first.Update(Exchange(*c, req, -1));
  }
  return first;
}

size_t ZdsAgent::LiveConns() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->broken || !c->ready ? 0 : 1;
  return n;
}

void ZdsAgent::QueueForSnapshots(const std::string& uid) {
  // A snapshot in progress always has a request out (Pump stops only then),
  // so the agent thread sends this after that request's ack.
  for (auto& c : conns_) {
    if (c->broken || c->ready) continue;
    if (std::find(c->todo.begin(), c->todo.end(), uid) == c->todo.end()) c->todo.push_back(uid);
  }
}

size_t ZdsAgent::proxy_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return LiveConns();
}

absl::Status ZdsAgent::WaitForProxies(size_t n, absl::Duration timeout) const {
  const absl::Duration capped = std::min(timeout, absl::Hours(24 * 365));  // no overflow
  std::unique_lock<std::mutex> lock(mu_);
  const bool ok = conns_changed_.wait_for(lock, absl::ToChronoMilliseconds(capped),
                                          [&] { return LiveConns() >= n; });
  if (!ok) {
    return absl::DeadlineExceededError(absl::StrCat(
        "fewer than ", n, " node proxies connected after ", absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

}  // namespace ambient::netns::zds
