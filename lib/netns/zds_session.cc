// The node proxy end of ZDS as a sans-IO state machine.
#include "ambient/netns/zds_session.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace ambient::netns::zds {

ProxySession::ProxySession(ProxySessionOptions options) : options_(std::move(options)) {}

void ProxySession::Log(LogLevel level, absl::string_view message) {
  if (options_.log) options_.log(level, "zds", message);
}

void ProxySession::Ack(absl::string_view error) {
  if (!error.empty()) Log(LogLevel::kWarn, absl::StrCat("refused request: ", error));
  ProxyAction a;
  a.kind = ProxyAction::Kind::kSend;
  a.bytes = EncodeAck(error);
  actions_.push_back(std::move(a));
}

void ProxySession::Disconnect(absl::Status why) {
  connected_ = false;
  snapshot_complete_ = false;
  retry_round_.clear();
  in_round_ = false;
  retry_deadline_ = absl::InfiniteFuture();
  ProxyAction a;
  a.kind = ProxyAction::Kind::kDisconnected;
  a.status = std::move(why);
  actions_.push_back(std::move(a));
}

void ProxySession::Connected(absl::Time now) {
  if (connected_) Disconnect(absl::AbortedError("replaced by a new connection"));
  connected_ = true;
  snapshot_complete_ = false;
  snapshot_sent_ = false;
  seen_.clear();
  ++connects_;
  ProxyAction hello;
  hello.kind = ProxyAction::Kind::kSend;
  hello.bytes = EncodeHello();
  actions_.push_back(std::move(hello));
  Log(LogLevel::kInfo, "connected to node agent");
  UpdateDeadline(now);
}

void ProxySession::Closed(const absl::Status& why) {
  if (!connected_) return;
  Disconnect(why);
}

std::optional<ProxyAction> ProxySession::NextAction() {
  if (actions_.empty()) return std::nullopt;
  ProxyAction a = std::move(actions_.front());
  actions_.pop_front();
  return a;
}

bool ProxySession::wants_datagram() const { return connected_ && !in_flight_ && !in_round_; }

absl::Time ProxySession::next_deadline() const {
  if (!connected_ || in_flight_ || in_round_) return absl::InfiniteFuture();
  return retry_deadline_;
}

void ProxySession::UpdateDeadline(absl::Time now) {
  const bool retries = options_.retry_interval > absl::ZeroDuration();
  if (!connected_ || !retries || pending_.empty()) {
    retry_deadline_ = absl::InfiniteFuture();
  } else if (retry_deadline_ == absl::InfiniteFuture()) {
    retry_deadline_ = now + options_.retry_interval;
  }
}

absl::Status ProxySession::Receive(absl::string_view bytes, std::vector<UniqueFd> fds,
                                   bool truncated, absl::Time now) {
  if (!wants_datagram()) {
    return absl::FailedPreconditionError(connected_
                                             ? "ZDS session is waiting for an AddWorkload result"
                                             : "ZDS session is not connected");
  }
  Handle(bytes, std::move(fds), truncated);
  UpdateDeadline(now);
  return absl::OkStatus();
}

bool ProxySession::Handle(absl::string_view bytes, std::vector<UniqueFd> fds, bool truncated) {
  // Any descriptor not adopted below is closed when `fds` goes away.
  if (truncated) {
    std::string error = absl::StrCat("message larger than ", kMaxMessageSize,
                                     " bytes or with too much ancillary data");
    Ack(error);
    Disconnect(absl::InvalidArgumentError(error));
    return false;
  }
  absl::StatusOr<Request> req = DecodeRequest(bytes);
  if (!req.ok()) {
    std::string error(req.status().message());
    Ack(error);
    Disconnect(absl::InvalidArgumentError(error));
    return false;
  }
  const std::string& uid = req->uid;
  if (req->type != RequestType::kAdd && !fds.empty()) {
    Ack(absl::StrCat("protocol error: ", RequestTypeName(req->type),
                     " must not carry a file descriptor"));
    return false;
  }
  switch (req->type) {
    case RequestType::kAdd: {
      if (!req->has_workload_info) {
        Ack(absl::StrCat("protocol error: add for ", uid, " without workload_info"));
        return false;
      }
      if (fds.size() != 1) {
        Ack(absl::StrCat("protocol error: add for ", uid, " needs exactly one netns fd, got ",
                         fds.size()));
        return false;
      }
      absl::StatusOr<Netns> ns = Netns::FromFd(fds[0].release());
      if (!ns.ok()) {
        Ack(absl::StrCat("add for ", uid, ": ", ns.status().message()));
        return false;
      }
      if (!snapshot_sent_) seen_.insert(uid);
      if (auto it = workloads_.find(uid); it != workloads_.end() && it->second == ns->id()) {
        Ack("");  // idempotent
        return false;
      }
      const bool replacing = workloads_.erase(uid) > 0;
      pending_.erase(uid);
      if (replacing) {
        Log(LogLevel::kInfo, absl::StrCat("pod ", uid, " re-added with a new netns; replacing"));
        ProxyAction remove;
        remove.kind = ProxyAction::Kind::kRemoveWorkload;
        remove.uid = uid;
        actions_.push_back(std::move(remove));
      }
      InFlight f;
      f.call = next_call_++;
      f.uid = uid;
      f.id = ns->id();
      f.info = req->workload_info;
      f.connection = connects_;
      // Keep a second handle so a failed start can be retried later.
      if (options_.retry_interval > absl::ZeroDuration()) {
        absl::StatusOr<Netns> spare = ns->Dup();
        if (spare.ok()) f.spare = std::move(*spare);
      }
      ProxyAction add;
      add.kind = ProxyAction::Kind::kAddWorkload;
      add.call = f.call;
      add.uid = uid;
      add.info = req->workload_info;
      add.netns = std::move(*ns);
      actions_.push_back(std::move(add));
      in_flight_ = std::move(f);
      return true;
    }
    case RequestType::kKeep:
      if (snapshot_sent_) {
        Ack(absl::StrCat("protocol error: keep for ", uid, " after snapshot"));
        return false;
      }
      seen_.insert(uid);
      Ack("");
      return false;
    case RequestType::kDel: {
      seen_.erase(uid);
      const bool known = workloads_.erase(uid) > 0;
      pending_.erase(uid);
      if (known) {
        ProxyAction remove;
        remove.kind = ProxyAction::Kind::kRemoveWorkload;
        remove.uid = uid;
        actions_.push_back(std::move(remove));
      }
      Ack("");
      return false;
    }
    case RequestType::kSnapshotSent: {
      if (snapshot_sent_) {
        Ack("protocol error: second snapshot_sent on one connection");
        return false;
      }
      std::vector<std::string> stale;
      for (const auto& [known_uid, id] : workloads_) {
        if (!seen_.contains(known_uid)) stale.push_back(known_uid);
      }
      for (const std::string& s : stale) workloads_.erase(s);
      for (auto it = pending_.begin(); it != pending_.end();) {
        it = seen_.contains(it->first) ? std::next(it) : pending_.erase(it);
      }
      std::sort(stale.begin(), stale.end());
      for (std::string& s : stale) {
        ProxyAction remove;
        remove.kind = ProxyAction::Kind::kRemoveWorkload;
        remove.uid = std::move(s);
        actions_.push_back(std::move(remove));
      }
      snapshot_sent_ = true;
      seen_.clear();
      snapshot_complete_ = true;
      ++snapshots_;
      ProxyAction done;
      done.kind = ProxyAction::Kind::kSnapshotComplete;
      actions_.push_back(std::move(done));
      Ack("");
      return false;
    }
  }
  Ack("protocol error: unknown request");
  return false;
}

absl::Status ProxySession::AddWorkloadDone(uint64_t call, const absl::Status& result,
                                           absl::Time now) {
  if (!in_flight_ || in_flight_->call != call) {
    return absl::NotFoundError(absl::StrCat("no AddWorkload call ", call, " is outstanding"));
  }
  InFlight f = std::move(*in_flight_);
  in_flight_.reset();
  if (f.retry) {
    if (result.ok()) {
      Log(LogLevel::kInfo, absl::StrCat("pod ", f.uid, " started on retry"));
      pending_.erase(f.uid);
      workloads_[f.uid] = f.id;
    } else {
      Log(LogLevel::kWarn, absl::StrCat("pod ", f.uid, " still failing: ", result.message()));
    }
    NextRetry(now);
    return absl::OkStatus();
  }
  std::string error;
  if (result.ok()) {
    workloads_[f.uid] = f.id;
  } else {
    if (f.spare.valid()) pending_[f.uid] = Pending{f.info, std::move(f.spare)};
    error = absl::StrCat("add for ", f.uid, " failed: ", result.message());
  }
  if (connected_ && f.connection == connects_) {
    Ack(error);
  } else if (!error.empty()) {
    Log(LogLevel::kWarn, absl::StrCat("after the connection ended: ", error));
  }
  UpdateDeadline(now);
  return absl::OkStatus();
}

void ProxySession::Tick(absl::Time now) {
  if (!connected_ || in_flight_ || in_round_ || now < retry_deadline_) return;
  retry_round_.clear();
  for (const auto& [uid, p] : pending_) retry_round_.push_back(uid);
  in_round_ = true;
  NextRetry(now);
}

void ProxySession::NextRetry(absl::Time now) {
  while (connected_ && !retry_round_.empty()) {
    std::string uid = std::move(retry_round_.front());
    retry_round_.pop_front();
    auto it = pending_.find(uid);
    if (it == pending_.end()) continue;
    absl::StatusOr<Netns> ns = it->second.netns.Dup();
    if (!ns.ok()) continue;  // out of fds: try again next round
    InFlight f;
    f.call = next_call_++;
    f.uid = uid;
    f.id = ns->id();
    f.retry = true;
    f.connection = connects_;
    ProxyAction add;
    add.kind = ProxyAction::Kind::kAddWorkload;
    add.call = f.call;
    add.uid = uid;
    add.info = it->second.info;
    add.netns = std::move(*ns);
    actions_.push_back(std::move(add));
    in_flight_ = std::move(f);
    return;
  }
  // The round is over (or the connection ended): the next one is a whole
  // interval away.
  retry_round_.clear();
  in_round_ = false;
  retry_deadline_ = absl::InfiniteFuture();
  UpdateDeadline(now);
}

}  // namespace ambient::netns::zds
