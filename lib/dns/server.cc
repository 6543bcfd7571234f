// A pod's DNS proxy on the event loop; see ambient/dns/server.h.
#include "ambient/dns/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ambient/authz/ip.h"

namespace ambient::dns {

using ::ambient::SocketAddress;
using runtime::EventLoop;
using runtime::IoWatch;
using runtime::Timer;

void DnsMetrics::UpstreamLatency(Transport t, absl::Duration d) {
  double s = absl::ToDoubleSeconds(d);
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (s <= kBuckets[i]) buckets_[Index(t)][i]++;
  }
  latency_count_[Index(t)]++;
  latency_sum_us_[Index(t)] += static_cast<uint64_t>(absl::ToInt64Microseconds(d));
}

std::string DnsMetrics::Prometheus() const {
  std::string out;
  const char* protos[2] = {"udp", "tcp"};
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>* v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n");
    for (int i = 0; i < 2; ++i) {
      absl::StrAppend(&out, name, "{request_protocol=\"", protos[i], "\"} ", v[i].load(), "\n");
    }
  };
  counter("istio_dns_requests_total", "DNS queries received from pods.", requests_);
  counter("istio_dns_upstream_requests_total", "DNS queries sent to upstream resolvers.",
          upstream_requests_);
  counter("istio_dns_upstream_failures_total", "Upstream DNS queries that failed or timed out.",
          upstream_failures_);
  const char* h = "istio_dns_upstream_request_duration_seconds";
  absl::StrAppend(&out, "# HELP ", h, " Upstream DNS answer latency.\n# TYPE ", h, " histogram\n");
  for (int i = 0; i < 2; ++i) {
    for (size_t b = 0; b < kBuckets.size(); ++b) {
      absl::StrAppend(&out, h, "_bucket{request_protocol=\"", protos[i], "\",le=\"", kBuckets[b],
                      "\"} ", buckets_[i][b].load(), "\n");
    }
    absl::StrAppend(&out, h, "_bucket{request_protocol=\"", protos[i], "\",le=\"+Inf\"} ",
                    latency_count_[i].load(), "\n");
    absl::StrAppend(&out, h, "_sum{request_protocol=\"", protos[i], "\"} ",
                    static_cast<double>(latency_sum_us_[i].load()) / 1e6, "\n");
    absl::StrAppend(&out, h, "_count{request_protocol=\"", protos[i], "\"} ",
                    latency_count_[i].load(), "\n");
  }
  auto single = [&](const char* name, const char* help, uint64_t v) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " counter\n", name, " ", v,
                    "\n");
  };
  single("ambient_dns_answered_total", "DNS queries for mesh names answered by the proxy.",
         answered_.load());
  single("ambient_dns_malformed_total", "DNS queries answered FORMERR/NOTIMP or dropped.",
         malformed_.load());
  single("ambient_dns_limited_total",
         "DNS queries or TCP connections refused by the per-pod limits.", limited_.load());
  return out;
}

absl::StatusOr<ResolvConf> ParseResolvConf(absl::string_view text) {
  ResolvConf rc;
  bool have_search = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t c = line.find_first_of("#;");
    if (c != absl::string_view::npos) line = line.substr(0, c);
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (f.empty()) continue;
    if (f[0] == "nameserver" && f.size() >= 2) {
      auto ip = ambient::IpAddress::Parse(f[1]);
      if (!ip.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("resolv.conf: nameserver \"", f[1], "\" is not a numeric IP"));
      }
      rc.nameservers.push_back(SocketAddress(*ip, 53));
    } else if (f[0] == "search") {
      rc.search.clear();
      for (size_t i = 1; i < f.size(); ++i) rc.search.emplace_back(f[i]);
      have_search = true;
    } else if (f[0] == "domain" && f.size() >= 2 && !have_search) {
      rc.search = {std::string(f[1])};
    }
  }
  return rc;
}

absl::StatusOr<ResolvConf> ReadResolvConf(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot read: ", std::strerror(errno)));
  }
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0 && text.size() < (1u << 20)) {
    text.append(buf, n);
  }
  std::fclose(f);
  absl::StatusOr<ResolvConf> rc = ParseResolvConf(text);
  if (!rc.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", rc.status().message()));
  return rc;
}

absl::StatusOr<std::vector<SocketAddress>> ParseUpstreams(absl::string_view list) {
  std::vector<SocketAddress> out;
  for (absl::string_view entry : absl::StrSplit(list, ',')) {
    entry = absl::StripAsciiWhitespace(entry);
    absl::StatusOr<SocketAddress> addr = ambient::SocketAddress::Parse(entry);
    if (!addr.ok()) {
      // A bare IP: port 53.
      auto ip = ambient::IpAddress::Parse(entry);
      if (ip.ok()) addr = SocketAddress(*ip, 53);
    }
    if (!addr.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("DNS upstream \"", entry, "\" is not ip:port, [v6]:port or an IP"));
    }
    out.push_back(*addr);
  }
  if (out.empty()) return absl::InvalidArgumentError("no DNS upstream given");
  return out;
}

absl::StatusOr<std::vector<SocketAddress>> UpstreamsOrResolvConf(absl::string_view list,
                                                                 const std::string& resolv_conf) {
  if (!list.empty()) return ParseUpstreams(list);
  absl::StatusOr<ResolvConf> rc = ReadResolvConf(resolv_conf);
  if (!rc.ok()) return rc.status();
  if (rc->nameservers.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(resolv_conf, " lists no nameserver: name the DNS upstreams explicitly"));
  }
  return rc->nameservers;
}

namespace {

constexpr size_t kMaxMessage = 65535;
constexpr size_t kMaxTcpOut = 256 * 1024;  // stop reading a client that does not read
constexpr int kUdpBatch = 64;

uint16_t MessageId(absl::string_view m) {
  return static_cast<uint16_t>((static_cast<uint8_t>(m[0]) << 8) | static_cast<uint8_t>(m[1]));
}

std::string Framed(absl::string_view m) {
  std::string out;
  out.push_back(static_cast<char>(m.size() >> 8));
  out.push_back(static_cast<char>(m.size() & 0xff));
  out.append(m.data(), m.size());
  return out;
}

struct TcpClient {
  uint64_t id = 0;
  int fd = -1;
  std::unique_ptr<IoWatch> watch;
  std::unique_ptr<Timer> idle;
  std::string in;
  std::string out;
  size_t pending = 0;  // forwarded queries not answered yet
  bool read_closed = false;
  bool closed = false;
  ~TcpClient() {
    watch.reset();
    idle.reset();
    if (fd >= 0) close(fd);
  }
};

struct Forward {
  uint64_t id = 0;
  Transport transport = Transport::kUdp;
  std::string query;
  std::string qname;
  SocketAddress client;     // UDP: where the answer goes
  uint64_t tcp_client = 0;  // TCP: the connection the answer goes to
  size_t upstream = 0;      // index of the resolver being tried
  absl::Time started;
  int fd = -1;
  std::unique_ptr<IoWatch> watch;
  std::unique_ptr<Timer> timer;
  bool connecting = false;
  std::string out;  // TCP: framed query still to write
  std::string in;   // TCP: answer read so far
  ~Forward() {
    watch.reset();
    timer.reset();
    if (fd >= 0) close(fd);
  }
};

class ServerImpl : public DnsServer {
 public:
  ServerImpl(EventLoop* loop, int udp_fd, int tcp_fd, DnsServerOptions o)
      : loop_(loop), udp_fd_(udp_fd), tcp_fd_(tcp_fd), o_(std::move(o)) {}

  ~ServerImpl() override {
    // The sockets close now (clients see EOF, the ports vanish); the watch
    // objects may still have events in the loop's current batch, so they
    // are freed at the end of the iteration (or by ~EventLoop).
    struct Remains {
      std::map<uint64_t, std::unique_ptr<Forward>> forwards;
      std::map<uint64_t, std::unique_ptr<TcpClient>> clients;
      std::unique_ptr<IoWatch> udp, tcp;
    };
    auto r = std::make_shared<Remains>();
    for (auto& [id, f] : forwards_) {
      if (f->watch) f->watch->Stop();
      if (f->timer) f->timer->Disarm();
      if (f->fd >= 0) close(f->fd);
      f->fd = -1;
    }
    for (auto& [id, c] : clients_) {
      c->watch->Stop();
      c->idle->Disarm();
      close(c->fd);
      c->fd = -1;
    }
    if (udp_watch_) udp_watch_->Stop();
    if (tcp_watch_) tcp_watch_->Stop();
    if (udp_fd_ >= 0) close(udp_fd_);
    if (tcp_fd_ >= 0) close(tcp_fd_);
    r->forwards = std::move(forwards_);
    r->clients = std::move(clients_);
    r->udp = std::move(udp_watch_);
    r->tcp = std::move(tcp_watch_);
    loop_->Defer([r] {});
  }

  absl::Status Init() {
    if (udp_fd_ >= 0) {
      if (auto s = runtime::SetNonBlocking(udp_fd_); !s.ok()) return s;
      udp_watch_ = std::make_unique<IoWatch>(loop_, [this](uint32_t) { OnUdp(); });
      if (auto s = udp_watch_->Start(udp_fd_, EPOLLIN); !s.ok()) return s;
    }
    if (tcp_fd_ >= 0) {
      if (auto s = runtime::SetNonBlocking(tcp_fd_); !s.ok()) return s;
      tcp_watch_ = std::make_unique<IoWatch>(loop_, [this](uint32_t) { OnAccept(); });
      if (auto s = tcp_watch_->Start(tcp_fd_, EPOLLIN); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  size_t in_flight() const override { return forwards_.size(); }
  size_t tcp_connections() const override { return clients_.size(); }

 private:
  DnsMetrics& metrics() { return o_.metrics != nullptr ? *o_.metrics : own_metrics_; }

  void Log(LogLevel level, const std::string& msg) {
    if (o_.log) o_.log(level, "dns", msg);
  }

  // Retire destroys `p` at the end of the loop iteration: its callbacks may
  // be running now.
  template <typename T>
  void Retire(std::unique_ptr<T> p) {
    if (p == nullptr) return;
    std::shared_ptr<T> sp(std::move(p));
    loop_->Defer([sp] {});
  }

  void OnUdp() {
    uint8_t* buf = loop_->Scratch().data();
    for (int i = 0; i < kUdpBatch; ++i) {
      SocketAddress from;
      socklen_t from_len = SocketAddress::capacity();
      ssize_t n = recvfrom(udp_fd_, buf, kMaxMessage, 0, from.mutable_sockaddr(), &from_len);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          Log(LogLevel::kWarn, absl::StrCat("udp receive: ", strerror(errno)));
        }
        return;
      }
      std::string q(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
      Handle(q, Transport::kUdp, from, 0);
    }
  }

  void Handle(const std::string& q, Transport t, const SocketAddress& from, uint64_t tcp_id) {
    metrics().Request(t);
    AnswerResult r = Answer(q, *o_.directory, o_.pod, t);
    switch (r.action) {
      case AnswerResult::Action::kDrop:
        metrics().Malformed();
        Log(LogLevel::kInfo, absl::StrCat("dropped a malformed query of ", q.size(), " bytes"));
        return;
      case AnswerResult::Action::kReply:
        if (r.rcode != 0) {
          metrics().Malformed();
          Log(LogLevel::kInfo, absl::StrCat("malformed query of ", q.size(),
                                            " bytes answered with rcode ", r.rcode));
        } else {
          metrics().Answered();
        }
        Send(t, from, tcp_id, r.reply);
        return;
      case AnswerResult::Action::kForward:
        break;
    }
    if (forwards_.size() >= o_.max_in_flight) {
      metrics().Limited();
      Log(LogLevel::kWarn, absl::StrCat("too many queries in flight (", o_.max_in_flight,
                                        "): SERVFAIL for ", r.qname));
      Send(t, from, tcp_id, ServfailFor(q));
      return;
    }
    auto f = std::make_unique<Forward>();
    f->id = next_id_++;
    f->transport = t;
    f->query = q;
    f->qname = r.qname;
    f->client = from;
    f->tcp_client = tcp_id;
    if (tcp_id != 0) {
      auto it = clients_.find(tcp_id);
      if (it != clients_.end()) it->second->pending++;
    }
    Forward* fp = f.get();
    forwards_[f->id] = std::move(f);
    Attempt(fp);
  }

  void Send(Transport t, const SocketAddress& to, uint64_t tcp_id, absl::string_view m) {
    if (m.empty()) return;
    if (t == Transport::kUdp) {
      if (sendto(udp_fd_, m.data(), m.size(), MSG_DONTWAIT, to.sockaddr_ptr(), to.size()) < 0) {
        Log(LogLevel::kWarn, absl::StrCat("udp send to ", to.ToString(), ": ", strerror(errno)));
      }
      return;
    }
    auto it = clients_.find(tcp_id);
    if (it == clients_.end()) return;  // the client left
    it->second->out += Framed(m);
    Flush(it->second.get());
  }

  // Attempt sends the query to resolver f->upstream, or fails it when
  // every resolver was tried.
  void Attempt(Forward* f) {
    // The previous attempt's socket and callbacks (maybe running now).
    if (f->watch) f->watch->Stop();
    if (f->timer) f->timer->Disarm();
    Retire(std::move(f->watch));
    Retire(std::move(f->timer));
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    f->in.clear();
    f->out.clear();
    while (f->upstream < o_.upstreams.size()) {
      absl::Status s = Open(f);
      if (s.ok()) return;
      metrics().UpstreamFailure(f->transport);
      Log(LogLevel::kWarn, absl::StrCat("upstream ", o_.upstreams[f->upstream].ToString(), " for ",
                                        f->qname, ": ", s.message()));
      if (f->fd >= 0) close(f->fd);
      f->fd = -1;
      f->upstream++;
    }
    Log(LogLevel::kWarn, absl::StrCat("every upstream failed for ", f->qname, ": SERVFAIL"));
    Complete(f, ServfailFor(f->query), /*from_upstream=*/false);
  }

  absl::Status Open(Forward* f) {
    const SocketAddress& up = o_.upstreams[f->upstream];
    int type = f->transport == Transport::kUdp ? SOCK_DGRAM : SOCK_STREAM;
    absl::StatusOr<int> fd =
        o_.upstream_socket ? o_.upstream_socket(up.family(), type) : MakeSocket(up.family(), type);
    if (!fd.ok()) return fd.status();
    f->fd = *fd;
    metrics().UpstreamRequest(f->transport);
    f->started = loop_->Now();
    uint64_t id = f->id;
    f->watch = std::make_unique<IoWatch>(loop_, [this, id](uint32_t ev) { OnUpstream(id, ev); });
    f->timer = std::make_unique<Timer>(loop_, [this, id] {
      auto it = forwards_.find(id);
      if (it != forwards_.end()) Next(it->second.get(), "timed out");
    });
    if (f->transport == Transport::kUdp) {
      if (auto s = runtime::SetNonBlocking(f->fd); !s.ok()) return s;
      if (connect(f->fd, up.sockaddr_ptr(), up.size()) < 0 ||
          send(f->fd, f->query.data(), f->query.size(), MSG_DONTWAIT) < 0) {
        return absl::UnavailableError(strerror(errno));
      }
      if (auto s = f->watch->Start(f->fd, EPOLLIN); !s.ok()) return s;
    } else {
      if (auto s = runtime::StartConnectOn(f->fd, up); !s.ok()) return s;
      f->connecting = true;
      f->out = Framed(f->query);
      if (auto s = f->watch->Start(f->fd, EPOLLOUT); !s.ok()) return s;
    }
    f->timer->Arm(loop_->Now() + o_.upstream_timeout);
    return absl::OkStatus();
  }

  static absl::StatusOr<int> MakeSocket(int family, int type) {
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
    return fd;
  }

  // Next records a failed attempt and tries the next resolver.
  void Next(Forward* f, absl::string_view why) {
    metrics().UpstreamFailure(f->transport);
    Log(LogLevel::kWarn, absl::StrCat("upstream ", o_.upstreams[f->upstream].ToString(), " for ",
                                      f->qname, ": ", why));
    f->upstream++;
    Attempt(f);
  }

  void OnUpstream(uint64_t id, uint32_t events) {
    auto it = forwards_.find(id);
    if (it == forwards_.end()) return;
    Forward* f = it->second.get();
    uint8_t* buf = loop_->Scratch().data();
    if (f->transport == Transport::kUdp) {
      for (;;) {
        ssize_t n = recv(f->fd, buf, kMaxMessage, 0);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
          return Next(f, strerror(errno));
        }
        absl::string_view a(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
        // Only the answer to this query (same ID, a response) counts; stray
        // datagrams are ignored until the timeout.
        if (a.size() >= 12 && MessageId(a) == MessageId(f->query) &&
            (static_cast<uint8_t>(a[2]) & 0x80) != 0) {
          return Complete(f, a, /*from_upstream=*/true);
        }
      }
    }
    if (f->connecting) {
      if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      if (auto s = runtime::FinishConnect(f->fd); !s.ok()) return Next(f, s.message());
      f->connecting = false;
    }
    while (!f->out.empty()) {
      ssize_t n = send(f->fd, f->out.data(), f->out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        return Next(f, strerror(errno));
      }
      f->out.erase(0, static_cast<size_t>(n));
      if (f->out.empty()) (void)f->watch->SetEvents(EPOLLIN);
    }
    for (;;) {
      ssize_t n = recv(f->fd, buf, kMaxMessage, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        return Next(f, strerror(errno));
      }
      if (n == 0) return Next(f, "closed the connection before answering");
      f->in.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
      if (f->in.size() >= 2) {
        size_t len = (static_cast<uint8_t>(f->in[0]) << 8) | static_cast<uint8_t>(f->in[1]);
        if (f->in.size() >= 2 + len) {
          std::string a = f->in.substr(2, len);
          if (a.size() < 12 || MessageId(a) != MessageId(f->query)) {
            return Next(f, "answered with another query's ID");
          }
          return Complete(f, a, /*from_upstream=*/true);
        }
      }
    }
  }

  void Complete(Forward* f, absl::string_view answer, bool from_upstream) {
    if (from_upstream) metrics().UpstreamLatency(f->transport, loop_->Now() - f->started);
    if (f->tcp_client != 0) {
      auto c = clients_.find(f->tcp_client);
      if (c != clients_.end() && c->second->pending > 0) c->second->pending--;
    }
    Send(f->transport, f->client, f->tcp_client, answer);
    auto it = forwards_.find(f->id);
    if (it == forwards_.end()) return;
    std::unique_ptr<Forward> done = std::move(it->second);
    forwards_.erase(it);
    if (done->watch) done->watch->Stop();
    if (done->timer) done->timer->Disarm();
    Retire(std::move(done));
    if (f->tcp_client != 0) MaybeCloseIdle(f->tcp_client);
  }

  void OnAccept() {
    for (;;) {
      absl::StatusOr<int> fd = runtime::Accept(tcp_fd_);
      if (!fd.ok()) {
        if (!absl::IsUnavailable(fd.status())) {
          Log(LogLevel::kWarn, absl::StrCat("tcp accept: ", fd.status().message()));
        }
        return;
      }
      if (clients_.size() >= o_.max_tcp_connections) {
        metrics().Limited();
        Log(LogLevel::kWarn, absl::StrCat("too many TCP DNS connections (", o_.max_tcp_connections,
                                          "): closing a new one"));
        close(*fd);
        continue;
      }
      auto c = std::make_unique<TcpClient>();
      c->id = next_id_++;
      c->fd = *fd;
      uint64_t id = c->id;
      c->watch = std::make_unique<IoWatch>(loop_, [this, id](uint32_t ev) { OnClient(id, ev); });
      c->idle = std::make_unique<Timer>(loop_, [this, id] { OnIdle(id); });
      if (!c->watch->Start(c->fd, EPOLLIN).ok()) continue;
      c->idle->Arm(loop_->Now() + o_.tcp_idle_timeout);
      clients_[id] = std::move(c);
    }
  }

  void OnIdle(uint64_t id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    if (it->second->pending > 0) {
      it->second->idle->Arm(loop_->Now() + o_.tcp_idle_timeout);
      return;
    }
    CloseClient(id);
  }

  void OnClient(uint64_t id, uint32_t events) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    TcpClient* c = it->second.get();
    if ((events & EPOLLOUT) != 0) {
      Flush(c);
      if (c->closed) return;
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) == 0 || c->read_closed) return;
    uint8_t* buf = loop_->Scratch().data();
    ssize_t n = recv(c->fd, buf, kMaxMessage, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      return CloseClient(id);
    }
    c->idle->Arm(loop_->Now() + o_.tcp_idle_timeout);
    if (n == 0) {
      c->read_closed = true;
      UpdateInterest(c);
      MaybeCloseIdle(id);
      return;
    }
    c->in.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
    while (c->in.size() >= 2 && !c->closed) {
      size_t len = (static_cast<uint8_t>(c->in[0]) << 8) | static_cast<uint8_t>(c->in[1]);
      if (c->in.size() < 2 + len) break;
      std::string q = c->in.substr(2, len);
      c->in.erase(0, 2 + len);
      Handle(q, Transport::kTcp, SocketAddress{}, id);
    }
    if (!c->closed) UpdateInterest(c);
  }

  void UpdateInterest(TcpClient* c) {
    uint32_t ev = 0;
    if (!c->read_closed && c->out.size() < kMaxTcpOut) ev |= EPOLLIN;
    if (!c->out.empty()) ev |= EPOLLOUT;
    (void)c->watch->SetEvents(ev);
  }

  void Flush(TcpClient* c) {
    while (!c->out.empty()) {
      ssize_t n = send(c->fd, c->out.data(), c->out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        return CloseClient(c->id);
      }
      c->out.erase(0, static_cast<size_t>(n));
    }
    UpdateInterest(c);
    MaybeCloseIdle(c->id);
  }

  // MaybeCloseIdle closes a client that sent EOF once everything it asked
  // is answered and written.
  void MaybeCloseIdle(uint64_t id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    TcpClient* c = it->second.get();
    if (c->read_closed && c->pending == 0 && c->out.empty()) CloseClient(id);
  }

  void CloseClient(uint64_t id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    std::unique_ptr<TcpClient> c = std::move(it->second);
    clients_.erase(it);
    c->closed = true;
    c->watch->Stop();
    c->idle->Disarm();
    Retire(std::move(c));
  }

  EventLoop* loop_;
  int udp_fd_;
  int tcp_fd_;
  DnsServerOptions o_;
  DnsMetrics own_metrics_;
  std::unique_ptr<IoWatch> udp_watch_;
  std::unique_ptr<IoWatch> tcp_watch_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Forward>> forwards_;
  std::map<uint64_t, std::unique_ptr<TcpClient>> clients_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DnsServer>> DnsServer::Start(EventLoop* loop, int udp_fd, int tcp_fd,
                                                            DnsServerOptions options) {
  auto close_both = [&] {
    if (udp_fd >= 0) close(udp_fd);
    if (tcp_fd >= 0) close(tcp_fd);
  };
  if (options.directory == nullptr) {
    close_both();
    return absl::InvalidArgumentError("dns server: no workload directory");
  }
  if (options.upstreams.empty()) {
    close_both();
    return absl::InvalidArgumentError("dns server: no upstream resolvers");
  }
  auto s = std::make_unique<ServerImpl>(loop, udp_fd, tcp_fd, std::move(options));
  if (absl::Status st = s->Init(); !st.ok()) return st;  // ~ServerImpl closes the fds
  return std::unique_ptr<DnsServer>(std::move(s));
}

}  // namespace ambient::dns
