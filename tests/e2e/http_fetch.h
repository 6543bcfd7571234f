// Test helpers for the node proxy's small HTTP endpoints (metrics, admin):
// a blocking one-request client and pieces of a raw response.
#ifndef AMBIENT_TESTS_E2E_HTTP_FETCH_H_
#define AMBIENT_TESTS_E2E_HTTP_FETCH_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ambient::e2e {

// Fetch sends `request` to 127.0.0.1:`port`, half-closes, and returns the
// whole answer ("connect failed" when nothing listens); reads time out
// after 5 s.
inline std::string Fetch(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// StatusLine is a response's first line; "(incomplete)" for no response.
inline std::string StatusLine(const std::optional<std::string>& r) {
  if (!r) return "(incomplete)";
  return r->substr(0, r->find("\r\n"));
}

// Body is what follows a response's head; "(incomplete)" for no response.
inline std::string Body(const std::optional<std::string>& r) {
  if (!r) return "(incomplete)";
  return r->substr(r->find("\r\n\r\n") + 4);
}

}  // namespace ambient::e2e

#endif  // AMBIENT_TESTS_E2E_HTTP_FETCH_H_
