// The node proxy end of ZDS (ztunnel's role).
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ambient/netns/zds.h"
#include "netns/errno_status.h"
#include "netns/zds_transport.h"

namespace ambient::netns::zds {
namespace {

constexpr absl::Duration kHelloTimeout = absl::Seconds(5);

absl::Status CheckSocketPath(const std::string& path) {
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path) ||
      path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ZDS socket path must be 1-", sizeof(sockaddr_un::sun_path) - 1, " bytes without NUL"));
  }
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ConnectSeqpacket(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoStatus(errno, absl::StrCat("connect ", path));
  }
  return fd;
}

}  // namespace

ZdsProxy::ZdsProxy(ZdsProxyOptions options, WorkloadHandler* handler)
    : options_(std::move(options)), handler_(handler) {
  absl::StatusOr<UniqueFd> efd = MakeEventFd();
  if (efd.ok()) stop_fd_ = std::move(*efd);
}

ZdsProxy::~ZdsProxy() { Stop(); }

void ZdsProxy::Log(LogLevel level, absl::string_view message) {
  if (options_.log) options_.log(level, "zds", message);
}

size_t ZdsProxy::workload_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workloads_.size();
}

size_t ZdsProxy::pending_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

void ZdsProxy::RetryPending() {
  std::vector<std::string> uids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [uid, p] : pending_) uids.push_back(uid);
  }
  for (const std::string& uid : uids) {
    WorkloadInfo info;
    absl::StatusOr<Netns> ns = absl::InternalError("gone");
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = pending_.find(uid);
      if (it == pending_.end()) continue;
      info = it->second.info;
      ns = it->second.netns.Dup();
    }
    if (!ns.ok()) continue;  // out of fds: try again next time
    const NetnsId id = ns->id();
    absl::Status added = handler_->AddWorkload(uid, info, std::move(*ns));
    if (!added.ok()) {
      Log(LogLevel::kWarn, absl::StrCat("pod ", uid, " still failing: ", added.message()));
      continue;
    }
    Log(LogLevel::kInfo, absl::StrCat("pod ", uid, " started on retry"));
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(uid);
    workloads_[uid] = id;
  }
}

absl::Status ZdsProxy::Start() {
  if (thread_.joinable()) return absl::FailedPreconditionError("ZdsProxy already started");
  if (handler_ == nullptr) return absl::InvalidArgumentError("ZdsProxy needs a handler");
  absl::Status path = CheckSocketPath(options_.socket_path);
  if (!path.ok()) return path;
  if (!stop_fd_) return absl::ResourceExhaustedError("ZdsProxy could not make its eventfd");
  if (options_.initial_backoff <= absl::ZeroDuration() ||
      options_.max_backoff < options_.initial_backoff) {
    return absl::InvalidArgumentError("ZdsProxy backoff must be 0 < initial <= max");
  }
  DrainEventFd(stop_fd_.get());
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void ZdsProxy::Stop() {
  if (!thread_.joinable()) return;
  SignalEventFd(stop_fd_.get());
  thread_.join();
}

void ZdsProxy::Loop() {
  absl::Duration backoff = options_.initial_backoff;
  // Waiting for the agent is said at info level once, then every ~10 s, so a
  // wrong socket path is visible without debug logging.
  absl::Time last_said = absl::InfinitePast();
  for (;;) {
    absl::StatusOr<UniqueFd> conn = ConnectSeqpacket(options_.socket_path);
    if (conn.ok()) last_said = absl::InfinitePast();
    if (conn.ok()) {
      uint64_t before = snapshots_.load();
      absl::Status ended;
      try {
        ended = ServeConnection(std::move(*conn));
      } catch (...) {  // e.g. std::bad_alloc: never let it end the process
        connected_ = false;
        snapshot_complete_ = false;
        ended = absl::ResourceExhaustedError("exception while serving the connection");
      }
      if (absl::IsCancelled(ended)) return;
      Log(LogLevel::kWarn, absl::StrCat("connection to node agent ended: ", ended.message()));
      // Only a session that got a snapshot through resets the backoff: an
      // agent that takes the hello and then hangs up or sends garbage is
      // retried ever more slowly, not ~100 times a second.
      if (snapshots_.load() != before) backoff = options_.initial_backoff;
    } else {
      const absl::Time now = absl::Now();
      const bool say = now - last_said >= absl::Seconds(10);
      if (say) last_said = now;
      Log(say ? LogLevel::kInfo : LogLevel::kDebug,
          absl::StrCat("waiting for the node agent on ", options_.socket_path, ": ",
                       conn.status().message(), "; retrying in ", absl::FormatDuration(backoff)));
    }
    if (!SleepUnlessStopped(stop_fd_.get(), backoff)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

absl::Status ZdsProxy::ServeConnection(UniqueFd conn) {
  if (handler_ == nullptr) return absl::InvalidArgumentError("ZdsProxy needs a handler");
  seen_.clear();
  snapshot_sent_ = false;
  snapshot_complete_ = false;
  connected_ = true;
  connects_.fetch_add(1);
  absl::Status ended =
      SendDatagram(conn.get(), EncodeHello(), -1, stop_fd_.get(), kHelloTimeout);
  if (ended.ok()) {
    Log(LogLevel::kInfo, "connected to node agent");
    const bool retries = options_.retry_interval > absl::ZeroDuration();
    absl::Time next_retry = absl::InfiniteFuture();
    for (;;) {
      absl::Duration wait = absl::InfiniteDuration();
      if (retries && pending_count() > 0) {
        if (next_retry == absl::InfiniteFuture()) next_retry = absl::Now() + options_.retry_interval;
        wait = std::max(absl::ZeroDuration(), next_retry - absl::Now());
      } else {
        next_retry = absl::InfiniteFuture();
      }
      absl::StatusOr<Datagram> dg = RecvDatagram(conn.get(), stop_fd_.get(), wait);
      if (absl::IsDeadlineExceeded(dg.status())) {
        RetryPending();
        next_retry = absl::Now() + options_.retry_interval;
        continue;
      }
      if (!dg.ok()) {
        ended = dg.status();
        break;
      }
      bool fatal = false;
      std::string error = Handle(dg->bytes, std::move(dg->fds), dg->truncated || dg->control_truncated, &fatal);
      if (!error.empty()) Log(LogLevel::kWarn, absl::StrCat("refused request: ", error));
      absl::Status sent =
          SendDatagram(conn.get(), EncodeAck(error), -1, stop_fd_.get(), kHelloTimeout);
      if (!sent.ok()) {
        ended = sent;
        break;
      }
      if (fatal) {
        ended = absl::InvalidArgumentError(error);
        break;
      }
    }
  }
  const bool was_connected = connected_.exchange(false);
  snapshot_complete_ = false;
  if (was_connected) handler_->OnDisconnected(ended);
  return ended;
}

std::string ZdsProxy::Handle(absl::string_view bytes, std::vector<UniqueFd> fds, bool truncated,
                             bool* fatal) {
  // Any descriptor we do not adopt is closed when `fds` goes away.
  if (truncated) {
    *fatal = true;
    return absl::StrCat("message larger than ", kMaxMessageSize,
                        " bytes or with too much ancillary data");
  }
  absl::StatusOr<Request> req = DecodeRequest(bytes);
  if (!req.ok()) {
    *fatal = true;
    return std::string(req.status().message());
  }
  const std::string& uid = req->uid;
  if (req->type != RequestType::kAdd && !fds.empty()) {
    return absl::StrCat("protocol error: ", RequestTypeName(req->type),
                        " must not carry a file descriptor");
  }
  switch (req->type) {
    case RequestType::kAdd: {
      if (!req->has_workload_info) {
        return absl::StrCat("protocol error: add for ", uid, " without workload_info");
      }
      if (fds.size() != 1) {
        return absl::StrCat("protocol error: add for ", uid, " needs exactly one netns fd, got ",
                            fds.size());
      }
      absl::StatusOr<Netns> ns = Netns::FromFd(fds[0].release());
      if (!ns.ok()) {
        return absl::StrCat("add for ", uid, ": ", ns.status().message());
      }
      if (!snapshot_sent_) seen_.insert(uid);
      {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = workloads_.find(uid);
        if (it != workloads_.end() && it->second == ns->id()) return "";  // idempotent
      }
      bool replacing = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        replacing = workloads_.erase(uid) > 0;
        pending_.erase(uid);
      }
      if (replacing) {
        Log(LogLevel::kInfo, absl::StrCat("pod ", uid, " re-added with a new netns; replacing"));
        handler_->RemoveWorkload(uid);
      }
      const NetnsId id = ns->id();
      // Keep a second handle so a failed start can be retried later.
      absl::StatusOr<Netns> spare = options_.retry_interval > absl::ZeroDuration()
                                        ? ns->Dup()
                                        : absl::StatusOr<Netns>(Netns());
      absl::Status added = handler_->AddWorkload(uid, req->workload_info, std::move(*ns));
      std::lock_guard<std::mutex> lock(mu_);
      if (!added.ok()) {
        if (spare.ok() && spare->valid()) {
          pending_[uid] = Pending{req->workload_info, std::move(*spare)};
        }
        return absl::StrCat("add for ", uid, " failed: ", added.message());
      }
      workloads_[uid] = id;
      return "";
    }
    case RequestType::kKeep:
      if (snapshot_sent_) return absl::StrCat("protocol error: keep for ", uid, " after snapshot");
      seen_.insert(uid);
      return "";
    case RequestType::kDel: {
      seen_.erase(uid);
      bool known;
      {
        std::lock_guard<std::mutex> lock(mu_);
        known = workloads_.erase(uid) > 0;
        pending_.erase(uid);
      }
      if (known) handler_->RemoveWorkload(uid);
      return "";
    }
    case RequestType::kSnapshotSent: {
      if (snapshot_sent_) return "protocol error: second snapshot_sent on one connection";
      std::vector<std::string> stale;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& [known_uid, id] : workloads_) {
          if (!seen_.contains(known_uid)) stale.push_back(known_uid);
        }
        for (const std::string& s : stale) workloads_.erase(s);
        for (auto it = pending_.begin(); it != pending_.end();) {
          it = seen_.contains(it->first) ? std::next(it) : pending_.erase(it);
        }
      }
      std::sort(stale.begin(), stale.end());
      for (const std::string& s : stale) handler_->RemoveWorkload(s);
      snapshot_sent_ = true;
      seen_.clear();
      snapshot_complete_ = true;
      snapshots_.fetch_add(1);
      handler_->OnSnapshotComplete();
      return "";
    }
  }
  return "protocol error: unknown request";
}

}  // namespace ambient::netns::zds
