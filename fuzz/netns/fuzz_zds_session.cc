// Fuzzes the proxy end's ZDS state machine (ProxySession) directly, with no
// socket: the input is a script of events (datagrams with 0-2 descriptors of
// various kinds and a truncation flag, handler results that succeed or fail,
// clock ticks, hang-ups and reconnections). Checks: no crash; the session
// asks for at most one AddWorkload at a time and never reads while one is
// outstanding; readiness matches its parts; no descriptor leaks.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ambient/netns/zds_session.h"

namespace nn = ambient::netns;
namespace zds = ambient::netns::zds;

namespace {

int OpenFdCount() {
  DIR* dir = opendir("/proc/self/fd");
  int n = 0;
  while (struct dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n - 1;
}

nn::UniqueFd Dup(int fd) { return nn::UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  static const int uts_fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  static const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int before = OpenFdCount();
  {
    zds::ProxySessionOptions o;
    o.retry_interval = absl::Seconds(1);
    zds::ProxySession s(o);
    absl::Time now = absl::FromUnixSeconds(1);
    std::optional<uint64_t> outstanding;  // the AddWorkload call we owe a result
    auto drain = [&] {
      while (std::optional<zds::ProxyAction> a = s.NextAction()) {
        if (a->kind == zds::ProxyAction::Kind::kAddWorkload) {
          if (outstanding || !a->netns.valid()) __builtin_trap();  // one at a time
          outstanding = a->call;
        }
        if (a->kind == zds::ProxyAction::Kind::kSend && a->bytes.size() > zds::kMaxMessageSize) {
          __builtin_trap();
        }
      }
      if (outstanding && s.wants_datagram()) __builtin_trap();  // reads while adding
      if (s.ready() != (s.connected() && s.snapshot_complete() && s.pending_count() == 0)) {
        __builtin_trap();
      }
    };
    s.Connected(now);
    drain();
    size_t i = 0;
    while (i + 3 <= size) {
      const uint8_t ctl = data[i];
      size_t len = ((static_cast<size_t>(data[i + 1]) << 8) | data[i + 2]) % 1100;
      i += 3;
      switch (ctl >> 5) {
        case 0:
        case 1:
        case 2: {  // a datagram
          if (len > size - i) len = size - i;
          if (len > zds::kMaxMessageSize) len = zds::kMaxMessageSize;
          std::string bytes(reinterpret_cast<const char*>(data + i), len);
          i += len;
          std::vector<nn::UniqueFd> fds;
          switch (ctl & 7) {
            case 1:
              fds.push_back(Dup(netns_fd));
              break;
            case 2:
              fds.push_back(Dup(uts_fd));
              break;
            case 3:
              fds.push_back(Dup(null_fd));
              break;
            case 4:
              fds.push_back(Dup(netns_fd));
              fds.push_back(Dup(netns_fd));
              break;
            default:
              break;
          }
          const bool wanted = s.wants_datagram();
          absl::Status st = s.Receive(bytes, std::move(fds), (ctl & 8) != 0, now);
          if (st.ok() != wanted) __builtin_trap();
          break;
        }
        case 3:
        case 4:  // the outstanding add completes (or a bogus call id is given)
          if (outstanding && (ctl & 1) == 0) {
            absl::Status r = (ctl & 2) ? absl::UnavailableError("no") : absl::OkStatus();
            if (!s.AddWorkloadDone(*outstanding, r, now).ok()) __builtin_trap();
            outstanding.reset();
          } else if (s.AddWorkloadDone(len + 100000, absl::OkStatus(), now).ok()) {
            __builtin_trap();
          }
          break;
        case 5:  // time passes
          now += absl::Milliseconds(len * 10);
          s.Tick(now);
          break;
        case 6:
          s.Closed(absl::UnavailableError("peer closed"));
          break;
        case 7:
          s.Connected(now);
          break;
      }
      drain();
    }
    if (outstanding) {
      if (!s.AddWorkloadDone(*outstanding, absl::OkStatus(), now).ok()) __builtin_trap();
      outstanding.reset();
    }
    drain();
  }
  if (OpenFdCount() != before) __builtin_trap();  // a descriptor leaked
  return 0;
}
