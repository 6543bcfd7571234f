// The C ABI's stream reset codes as an independent HTTP/2 peer sees them: an
// HBONE server driven only through ambient/c/hbone.h (sans I/O, over a
// loopback socket on its own thread) accepts CONNECTs from python-h2
// (h2_reset_code.py) and resets each with the call its :authority names; the
// script prints the RST_STREAM code it received.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ambient/ambient.h"
#include "hbone/test_pki.h"
#include "support/hbone_pki_files.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace {

using ::testing::HasSubstr;
namespace test_support = ambient::test_support;

constexpr char kClientId[] = "spiffe://cluster.local/ns/default/sa/client";
constexpr char kServerId[] = "spiffe://cluster.local/ns/default/sa/server";

// What the server does with the first bytes of a stream, by :authority.
constexpr char kResetConnectError[] = "127.0.0.1:10";  // reset_with(CONNECT_ERROR)
constexpr char kResetCancel[] = "127.0.0.1:8";         // reset_with(CANCEL)
constexpr char kResetPlain[] = "127.0.0.1:1";          // ambient_hbone_stream_reset

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

// CapiServer serves one HBONE connection through the C ABI on its own thread.
class CapiServer {
 public:
  CapiServer(const std::string& cert, const std::string& key, const std::string& ca) {
    ambient_error* err = ambient_hbone_tls_new_from_files(AMBIENT_HBONE_SERVER, cert.c_str(),
                                                          key.c_str(), ca.c_str(), &tls_);
    EXPECT_EQ(err, nullptr) << ambient_error_message(err);
    ambient_error_free(err);
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    EXPECT_EQ(listen(listener_, 1), 0);
    socklen_t len = sizeof(a);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] { Serve(); });
  }
  ~CapiServer() {
    stop_ = true;
    shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(listener_);
    ambient_hbone_tls_free(tls_);
  }
  const std::string& address() const { return address_; }
  // Finish waits until the connection is over (the peer closed it, or 20 s)
  // and returns what the C calls did that they should not have.
  std::vector<std::string> Finish() {
    thread_.join();
    return problems;
  }

 private:
  std::vector<std::string> problems;

  void Serve() {
    int fd = accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    ambient_hbone_conn* conn = nullptr;
    ambient_error* err = ambient_hbone_conn_new(tls_, nullptr, 0, &conn);
    if (err != nullptr) {
      problems.push_back(ambient_error_message(err));
      ambient_error_free(err);
      close(fd);
      return;
    }
    ambient_hbone_conn_start(conn, NowNs());
    std::map<int32_t, std::string> authority;
    const uint64_t give_up = NowNs() + 20ull * 1000000000u;
    bool eof = false;
    while (!stop_ && NowNs() < give_up) {
      const uint8_t* out;
      size_t n;
      ambient_hbone_conn_pending_output(conn, &out, &n);
      while (n > 0) {
        ssize_t w = send(fd, out, n, MSG_NOSIGNAL);
        if (w <= 0) break;
        ambient_hbone_conn_consume_output(conn, static_cast<size_t>(w));
        ambient_hbone_conn_pending_output(conn, &out, &n);
      }
      if (ambient_hbone_conn_is_closed(conn) || eof) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 10) > 0) {
        uint8_t buf[16384];
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r > 0) {
          ambient_hbone_conn_receive(conn, buf, static_cast<size_t>(r), NowNs());
        } else {
          ambient_hbone_conn_receive_eof(conn, NowNs());
          eof = true;
        }
      }
      if (ambient_hbone_conn_next_deadline(conn) <= NowNs()) {
        ambient_hbone_conn_on_timeout(conn, NowNs());
      }
      ambient_hbone_event ev;
      while (ambient_hbone_conn_poll_event(conn, &ev) == 1) {
        if (ev.type == AMBIENT_HBONE_EVENT_STREAM_REQUEST) {
          authority[ev.stream] = std::string(ev.authority, ev.authority_len);
          ambient_hbone_conn_accept_stream(conn, ev.stream);
        } else if (ev.type == AMBIENT_HBONE_EVENT_STREAM_READABLE) {
          uint8_t buf[64];
          if (ambient_hbone_stream_read(conn, ev.stream, buf, sizeof(buf)) > 0) {
            Reset(conn, ev.stream, authority[ev.stream]);
          }
        }
      }
    }
    ambient_hbone_conn_free(conn);
    close(fd);
  }

  void Reset(ambient_hbone_conn* conn, int32_t stream, const std::string& authority) {
    // A code outside ambient_hbone_reset_code is refused and sends nothing
    // (the peer sees the code of the call after it).
    int bad = 0x1;  // PROTOCOL_ERROR
    ambient_hbone_reset_code code;
    std::memcpy(&code, &bad, sizeof(code));
    int rc = ambient_hbone_stream_reset_with(conn, stream, code);
    if (rc != AMBIENT_ERR_INVALID_ARGUMENT) {
      problems.push_back("reset_with(0x1) returned " + std::to_string(rc));
    }
    if (authority == kResetConnectError) {
      rc = ambient_hbone_stream_reset_with(conn, stream, AMBIENT_HBONE_RESET_CONNECT_ERROR);
    } else if (authority == kResetCancel) {
      rc = ambient_hbone_stream_reset_with(conn, stream, AMBIENT_HBONE_RESET_CANCEL);
    } else {
      rc = ambient_hbone_stream_reset(conn, stream);
    }
    if (rc != 0) problems.push_back(authority + ": reset returned " + std::to_string(rc));
    rc = ambient_hbone_stream_reset_with(conn, 12345, AMBIENT_HBONE_RESET_CANCEL);
    if (rc != AMBIENT_ERR_NOT_FOUND) {
      problems.push_back("reset_with(unknown stream) returned " + std::to_string(rc));
    }
    if (ambient_hbone_stream_reset_with(nullptr, stream, AMBIENT_HBONE_RESET_CANCEL) !=
        AMBIENT_ERR_INVALID_ARGUMENT) {
      problems.push_back("reset_with(NULL conn) was not refused");
    }
  }

  ambient_hbone_tls* tls_ = nullptr;
  int listener_ = -1;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(CapiResetCodeTest, PeerSeesTheCodeTheCAbiResetWith) {
  if (access("/usr/lib/python3/dist-packages/h2/__init__.py", R_OK) != 0) {
    GTEST_FAIL() << "python3-h2 is not installed (scripts/install-deps.sh installs it)";
  }
  ambient::hbone::testing::TestCa ca;
  test_support::TempDir dir;
  ASSERT_TRUE(dir.Create("ambient-capi-reset"));
  test_support::WriteHbonePki(dir, ca, kServerId, kClientId);
  test_support::RunResult r;
  std::vector<std::string> problems;
  {
    CapiServer server(dir.Path("server.pem"), dir.Path("server.key"), dir.Path("ca.pem"));
    r = test_support::Run(
        {"/usr/bin/python3", H2_RESET_CODE_SCRIPT, server.address(), dir.Path("client.pem"),
         dir.Path("client.key"), dir.Path("ca.pem"), kResetConnectError, kResetCancel, kResetPlain},
        "");
    problems = server.Finish();  // the script closed the connection
  }
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(std::string(kResetConnectError) + " reset 0xa\n"))
      << "RST_STREAM(CONNECT_ERROR)\n"
      << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr(std::string(kResetCancel) + " reset 0x8\n")) << r.out;
  EXPECT_THAT(r.out, HasSubstr(std::string(kResetPlain) + " reset 0x8\n"))
      << "ambient_hbone_stream_reset stays CANCEL\n"
      << r.out;
  EXPECT_THAT(problems, ::testing::IsEmpty());
  EXPECT_TRUE(dir.Remove());
}

}  // namespace
