// fuzz_http_respond: the node proxy's HTTP request parser (HttpRespond in
// metrics_server.h) on arbitrary bytes. Every input gets either "need more"
// or a complete HTTP/1.1 response whose Content-Length matches its body;
// never a crash. Built and run by `make fuzz` (fuzz/examples/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "metrics_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ambient::examples::MetricsHandlers kHandlers = [] {
    ambient::examples::MetricsHandlers h;
    h.metrics = [] { return std::string("istio_tcp_connections_opened_total 1\n"); };
    h.ready = [] { return true; };
    return h;
  }();
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  std::optional<std::string> r = ambient::examples::HttpRespond(in, kHandlers);
  if (!r) return 0;
  if (!absl::StartsWith(*r, "HTTP/1.1 ")) abort();
  size_t head_end = r->find("\r\n\r\n");
  size_t cl = r->find("Content-Length: ");
  if (head_end == std::string::npos || cl == std::string::npos || cl > head_end) abort();
  size_t eol = r->find("\r\n", cl);
  size_t length = 0;
  if (!absl::SimpleAtoi(absl::string_view(*r).substr(cl + 16, eol - cl - 16), &length)) abort();
  // HEAD answers carry the length of the body they leave out.
  size_t body = r->size() - head_end - 4;
  if (body != length && body != 0) abort();
  return 0;
}
