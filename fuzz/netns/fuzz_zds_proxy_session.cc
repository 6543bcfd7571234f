// Fuzzes a whole node proxy session: the input is a sequence of datagrams
// (each with 0, 1 or 2 descriptors of various kinds) sent over a real
// SOCK_SEQPACKET socketpair to ZdsProxy::ServeConnection. Checks: no crash,
// every datagram answered until the proxy hangs up, and no descriptor leaked.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ambient/netns/zds.h"
#include "netns/zds_transport.h"

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

class KeepAll : public zds::WorkloadHandler {
 public:
  absl::Status AddWorkload(const std::string& uid, const zds::WorkloadInfo&,
                           nn::Netns netns) override {
    if (uid == "fail") return absl::UnavailableError("refused");
    pods_[uid] = std::move(netns);
    return absl::OkStatus();
  }
  void RemoveWorkload(const std::string& uid) override { pods_.erase(uid); }

 private:
  std::map<std::string, nn::Netns> pods_;
};

bool Send(int sock, const std::string& bytes, const std::vector<int>& fds) {
  iovec iov{const_cast<char*>(bytes.data()), bytes.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 2)];
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  static const int uts_fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
  static const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int before = OpenFdCount();
  {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return 0;
    nn::UniqueFd agent(sv[0]);
    KeepAll handler;
    zds::ZdsProxy proxy(zds::ZdsProxyOptions{}, &handler);
    std::thread serve([&proxy, fd = sv[1]] { (void)proxy.ServeConnection(nn::UniqueFd(fd)); });
    if (zds::RecvDatagram(agent.get(), -1, absl::Seconds(5)).ok()) {  // hello
      size_t i = 0;
      while (i + 3 <= size) {
        const uint8_t ctl = data[i];
        size_t len = ((static_cast<size_t>(data[i + 1]) << 8) | data[i + 2]) % 1200;
        i += 3;
        if (len > size - i) len = size - i;
        std::string bytes(reinterpret_cast<const char*>(data + i), len);
        i += len;
        std::vector<int> fds;
        switch (ctl & 7) {
          case 1: fds = {netns_fd}; break;
          case 2: fds = {uts_fd}; break;
          case 3: fds = {null_fd}; break;
          case 4: fds = {netns_fd, netns_fd}; break;
          default: break;
        }
        if (!Send(agent.get(), bytes, fds)) break;
        if (!zds::RecvDatagram(agent.get(), -1, absl::Seconds(5)).ok()) break;  // ack or hangup
      }
    }
    agent.reset();
    serve.join();
  }
  if (OpenFdCount() != before) __builtin_trap();  // a descriptor leaked
  return 0;
}
