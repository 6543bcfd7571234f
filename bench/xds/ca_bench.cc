// CA round trip: one workload certificate from the Istio CA as the node proxy
// gets it (xds::MakeCsr: a P-256 key + CSR; EncodeCertificateRequest;
// CreateCertificate over an xds::ControlPlaneConnection; and
// DecodeCertificateResponse's checks of the chain), against
// tests/xds/fake_istiod.py --ca on loopback, which signs with
// python3-cryptography. Peers in the same run, alternating with it: the key
// + CSR generation alone (the crypto), and a unary /ambient.test.Echo/Echo
// call of the same request bytes on the same connection (the transport and
// python's gRPC, no signing), so the round trip splits into crypto,
// transport and python's signing.
//
//   ca_bench write-ca DIR          writes DIR/ca-cert.pem, DIR/ca-key.pem (the mesh CA)
//   ca_bench run ADDRESS COUNT ROUNDS
//
// `run` prints one JSON line per round and mode, every operation's time:
//   {"mode": "ca"|"csr"|"echo", "us": [T, ...]}
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "ambient/runtime/event_loop.h"
#include "ambient/xds/ca_client.h"
#include "ambient/xds/control_plane_connection.h"
#include "support/test_pki.h"

namespace {

namespace xds = ambient::xds;
constexpr char kEchoMethod[] = "/ambient.test.Echo/Echo";

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "ca_bench: %s\n", why.c_str());
  std::exit(1);
}

int WriteCa(const std::string& dir) {
  namespace ts = ambient::test_support;
  int64_t now = absl::ToUnixSeconds(absl::Now());
  ts::CertSpec spec = ts::CaSpec("cluster.local");
  spec.not_before = now - 3600;
  spec.not_after = now + 86400 * 3;
  ts::Issued ca = ts::Issue(spec);
  std::ofstream(dir + "/ca-cert.pem") << ca.CertPem();
  std::ofstream(dir + "/ca-key.pem") << ca.KeyPem();
  return 0;
}

class Client {
 public:
  explicit Client(const std::string& address) {
    loop_ = std::move(ambient::runtime::EventLoop::New().value());
    xds::ConnectionOptions o;
    o.address = address;
    auto c = xds::ControlPlaneConnection::New(loop_.get(), o);
    if (!c.ok()) Die(c.status().ToString());
    conn_ = std::move(*c);
    thread_ = std::thread([this] { loop_->Run(); });
    loop_->Post([this] { conn_->Start(); });
  }
  ~Client() {
    std::promise<void> gone;
    loop_->Post([&] {
      conn_.reset();
      gone.set_value();
    });
    gone.get_future().wait();
    loop_->Stop();
    thread_.join();
  }
  // Call makes one unary call and waits for its answer.
  absl::StatusOr<std::string> Call(const char* method, std::string request) {
    std::promise<absl::StatusOr<std::string>> got;
    loop_->Post([&] {
      conn_->Call(method, std::move(request), absl::Now() + absl::Seconds(20),
                  [&](absl::StatusOr<std::string> r) { got.set_value(std::move(r)); });
    });
    return got.get_future().get();
  }

 private:
  std::unique_ptr<ambient::runtime::EventLoop> loop_;
  std::unique_ptr<xds::ControlPlaneConnection> conn_;
  std::thread thread_;
};

double Us(absl::Time since) { return absl::ToDoubleMicroseconds(absl::Now() - since); }

int Run(const std::string& address, int count, int rounds) {
  ambient::identity::SpiffeId id =
      ambient::identity::SpiffeId::Parse("spiffe://cluster.local/ns/default/sa/bench").value();
  Client client(address);
  // The request bytes the echo peer sends: a real CreateCertificate request.
  auto sample = xds::MakeCsr(id);
  if (!sample.ok()) Die(sample.status().ToString());
  const std::string echo_request = xds::EncodeCertificateRequest(*sample, absl::Hours(24), false);
  // Warm up: the connection is made, python's handlers are loaded.
  if (auto r = client.Call(kEchoMethod, echo_request); !r.ok()) Die(r.status().ToString());
  if (auto r = client.Call(xds::kCaMethod, echo_request); !r.ok()) Die(r.status().ToString());
  const char* modes[] = {"ca", "csr", "echo"};
  for (int round = 0; round < rounds; ++round) {
    for (int m = 0; m < 3; ++m) {
      std::string mode = modes[(m + round) % 3];
      std::vector<std::string> us;
      for (int i = 0; i < count; ++i) {
        absl::Time t0 = absl::Now();
        if (mode == "csr") {
          auto csr = xds::MakeCsr(id);
          if (!csr.ok()) Die(csr.status().ToString());
        } else if (mode == "echo") {
          auto r = client.Call(kEchoMethod, echo_request);
          if (!r.ok() || r->size() != echo_request.size()) Die("echo failed");
        } else {
          auto csr = xds::MakeCsr(id);
          if (!csr.ok()) Die(csr.status().ToString());
          auto r = client.Call(xds::kCaMethod,
                               xds::EncodeCertificateRequest(*csr, absl::Hours(24), false));
          if (!r.ok()) Die(r.status().ToString());
          auto issued = xds::DecodeCertificateResponse(*r, *csr, std::time(nullptr));
          if (!issued.ok()) Die(issued.status().ToString());
        }
        us.push_back(absl::StrCat(Us(t0)));
      }
      std::printf("{\"mode\": \"%s\", \"us\": [%s]}\n", mode.c_str(),
                  absl::StrJoin(us, ", ").c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "write-ca") return WriteCa(args[1]);
  if (args.size() == 4 && args[0] == "run") {
    int count = std::atoi(args[2].c_str()), rounds = std::atoi(args[3].c_str());
    if (count <= 0 || rounds <= 0) Die("COUNT and ROUNDS must be positive");
    return Run(args[1], count, rounds);
  }
  std::fprintf(stderr, "usage: ca_bench write-ca DIR | ca_bench run ADDRESS COUNT ROUNDS\n");
  return 2;
}
