#include "runtime/hbone_inbound.h"

#include <utility>

namespace ambient::runtime {

PendingUpstream* PendingUpstream::Attach(InboundHost* host, InboundConnect in) {
  auto* p = new PendingUpstream(host, std::move(in));
  host->Track(p);
  p->in_.session->Attach(p->in_.id, p);
  return p;
}

void PendingUpstream::Done() {
  done_ = true;
  cancel_ = nullptr;
  if (host_ != nullptr) host_->Forget(this);
  in_.session->loop()->DeleteSoon(this);
}

InboundHost* PendingUpstream::Settle() {
  if (done_) return nullptr;
  in_.session->Detach(in_.id);
  InboundHost* host = host_;
  Done();
  if (host != nullptr) host->UpstreamSettled(in_);
  return host;
}

void PendingUpstream::OnClosed(const absl::Status& status) {
  if (done_) return;
  // The stream went (reset by the client, or its connection) before the
  // upstream answered: report it, then give up the upstream.
  std::function<void()> cancel = std::move(cancel_);
  InboundHost* host = host_;
  Done();
  if (host != nullptr) host->UpstreamCancelled(in_, status);
  if (cancel) cancel();
}

}  // namespace ambient::runtime
