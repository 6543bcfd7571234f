// The runtime's C ABI as a host uses it: tunnel argument checks, what a
// client freed with a dial in flight leaves behind, and posting tasks to a
// loop from other threads.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "ambient/ambient.h"
#include "hbone/test_pki.h"
#include "support/full_listener.h"
#include "support/sanitizer.h"

namespace {

using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";

int OpenFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;  // the DIR's own descriptor
}

ambient_hbone_tls* Tls(const TestCa& ca, ambient_hbone_role role, const char* id) {
  KeyAndCert leaf = ca.Leaf(id);
  std::string cert = TestCa::CertPem(leaf);
  std::string key = TestCa::KeyPem(leaf);
  std::string bundle = ca.CaPem();
  ambient_hbone_tls_options* o = ambient_hbone_tls_options_new();
  EXPECT_NE(o, nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_cert_chain_pem(o, cert.data(), cert.size()), nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_private_key_pem(o, key.data(), key.size()), nullptr);
  EXPECT_EQ(ambient_hbone_tls_options_set_trust_bundle(o, bundle.data(), bundle.size()), nullptr);
  ambient_hbone_tls* tls = nullptr;
  ambient_error* err = ambient_hbone_tls_new(role, o, &tls);
  ambient_hbone_tls_options_free(o);  // the TLS side keeps what it needs
  EXPECT_EQ(err, nullptr) << ambient_error_message(err);
  ambient_error_free(err);
  return tls;
}

ambient_hbone_tls* ClientTls(const TestCa& ca) { return Tls(ca, AMBIENT_HBONE_CLIENT, kClientId); }

// Target is an ambient_hbone_target of `via`, `authority` (each left unset
// when NULL) and `expected`, freed with it.
struct Target {
  ambient_hbone_target* t = ambient_hbone_target_new();
  Target(const char* via, const char* authority, std::vector<const char*> expected = {}) {
    if (via != nullptr) {
      EXPECT_EQ(ambient_hbone_target_set_via(t, via), nullptr);
    }
    if (authority != nullptr) {
      EXPECT_EQ(ambient_hbone_target_set_authority(t, authority), nullptr);
    }
    for (const char* id : expected) EXPECT_EQ(ambient_hbone_target_add_expected(t, id), nullptr);
  }
  ~Target() { ambient_hbone_target_free(t); }
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;
  operator const ambient_hbone_target*() const { return t; }
};

// Workload is an ambient_workload_info with `fields` set, freed with it.
struct Workload {
  ambient_workload_info* w = ambient_workload_info_new();
  Workload(std::initializer_list<std::pair<ambient_workload_field, const char*>> fields) {
    for (const auto& [f, v] : fields) EXPECT_EQ(ambient_workload_info_set(w, f, v), nullptr);
  }
  ~Workload() { ambient_workload_info_free(w); }
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;
  operator const ambient_workload_info*() const { return w; }
};

// NewServer makes an HBONE server on `listen` allowing `allow`, logging to
// `log`/`user`.
ambient_error* NewServer(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                         const char* listen, std::vector<const char*> allow, ambient_log_fn log,
                         void* user, ambient_hbone_server** out) {
  ambient_hbone_server_options* o = ambient_hbone_server_options_new();
  EXPECT_NE(o, nullptr);
  EXPECT_EQ(ambient_hbone_server_options_set_listen(o, listen), nullptr);
  for (const char* id : allow) EXPECT_EQ(ambient_hbone_server_options_add_allow(o, id), nullptr);
  ambient_hbone_server_options_set_log(o, log, user);
  ambient_error* err = ambient_hbone_server_new(loop, tls, o, out);
  ambient_hbone_server_options_free(o);
  return err;
}

// NewClient makes a pooled HBONE client logging to `log`/`user` (may be NULL),
// freeing its options right away (the client keeps a copy).
ambient_error* NewClient(ambient_runtime_loop* loop, const ambient_hbone_tls* tls,
                         ambient_log_fn log, void* user, ambient_hbone_client** out) {
  ambient_hbone_client_options* o = ambient_hbone_client_options_new();
  EXPECT_NE(o, nullptr);
  ambient_hbone_client_options_set_log(o, log, user);
  ambient_error* err = ambient_hbone_client_new(loop, tls, o, out);
  ambient_hbone_client_options_free(o);
  return err;
}

struct Outcome {
  int calls = 0;
  int code = 1;
};

void RecordDone(void* user, int code, int /*http_status*/, const char* /*message*/) {
  auto* o = static_cast<Outcome*>(user);
  ++o->calls;
  o->code = code;
}

// PendingDial is what the dial-in-flight tests share: client TLS, a listener
// whose connects stay pending, and the socket pair a tunnel relays. Tunnel
// starts one tunnel from `client` to that listener.
struct PendingDial {
  TestCa ca;
  ambient_hbone_tls* tls = ClientTls(ca);
  ambient::test_support::FullListener server;
  int sv[2] = {-1, -1};

  PendingDial() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0); }
  ~PendingDial() {
    close(sv[0]);
    close(sv[1]);
    ambient_hbone_tls_free(tls);
  }
  int Tunnel(ambient_hbone_client* client, Outcome* out) {
    Target t(server.address.c_str(), "127.0.0.1:9");
    return ambient_hbone_client_tunnel(client, t, sv[0], sv[0], RecordDone, out);
  }
};

TEST(CapiRuntimeTest, ClientFreedWithADialInFlightLeavesNothingWhenTheLoopGoes) {
  PendingDial d;
  ASSERT_NE(d.tls, nullptr);
  int before = OpenFds();

  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_client* client = nullptr;
  ambient_error* err = NewClient(loop, d.tls, nullptr, nullptr, &client);
  ASSERT_EQ(err, nullptr) << ambient_error_message(err);
  Outcome out;
  ASSERT_EQ(d.Tunnel(client, &out), 0);
  ambient_runtime_loop_run_for(loop, 100);
  EXPECT_EQ(out.calls, 0) << "the dial should still be pending (code " << out.code << ")";
  EXPECT_GT(OpenFds(), before) << "the loop and the dial hold descriptors";

  ambient_hbone_client_free(client);
  EXPECT_EQ(out.calls, 1);
  EXPECT_EQ(out.code, AMBIENT_ERR_CANCELLED);
  ambient_runtime_loop_free(loop);  // never ran again: the pending dial goes with it
  EXPECT_EQ(OpenFds(), before) << "a descriptor leaked (the dial's socket?)";
  EXPECT_EQ(out.calls, 1);
  // LeakSanitizer (make asan-test) reports the dial object if it leaked.

}

TEST(CapiRuntimeTest, ClientFreedWithADialInFlightThenLoopRunsAgain) {
  PendingDial d;
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  int before = OpenFds();
  ambient_hbone_client* client = nullptr;
  ASSERT_EQ(NewClient(loop, d.tls, nullptr, nullptr, &client), nullptr);
  Outcome out;
  ASSERT_EQ(d.Tunnel(client, &out), 0);
  ambient_runtime_loop_run_for(loop, 50);
  ambient_hbone_client_free(client);
  EXPECT_EQ(out.code, AMBIENT_ERR_CANCELLED);
  ambient_runtime_loop_run_for(loop, 20);
  EXPECT_EQ(out.calls, 1) << "done runs once";
  ambient_runtime_loop_free(loop);
  EXPECT_LE(OpenFds(), before - 2) << "the loop's own descriptors are gone, and nothing else";
}

TEST(CapiRuntimeTest, ClientFreedWithADialInFlightClosesItsSocketAtOnce) {
  PendingDial d;
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_client* client = nullptr;
  ASSERT_EQ(NewClient(loop, d.tls, nullptr, nullptr, &client), nullptr);
  int before = OpenFds();
  Outcome out;
  ASSERT_EQ(d.Tunnel(client, &out), 0);
  ambient_runtime_loop_run_for(loop, 50);
  ASSERT_EQ(out.calls, 0) << "the dial should still be pending (code " << out.code << ")";
  EXPECT_EQ(OpenFds(), before + 1) << "the dial's socket";
  ambient_hbone_client_free(client);
  EXPECT_EQ(out.calls, 1);
  EXPECT_EQ(out.code, AMBIENT_ERR_CANCELLED);
  EXPECT_EQ(OpenFds(), before) << "the dial's socket is closed inside client_free";
  ambient_runtime_loop_run_for(loop, 1);  // the dial object goes (LSan checks it)
  EXPECT_EQ(OpenFds(), before);
  EXPECT_EQ(out.calls, 1) << "done runs once";
  ambient_runtime_loop_free(loop);
}

// AccessLines keeps the access log lines given to a log callback.
struct AccessLines {
  std::vector<std::string> lines;
};

void KeepAccess(void* user, ambient_log_level, const char* component, const char* msg,
                size_t len) {
  if (std::string(component) != "access") return;
  static_cast<AccessLines*>(user)->lines.emplace_back(msg, len);
}

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CapiRuntimeTest, WorkloadSettersPutTheMetadataIntoBothSidesRecords) {
  TestCa ca;
  ambient_hbone_tls* ctls = ClientTls(ca);
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, "spiffe://cluster.local/ns/back/sa/echo");
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  AccessLines server_lines, client_lines;
  ambient_hbone_server* server = nullptr;
  ASSERT_EQ(NewServer(loop, stls, "127.0.0.1:0", {}, KeepAccess, &server_lines, &server), nullptr);
  ambient_hbone_client* client = nullptr;
  ASSERT_EQ(NewClient(loop, ctls, KeepAccess, &client_lines, &client), nullptr);

  // Bad input is refused and changes nothing.
  ambient_error* err =
      ambient_hbone_server_set_workload(server, Workload({{AMBIENT_WORKLOAD_NAME, "echo"},
                                                          {AMBIENT_WORKLOAD_TYPE, "statefulset"},
                                                          {AMBIENT_WORKLOAD_NAMESPACE, "back"}}));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(ambient_error_message(err), "statefulset"));
  ambient_error_free(err);
  err = ambient_hbone_client_set_source_workload(client,
                                                 Workload({{AMBIENT_WORKLOAD_NAME, "bad\nname"}}));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  std::string huge(300, 'a');
  err = ambient_hbone_client_set_source_workload(client,
                                                 Workload({{AMBIENT_WORKLOAD_NAME, huge.c_str()}}));
  ASSERT_NE(err, nullptr);
  ambient_error_free(err);
  err = ambient_hbone_server_set_workload(nullptr, Workload({{AMBIENT_WORKLOAD_NAME, "echo"}}));
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  err = ambient_hbone_server_set_workload(server, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  {
    ambient_workload_info* w = ambient_workload_info_new();
    err = ambient_workload_info_set(w, static_cast<ambient_workload_field>(11), "x");
    EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
    ambient_error_free(err);
    err = ambient_workload_info_set(w, static_cast<ambient_workload_field>(-1), "x");
    EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
    ambient_error_free(err);
    err = ambient_workload_info_set(nullptr, AMBIENT_WORKLOAD_NAME, "x");
    EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
    ambient_error_free(err);
    ambient_workload_info_free(w);
  }

  ASSERT_EQ(ambient_hbone_server_set_workload(
                server, Workload({{AMBIENT_WORKLOAD_NAME, "echo"},
                                  {AMBIENT_WORKLOAD_TYPE, "deployment"},
                                  {AMBIENT_WORKLOAD_NAMESPACE, "back"},
                                  {AMBIENT_WORKLOAD_CANONICAL_SERVICE, "echo-svc"},
                                  {AMBIENT_WORKLOAD_CANONICAL_REVISION, "v2"},
                                  {AMBIENT_WORKLOAD_CLUSTER, "Kubernetes"},
                                  {AMBIENT_WORKLOAD_REGION, ""}})),
            nullptr);
  ASSERT_EQ(ambient_hbone_client_set_source_workload(
                client, Workload({{AMBIENT_WORKLOAD_NAME, "shell"},
                                  {AMBIENT_WORKLOAD_NAMESPACE, "front"},
                                  {AMBIENT_WORKLOAD_CANONICAL_SERVICE, "shell"},
                                  {AMBIENT_WORKLOAD_CANONICAL_REVISION, "v1"},
                                  {AMBIENT_WORKLOAD_CLUSTER, "Kubernetes"}})),
            nullptr);

  // Non-blocking: the loop runs on this thread, so the test must never block.
  int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(up, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(up, 8), 0);
  socklen_t len = sizeof(a);
  getsockname(up, reinterpret_cast<sockaddr*>(&a), &len);
  std::string upstream = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Outcome out;
  ASSERT_EQ(ambient_hbone_client_tunnel(
                client, Target(ambient_hbone_server_get0_address(server), upstream.c_str()), sv[0],
                sv[0], RecordDone, &out),
            0);
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  shutdown(sv[1], SHUT_WR);
  int conn = -1;
  for (int i = 0; i < 200 && conn < 0; ++i) {
    ambient_runtime_loop_run_for(loop, 10);
    conn = accept4(up, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  ASSERT_GE(conn, 0) << "the tunnel never reached the upstream";
  char c = 0;
  for (int i = 0; i < 200 && read(conn, &c, 1) != 1; ++i) ambient_runtime_loop_run_for(loop, 10);
  ASSERT_EQ(c, 'x');
  close(conn);  // the upstream ends: the tunnel closes cleanly
  for (int i = 0; i < 200 && (out.calls == 0 || server_lines.lines.empty()); ++i) {
    ambient_runtime_loop_run_for(loop, 10);
  }
  ASSERT_EQ(out.calls, 1);
  EXPECT_EQ(out.code, AMBIENT_OK);
  ASSERT_EQ(client_lines.lines.size(), 1u);
  ASSERT_EQ(server_lines.lines.size(), 1u);
  const std::string& cl = client_lines.lines[0];
  const std::string& sl = server_lines.lines[0];
  // The client: its own workload, and the server's from the 200's baggage.
  EXPECT_TRUE(Contains(cl, "src.workload=\"shell\" src.namespace=\"front\"")) << cl;
  EXPECT_TRUE(Contains(cl, "dst.workload=\"echo\" dst.namespace=\"back\"")) << cl;
  // The server: the client's from the CONNECT's baggage, and its own.
  EXPECT_TRUE(Contains(sl, "src.workload=\"shell\" src.namespace=\"front\"")) << sl;
  EXPECT_TRUE(Contains(sl, "dst.workload=\"echo\" dst.namespace=\"back\"")) << sl;
  std::string prom(ambient_hbone_server_metrics(server, nullptr, 0) + 1, '\0');
  ambient_hbone_server_metrics(server, prom.data(), prom.size());
  EXPECT_TRUE(Contains(prom, "destination_canonical_revision=\"v2\"")) << prom;
  EXPECT_TRUE(Contains(prom, "source_workload=\"shell\"")) << prom;
  // A short buffer gets a NUL-terminated prefix; the return value still says
  // how long the whole text is.
  char small[8];
  std::memset(small, 'x', sizeof(small));
  EXPECT_EQ(ambient_hbone_server_metrics(server, small, sizeof(small)), prom.size() - 1);
  EXPECT_EQ(std::string(small), prom.substr(0, sizeof(small) - 1));

  ambient_hbone_client_free(client);
  ambient_hbone_server_free(server);
  ambient_runtime_loop_free(loop);
  close(up);
  close(sv[0]);
  close(sv[1]);
  ambient_hbone_tls_free(ctls);
  ambient_hbone_tls_free(stls);
}

// LogAfterFree counts log lines, and those that came after its owner was freed.
struct LogAfterFree {
  bool freed = false;
  int lines = 0;
  int after_free = 0;
};

void CountLine(void* user, ambient_log_level, const char*, const char*, size_t) {
  auto* l = static_cast<LogAfterFree*>(user);
  ++l->lines;
  if (l->freed) ++l->after_free;
}

// RunningTunnelThenFreeClient opens a tunnel that carries bytes, frees the
// client and then either runs the loop once more or frees it at once.
void RunningTunnelThenFreeClient(bool run_loop_after) {
  TestCa ca;
  ambient_hbone_tls* ctls = ClientTls(ca);
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, "spiffe://cluster.local/ns/a/sa/server");
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_server* server = nullptr;
  LogAfterFree server_log;
  ASSERT_EQ(NewServer(loop, stls, "127.0.0.1:0", {}, CountLine, &server_log, &server), nullptr);
  // The upstream: a listener whose queue accepts the server's connect.
  // Non-blocking: the loop runs on this thread, so the test must never block.
  int up = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(up, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ASSERT_EQ(listen(up, 8), 0);
  socklen_t len = sizeof(a);
  getsockname(up, reinterpret_cast<sockaddr*>(&a), &len);
  std::string upstream = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  ambient_hbone_client* client = nullptr;
  LogAfterFree client_log;
  ASSERT_EQ(NewClient(loop, ctls, CountLine, &client_log, &client), nullptr);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Outcome out;
  ASSERT_EQ(ambient_hbone_client_tunnel(
                client, Target(ambient_hbone_server_get0_address(server), upstream.c_str()), sv[0],
                sv[0], RecordDone, &out),
            0);
  // Running: the server reached the upstream and the tunnel carries bytes.
  ASSERT_EQ(write(sv[1], "x", 1), 1);
  int conn = -1;
  for (int i = 0; i < 100 && conn < 0; ++i) {
    ambient_runtime_loop_run_for(loop, 10);
    conn = accept4(up, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  }
  ASSERT_GE(conn, 0) << "the tunnel never reached the upstream";
  char c = 0;
  for (int i = 0; i < 100 && read(conn, &c, 1) != 1; ++i) ambient_runtime_loop_run_for(loop, 10);
  EXPECT_EQ(c, 'x');
  EXPECT_EQ(out.calls, 0);

  ambient_hbone_client_free(client);
  client_log.freed = true;  // its log callback must not be called any more
  if (run_loop_after) {
    ambient_runtime_loop_run_for(loop, 20);
    EXPECT_EQ(out.calls, 1) << "done runs on the loop's next iteration";
  }
  ambient_hbone_server_free(server);
  server_log.freed = true;
  ambient_runtime_loop_free(loop);
  EXPECT_EQ(client_log.after_free, 0) << "the client logged after ambient_hbone_client_free";
  EXPECT_EQ(server_log.after_free, 0) << "the server logged after ambient_hbone_server_free";
  EXPECT_EQ(out.calls, 1) << "done runs once, at the latest when the loop is freed";
  EXPECT_EQ(out.code, AMBIENT_ERR_CANCELLED);
  close(conn);
  close(up);
  close(sv[0]);
  close(sv[1]);
  ambient_hbone_tls_free(ctls);
  ambient_hbone_tls_free(stls);
}

TEST(CapiRuntimeTest, ClientFreedWithARunningTunnelThenLoopRunsCallsDoneWithCancelled) {
  RunningTunnelThenFreeClient(/*run_loop_after=*/true);
}

TEST(CapiRuntimeTest, ClientFreedWithARunningTunnelThenLoopFreedCallsDoneWithCancelled) {
  RunningTunnelThenFreeClient(/*run_loop_after=*/false);
}

TEST(CapiRuntimeTest, MalformedTunnelArgumentsAreRefusedUpFront) {
  TestCa ca;
  ambient_hbone_tls* tls = ClientTls(ca);
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_client* client = nullptr;
  ASSERT_EQ(NewClient(loop, tls, nullptr, nullptr, &client), nullptr);
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  Outcome out;
  for (const char* via : {"nowhere", "", "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                          "host.example:15008", "[::1]", "1.2.3.4:80x"}) {
    EXPECT_EQ(ambient_hbone_client_tunnel(client, Target(via, "127.0.0.1:80"), sv[0], sv[0],
                                          RecordDone, &out),
              AMBIENT_ERR_INVALID_ARGUMENT)
        << "via " << via;
  }
  for (const char* authority : {"", "nowhere", "127.0.0.1:0", "a b:80", "user@host:80",
                                "[::1:80", "host:-1"}) {
    EXPECT_EQ(ambient_hbone_client_tunnel(client, Target("127.0.0.1:15008", authority), sv[0],
                                          sv[0], RecordDone, &out),
              AMBIENT_ERR_INVALID_ARGUMENT)
        << "authority " << authority;
  }
  EXPECT_EQ(ambient_hbone_client_tunnel(client, Target(nullptr, "127.0.0.1:80"), sv[0], sv[0],
                                        RecordDone, &out),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_hbone_client_tunnel(client, Target("127.0.0.1:15008", nullptr), sv[0], sv[0],
                                        RecordDone, &out),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_hbone_client_tunnel(client, nullptr, sv[0], sv[0], RecordDone, &out),
            AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_hbone_client_tunnel(client, Target("127.0.0.1:15008", "127.0.0.1:80"), -1,
                                        sv[0], RecordDone, &out),
            AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error* err = ambient_hbone_target_set_via(nullptr, "127.0.0.1:1");
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  ambient_runtime_loop_run_for(loop, 30);
  EXPECT_EQ(out.calls, 0) << "a refused call never calls done";
  // The forwarder checks the same at setup.
  ambient_hbone_forwarder* fwd = nullptr;
  err = ambient_hbone_forwarder_new(loop, client, "127.0.0.1:0", Target("nowhere", "127.0.0.1:80"),
                                    &fwd);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  EXPECT_EQ(fwd, nullptr);
  ambient_hbone_client_free(client);
  ambient_runtime_loop_free(loop);
  close(sv[0]);
  close(sv[1]);
  ambient_hbone_tls_free(tls);
}

TEST(CapiRuntimeTest, ClientNeedsItsOptionsAndAClientRoleTls) {
  TestCa ca;
  ambient_hbone_tls* ctls = ClientTls(ca);
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, "spiffe://cluster.local/ns/back/sa/echo");
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_client_options* o = ambient_hbone_client_options_new();
  ASSERT_NE(o, nullptr);
  ambient_hbone_client_options_set_log(nullptr, CountLine, nullptr);  // ignored, no crash
  ambient_hbone_client* client = nullptr;
  ambient_error* err = ambient_hbone_client_new(loop, ctls, nullptr, &client);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(ambient_error_message(err), "opts")) << ambient_error_message(err);
  ambient_error_free(err);
  err = ambient_hbone_client_new(loop, stls, o, &client);
  ASSERT_NE(err, nullptr);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  EXPECT_EQ(client, nullptr);
  // The same options make any number of clients.
  ambient_hbone_client* a = nullptr;
  ambient_hbone_client* b = nullptr;
  ASSERT_EQ(ambient_hbone_client_new(loop, ctls, o, &a), nullptr);
  ASSERT_EQ(ambient_hbone_client_new(loop, ctls, o, &b), nullptr);
  EXPECT_NE(a, b);
  ambient_hbone_client_options_free(o);
  ambient_hbone_client_options_free(nullptr);
  ambient_hbone_client_free(a);
  ambient_hbone_client_free(b);
  ambient_runtime_loop_free(loop);
  ambient_hbone_tls_free(ctls);
  ambient_hbone_tls_free(stls);
}

TEST(CapiRuntimeTest, ServerRefusesAnAllowEntryThatIsNotASpiffeId) {
  TestCa ca;
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, "spiffe://cluster.local/ns/back/sa/echo");
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  for (const char* bad : {"cluster.local/ns/default/sa/demo", "spiffe://td/ns/a/sa/b/", "",
                          "spiffe://TD/ns/a/sa/b"}) {
    ambient_hbone_server* server = nullptr;
    ambient_error* err =
        NewServer(loop, stls, "127.0.0.1:0", {"spiffe://cluster.local/ns/default/sa/ok", bad},
                  nullptr, nullptr, &server);
    ASSERT_NE(err, nullptr) << bad;
    EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT) << bad;
    EXPECT_TRUE(Contains(ambient_error_message(err), "allow[1]")) << ambient_error_message(err);
    EXPECT_EQ(server, nullptr);
    ambient_error_free(err);
  }
  ambient_runtime_loop_free(loop);
  ambient_hbone_tls_free(stls);
}

struct PostLog {
  std::atomic<int> runs{0};
  std::vector<int> order;
  std::thread::id thread;
};

struct PostTask {
  PostLog* log;
  int n;
};

void RunPosted(void* user) {
  auto* t = static_cast<PostTask*>(user);
  t->log->order.push_back(t->n);
  t->log->thread = std::this_thread::get_id();
  t->log->runs.fetch_add(1);
  delete t;
}

TEST(CapiRuntimeTest, PostRunsTasksOnTheLoopThreadInOrder) {
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  PostLog log;
  std::thread poster([&] {
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(ambient_runtime_loop_post(loop, RunPosted, new PostTask{&log, i}), 0);
    }
  });
  poster.join();
  EXPECT_EQ(log.runs.load(), 0) << "nothing runs before the loop does";
  ambient_runtime_loop_run_for(loop, 20);
  EXPECT_EQ(log.runs.load(), 5);
  EXPECT_EQ(log.order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(log.thread, std::this_thread::get_id());

  // A post wakes a loop that is blocked in run (no timers, no I/O).
  std::thread::id runner_id;
  std::thread runner([&] {
    runner_id = std::this_thread::get_id();
    ambient_runtime_loop_run(loop);
  });
  EXPECT_EQ(ambient_runtime_loop_post(loop, RunPosted, new PostTask{&log, 5}), 0);
  for (int i = 0; i < 500 && log.runs.load() < 6; ++i) usleep(2000);
  EXPECT_EQ(log.runs.load(), 6);
  ambient_runtime_loop_stop(loop);
  runner.join();
  EXPECT_EQ(log.thread, runner_id);

  EXPECT_EQ(ambient_runtime_loop_post(nullptr, RunPosted, nullptr), AMBIENT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ambient_runtime_loop_post(loop, nullptr, nullptr), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_runtime_loop_free(loop);
}

TEST(CapiRuntimeTest, TasksStillQueuedRunOnceWhenTheLoopIsFreed) {
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  PostLog log;
  ASSERT_EQ(ambient_runtime_loop_post(loop, RunPosted, new PostTask{&log, 0}), 0);
  ambient_runtime_loop_run_for(loop, 10);
  ASSERT_EQ(log.runs.load(), 1);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(ambient_runtime_loop_post(loop, RunPosted, new PostTask{&log, i}), 0);
  }
  ambient_runtime_loop_free(loop);  // the three tasks (and their `user`) are not lost
  EXPECT_EQ(log.runs.load(), 4);
  EXPECT_EQ(log.order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(log.thread, std::this_thread::get_id());
}

}  // namespace

namespace {

// Connects a plain TCP socket to "127.0.0.1:port" text; -1 on failure.
int TcpTo(const char* address) {
  std::string a(address);
  int port = std::stoi(a.substr(a.rfind(':') + 1));
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  return fd;
}

// True when the server closed `fd` (EOF or reset).
bool ClosedByServer(int fd) {
  char b;
  ssize_t n = recv(fd, &b, 1, 0);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

// The server's limits from C: a silent connection is closed after the
// silent timeout set here (not the 3 s default), and the connection cap
// keeps a second connection waiting in the backlog.
TEST(CapiLimitsTest, SetLimitsTakesEffect) {
  TestCa ca;
  ambient_hbone_tls* stls = Tls(ca, AMBIENT_HBONE_SERVER, "spiffe://cluster.local/ns/back/sa/echo");
  ambient_runtime_loop* loop = nullptr;
  ASSERT_EQ(ambient_runtime_loop_new(&loop), nullptr);
  ambient_hbone_server* server = nullptr;
  ASSERT_EQ(NewServer(loop, stls, "127.0.0.1:0", {}, nullptr, nullptr, &server), nullptr);
  ambient_error* err = ambient_hbone_server_set_limit(nullptr, AMBIENT_HBONE_MAX_CONNECTIONS, 1);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  err = ambient_hbone_server_set_limit(server, static_cast<ambient_hbone_limit>(5), 1);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  err = ambient_hbone_server_set_limit(server, AMBIENT_HBONE_SILENT_TIMEOUT_MS, 1ull << 40);
  EXPECT_EQ(ambient_error_code(err), AMBIENT_ERR_INVALID_ARGUMENT);
  ambient_error_free(err);
  ASSERT_EQ(ambient_hbone_server_set_limit(server, AMBIENT_HBONE_MAX_CONNECTIONS, 1), nullptr);
  ASSERT_EQ(ambient_hbone_server_set_limit(server, AMBIENT_HBONE_MAX_HANDSHAKES, 0), nullptr);
  ASSERT_EQ(ambient_hbone_server_set_limit(server, AMBIENT_HBONE_SILENT_TIMEOUT_MS, 300), nullptr);
  // t=0: the first connects; t=100: the second. The first is closed at 300
  // (silent); the second is accepted only then (cap 1), so it is still open
  // at 480 (without the cap it would have been closed at 400), and closed
  // at 600.
  int first = TcpTo(ambient_hbone_server_get0_address(server));
  ambient_runtime_loop_run_for(loop, 100);
  int second = TcpTo(ambient_hbone_server_get0_address(server));
  ambient_runtime_loop_run_for(loop, 380);
  EXPECT_TRUE(ClosedByServer(first)) << "silent for 300 ms";
  EXPECT_FALSE(ClosedByServer(second)) << "waited in the backlog while the first was open";
  ambient_runtime_loop_run_for(loop, 400);
  EXPECT_TRUE(ClosedByServer(second)) << "accepted once the first left, then silent";
  close(first);
  close(second);
  ambient_hbone_server_free(server);
  ambient_runtime_loop_run_for(loop, 10);
  ambient_runtime_loop_free(loop);
  ambient_hbone_tls_free(stls);
}

// Issue 17, finding 3: ambient_hbone_tls_new_from_files read a whole file
// before checking its size, so /dev/zero grew until the kernel killed the
// process. The call runs in a child with an address-space limit (not under
// ASan, whose shadow memory needs terabytes of it): it must come back with
// INVALID_ARGUMENT instead of dying.
TEST(CapiFilesTest, DevZeroAsEveryFileIsRefusedWithoutReadingItAll) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
#if !AMBIENT_TEST_SANITIZED
    rlimit lim{size_t{1} << 30, size_t{1} << 30};
    setrlimit(RLIMIT_AS, &lim);
#endif
    alarm(20);
    int worst = 0;
    const char* files[3][3] = {{"/dev/zero", "/dev/null", "/dev/null"},
                               {"/dev/null", "/dev/zero", "/dev/null"},
                               {"/dev/null", "/dev/null", "/dev/zero"}};
    for (auto& f : files) {
      ambient_hbone_tls* tls = nullptr;
      ambient_error* err =
          ambient_hbone_tls_new_from_files(AMBIENT_HBONE_SERVER, f[0], f[1], f[2], &tls);
      bool good = err != nullptr && ambient_error_code(err) == AMBIENT_ERR_INVALID_ARGUMENT &&
                  std::string(ambient_error_message(err)).find("/dev/zero is larger than") !=
                      std::string::npos &&
                  tls == nullptr;
      ambient_error_free(err);
      if (!good) worst = 1;
    }
    _exit(worst);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "child died with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
