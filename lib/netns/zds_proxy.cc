// The node proxy end of ZDS (ztunnel's role).
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "ambient/netns/zds.h"
#include "ambient/netns/zds_session.h"
#include "ambient/base/errno_status.h"
#include "netns/zds_transport.h"

namespace ambient::netns::zds {
namespace {

constexpr absl::Duration kHelloTimeout = absl::Seconds(5);

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
  ProxySessionOptions so;
  so.retry_interval = options_.retry_interval;
  so.log = options_.log;
  session_ = std::make_unique<ProxySession>(std::move(so));
}

ZdsProxy::~ZdsProxy() { Stop(); }

void ZdsProxy::Log(LogLevel level, absl::string_view message) {
  if (options_.log) options_.log(level, "zds", message);
}

bool ZdsProxy::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->connected();
}

bool ZdsProxy::snapshot_complete() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->snapshot_complete();
}

bool ZdsProxy::ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->ready();
}

size_t ZdsProxy::workload_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->workload_count();
}

size_t ZdsProxy::pending_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->pending_count();
}

uint64_t ZdsProxy::connect_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_->connect_count();
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
      uint64_t before;
      {
        std::lock_guard<std::mutex> lock(mu_);
        before = session_->snapshot_count();
      }
      absl::Status ended;
      try {
        ended = ServeConnection(std::move(*conn));
      } catch (...) {  // e.g. std::bad_alloc: never let it end the process
        std::lock_guard<std::mutex> lock(mu_);
        session_->Closed(absl::ResourceExhaustedError("exception while serving the connection"));
        while (session_->NextAction()) {
        }
        ended = absl::ResourceExhaustedError("exception while serving the connection");
      }
      if (absl::IsCancelled(ended)) return;
      Log(LogLevel::kWarn, absl::StrCat("connection to node agent ended: ", ended.message()));
      // Only a session that got a snapshot through resets the backoff: an
      // agent that takes the hello and then hangs up or sends garbage is
      // retried ever more slowly, not ~100 times a second.
      uint64_t after;
      {
        std::lock_guard<std::mutex> lock(mu_);
        after = session_->snapshot_count();
      }
      if (after != before) backoff = options_.initial_backoff;
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

bool ZdsProxy::Perform(int conn, absl::Status* ended) {
  for (;;) {
    std::optional<ProxyAction> action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      action = session_->NextAction();
    }
    if (!action) return false;
    switch (action->kind) {
      case ProxyAction::Kind::kSend: {
        absl::Status sent = SendDatagram(conn, action->bytes, -1, stop_fd_.get(), kHelloTimeout);
        if (!sent.ok()) {
          std::lock_guard<std::mutex> lock(mu_);
          session_->Closed(sent);
        }
        break;
      }
      case ProxyAction::Kind::kAddWorkload: {
        absl::Status added =
            handler_->AddWorkload(action->uid, action->info, std::move(action->netns));
        std::lock_guard<std::mutex> lock(mu_);
        session_->AddWorkloadDone(action->call, added, absl::Now()).IgnoreError();
        break;
      }
      case ProxyAction::Kind::kRemoveWorkload:
        handler_->RemoveWorkload(action->uid);
        break;
      case ProxyAction::Kind::kSnapshotComplete:
        handler_->OnSnapshotComplete();
        break;
      case ProxyAction::Kind::kDisconnected:
        handler_->OnDisconnected(action->status);
        *ended = action->status;
        return true;
    }
  }
}

absl::Status ZdsProxy::ServeConnection(UniqueFd conn) {
  if (handler_ == nullptr) return absl::InvalidArgumentError("ZdsProxy needs a handler");
  {
    std::lock_guard<std::mutex> lock(mu_);
    session_->Connected(absl::Now());
  }
  absl::Status ended;
  if (Perform(conn.get(), &ended)) return ended;
  for (;;) {
    absl::Time deadline;
    {
      std::lock_guard<std::mutex> lock(mu_);
      deadline = session_->next_deadline();
    }
    const absl::Duration wait = deadline == absl::InfiniteFuture()
                                    ? absl::InfiniteDuration()
                                    : std::max(absl::ZeroDuration(), deadline - absl::Now());
    absl::StatusOr<Datagram> dg = RecvDatagram(conn.get(), stop_fd_.get(), wait);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (absl::IsDeadlineExceeded(dg.status())) {
        session_->Tick(absl::Now());
      } else if (!dg.ok()) {
        session_->Closed(dg.status());
      } else {
        // The handler runs synchronously here, so the session always wants
        // the next datagram.
        session_
            ->Receive(dg->bytes, std::move(dg->fds), dg->truncated || dg->control_truncated,
                      absl::Now())
            .IgnoreError();
      }
    }
    if (Perform(conn.get(), &ended)) return ended;
  }
}

}  // namespace ambient::netns::zds
