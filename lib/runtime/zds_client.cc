// The node proxy end of ZDS on an EventLoop: a ProxySession over a
// non-blocking socket.
#include "ambient/runtime/zds_client.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ambient/base/errno_status.h"

namespace ambient::runtime {
namespace {

namespace zds = netns::zds;

// At most this many datagrams are read per readiness callback, so a chatty
// agent cannot starve the loop.
constexpr int kDatagramsPerWake = 64;

absl::StatusOr<netns::UniqueFd> ConnectNow(const std::string& path) {
  netns::UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return ErrnoStatus(errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    return ErrnoStatus(err, absl::StrCat("connect ", path));
  }
  return fd;
}

zds::ProxySessionOptions SessionOptions(const zds::ZdsProxyOptions& o) {
  zds::ProxySessionOptions so;
  so.retry_interval = o.retry_interval;
  so.log = o.log;
  return so;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ZdsClient>> ZdsClient::New(EventLoop* loop,
                                                          zds::ZdsProxyOptions options,
                                                          ZdsClientHandlers handlers) {
  if (loop == nullptr) return absl::InvalidArgumentError("loop must not be NULL");
  if (!handlers.add || !handlers.remove) {
    return absl::InvalidArgumentError("ZdsClient needs add and remove handlers");
  }
  const std::string& path = options.socket_path;
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path) ||
      path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ZDS socket path must be 1-", sizeof(sockaddr_un::sun_path) - 1, " bytes without NUL"));
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError("ZdsProxy backoff must be 0 < initial <= max");
  }
  return std::unique_ptr<ZdsClient>(new ZdsClient(loop, std::move(options), std::move(handlers)));
}

ZdsClient::ZdsClient(EventLoop* loop, zds::ZdsProxyOptions options, ZdsClientHandlers handlers)
    : loop_(loop),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      session_(SessionOptions(options_)),
      watch_(loop, [this](uint32_t) { OnReadable(); }),
      reconnect_(loop, [this] { Connect(); }),
      retry_(loop,
             [this] {
               session_.Tick(loop_->Now());
               Perform();
             }),
      backoff_(options_.initial_backoff) {}

ZdsClient::~ZdsClient() {
  destroying_ = true;
  started_ = false;
  CloseSocket();
}

absl::Status ZdsClient::Start() {
  if (started_) return absl::FailedPreconditionError("ZDS already started");
  started_ = true;
  backoff_ = options_.initial_backoff;
  last_said_ = absl::InfinitePast();
  Connect();
  return absl::OkStatus();
}

void ZdsClient::Stop() {
  if (!started_) return;
  started_ = false;
  reconnect_.Disarm();
  session_.Closed(absl::CancelledError("stopped"));
  Perform();
  CloseSocket();
}

absl::Status ZdsClient::AddDone(uint64_t call, const absl::Status& result) {
  absl::Status st = session_.AddWorkloadDone(call, result, loop_->Now());
  if (st.ok()) Perform();
  return st;
}

void ZdsClient::CloseSocket() {
  watch_.Stop();
  retry_.Disarm();
  fd_.reset();
}

void ZdsClient::ScheduleReconnect() {
  reconnect_.Arm(loop_->Now() + backoff_);
  backoff_ = std::min(backoff_ * 2, options_.max_backoff);
}

void ZdsClient::Connect() {
  if (!started_) return;
  absl::StatusOr<netns::UniqueFd> fd = ConnectNow(options_.socket_path);
  if (!fd.ok()) {
    // Waiting for the agent is said at info level once, then every ~10 s,
    // so a wrong socket path is visible without debug logging.
    const absl::Time now = loop_->Now();
    const bool say = now - last_said_ >= absl::Seconds(10);
    if (say) last_said_ = now;
    if (options_.log) {
      options_.log(
          say ? LogLevel::kInfo : LogLevel::kDebug, "zds",
          absl::StrCat("waiting for the node agent on ", options_.socket_path, ": ",
                       fd.status().message(), "; retrying in ", absl::FormatDuration(backoff_)));
    }
    ScheduleReconnect();
    return;
  }
  last_said_ = absl::InfinitePast();
  fd_ = std::move(*fd);
  snapshots_at_connect_ = session_.snapshot_count();
  session_.Connected(loop_->Now());
  Perform();
}

void ZdsClient::OnReadable() {
  for (int i = 0; i < kDatagramsPerWake && fd_ && session_.wants_datagram(); ++i) {
    absl::StatusOr<zds::Datagram> dg = zds::ReceiveDatagramNow(fd_.get());
    if (absl::IsDeadlineExceeded(dg.status())) break;
    if (!dg.ok()) {
      session_.Closed(dg.status());
    } else {
      session_
          .Receive(dg->bytes, std::move(dg->fds), dg->truncated || dg->control_truncated,
                   loop_->Now())
          .IgnoreError();  // wants_datagram() was checked
    }
    Perform();
  }
}

void ZdsClient::Perform() {
  if (performing_ || destroying_) return;
  performing_ = true;
  while (std::optional<zds::ProxyAction> a = session_.NextAction()) {
    switch (a->kind) {
      case zds::ProxyAction::Kind::kSend:
        if (fd_) {
          if (absl::Status sent = zds::SendDatagramNow(fd_.get(), a->bytes); !sent.ok()) {
            session_.Closed(sent);
          }
        }
        break;
      case zds::ProxyAction::Kind::kAddWorkload:
        handlers_.add(a->call, a->uid, a->info, std::move(a->netns));
        break;
      case zds::ProxyAction::Kind::kRemoveWorkload:
        handlers_.remove(a->uid);
        break;
      case zds::ProxyAction::Kind::kSnapshotComplete:
        if (handlers_.snapshot_complete) handlers_.snapshot_complete();
        break;
      case zds::ProxyAction::Kind::kDisconnected:
        CloseSocket();
        if (handlers_.disconnected) handlers_.disconnected(a->status);
        if (started_) {
          if (options_.log) {
            options_.log(LogLevel::kWarn, "zds",
                         absl::StrCat("connection to node agent ended: ", a->status.message()));
          }
          // Only a connection that got a snapshot through resets the
          // back-off: an agent that takes the hello and then hangs up or
          // sends garbage is retried ever more slowly.
          if (session_.snapshot_count() != snapshots_at_connect_) {
            backoff_ = options_.initial_backoff;
          }
          ScheduleReconnect();
        }
        break;
    }
  }
  performing_ = false;
  if (fd_) {
    // Read only while the session wants a datagram; otherwise (an add in
    // flight) the socket is not watched at all, so a hang-up cannot spin.
    if (session_.wants_datagram() && watch_.fd() < 0) {
      if (absl::Status st = watch_.Start(fd_.get(), EPOLLIN); !st.ok()) {
        session_.Closed(st);
        Perform();
        return;
      }
    } else if (!session_.wants_datagram() && watch_.fd() >= 0) {
      watch_.Stop();
    }
    retry_.Arm(session_.next_deadline());
  }
}

}  // namespace ambient::runtime
