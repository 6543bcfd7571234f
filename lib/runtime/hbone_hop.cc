#include "runtime/hbone_hop.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ambient::runtime {

namespace {

// Hop is the state both legs share (held by the upstream tunnel's callbacks,
// the pending listener's canceller and the downstream relay's end hook).
struct Hop {
  InboundConnect in;
  std::string via;  // the upstream HBONE server
  enum class Phase { kWaiting, kRelaying, kOver } phase = Phase::kWaiting;
  int near_fd = -1;                    // ours until the downstream relay takes it
  PendingUpstream* pending = nullptr;  // while kWaiting
  std::function<void()> cancel_upstream;
  absl::Status upstream_error;  // why the upstream ended the relaying hop

  // CancelUpstream ends the upstream tunnel if it still runs.
  void CancelUpstream() {
    std::function<void()> cancel = std::move(cancel_upstream);
    cancel_upstream = nullptr;
    if (cancel) cancel();
  }
  void CloseNear() {
    if (near_fd >= 0) close(near_fd);
    near_fd = -1;
  }
};

// The upstream CONNECT got its 200: answer downstream and relay.
void Established(const std::shared_ptr<Hop>& hop) {
  hop->phase = Hop::Phase::kRelaying;
  PendingUpstream* p = hop->pending;
  hop->pending = nullptr;
  InboundHost* host = p != nullptr ? p->Settle() : nullptr;
  int fd = hop->near_fd;
  hop->near_fd = -1;
  // The relay's end hook holds the hop (nothing in the hop holds the relay).
  bool answered = host != nullptr && host->Reply(hop->in, fd, [h = hop](absl::Status* error) {
    if (!h->upstream_error.ok()) *error = h->upstream_error;
    absl::Status status = *error;
    h->phase = Hop::Phase::kOver;
    // A downstream reset or broken connection cancels the
    // upstream stream (a clean end reaches it as EOF).
    if (status.ok()) {
      h->cancel_upstream = nullptr;
    } else {
      h->CancelUpstream();
    }
  });
  if (host == nullptr) close(fd);
  if (!answered) {
    // The downstream went meanwhile (its close event not yet dispatched).
    hop->phase = Hop::Phase::kOver;
    hop->CancelUpstream();
  }
}

// The upstream tunnel is over.
void Ended(const std::shared_ptr<Hop>& hop, const TunnelResult& res) {
  hop->cancel_upstream = nullptr;  // the upstream is over (and this breaks the hop's cycle)
  if (hop->phase == Hop::Phase::kWaiting) {
    // Refused, unreachable, wrong identity or cancelled before the 200.
    hop->phase = Hop::Phase::kOver;
    hop->CloseNear();
    PendingUpstream* p = hop->pending;
    hop->pending = nullptr;
    InboundHost* host = p != nullptr ? p->Settle() : nullptr;
    if (host == nullptr) return;
    std::string why =
        res.http_status != 0
            ? absl::StrCat("upstream HBONE ", hop->via, " refused the CONNECT (HTTP ",
                           res.http_status, "): ", res.status.message())
            : absl::StrCat("upstream HBONE ", hop->via, " failed: ", res.status.message());
    host->UpstreamFailed(hop->in, absl::UnavailableError(why));
    return;
  }
  if (hop->phase == Hop::Phase::kRelaying && !res.status.ok()) {
    // The upstream stream was reset or its connection broke: the downstream
    // stream is reset too rather than ended as if all went well.
    hop->phase = Hop::Phase::kOver;
    hop->upstream_error = absl::UnavailableError(
        absl::StrCat("upstream HBONE ", hop->via, " ended: ", res.status.message()));
    hop->in.session->conn()->StreamReset(hop->in.id).IgnoreError();
    hop->in.session->Kick();
  }
}

}  // namespace

void StartHop(InboundHost* host, const InboundConnect& in, const Upstream& upstream) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
    absl::Status st =
        absl::ResourceExhaustedError(absl::StrCat("socketpair: ", std::strerror(errno)));
    host->UpstreamSettled(in);
    host->UpstreamFailed(in, std::move(st));
    return;
  }
  auto hop = std::make_shared<Hop>();
  hop->in = in;
  hop->via = upstream.hbone.via.ToString();
  hop->near_fd = pair[0];
  hop->pending = PendingUpstream::Attach(host, in);
  hop->pending->set_cancel([hop] {
    // The downstream stream went before the upstream answered.
    hop->pending = nullptr;
    if (hop->phase != Hop::Phase::kWaiting) return;
    hop->phase = Hop::Phase::kOver;
    hop->CloseNear();
    hop->CancelUpstream();
  });
  std::function<void()> cancel = upstream.client->TunnelWith(
      upstream.hbone, pair[1], pair[1], /*owns_fds=*/true,
      [hop](const TunnelResult&) {
        if (hop->phase == Hop::Phase::kWaiting) Established(hop);
      },
      [hop](const TunnelResult& res) { Ended(hop, res); });
  // TunnelWith may have failed at once (done already ran).
  if (hop->phase == Hop::Phase::kWaiting) hop->cancel_upstream = std::move(cancel);
}

}  // namespace ambient::runtime
