// fuzz_admin_respond: the node proxy's admin request handling (AdminRespond
// in admin_server.h) on arbitrary bytes. Every input gets either "need more"
// or a complete HTTP/1.1 response whose Content-Length matches its body; the
// log level changes only with a 200 answer to a POST, and a 400 changes
// nothing; never a crash. Built and run by `make fuzz`
// (fuzz/examples/CMakeLists.txt).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "admin_server.h"

namespace {

ambient::LogLevel g_level = ambient::LogLevel::kInfo;
int g_sets = 0;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ambient::examples::AdminHandlers kHandlers = [] {
    ambient::examples::AdminHandlers h;
    h.config_dump = [] { return std::string("{\"workloads\": []}\n"); };
    h.log_level = [] { return g_level; };
    h.set_log_level = [](ambient::LogLevel l) {
      ++g_sets;
      g_level = l;
    };
    return h;
  }();
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  int sets_before = g_sets;
  std::optional<std::string> r = ambient::examples::AdminRespond(in, kHandlers);
  if (!r) {
    if (g_sets != sets_before) abort();  // no answer, no change
    return 0;
  }
  if (!absl::StartsWith(*r, "HTTP/1.1 ")) abort();
  if (g_sets != sets_before &&
      (!absl::StartsWith(*r, "HTTP/1.1 200 ") || !absl::StartsWith(in, "POST /logging?"))) {
    abort();
  }
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
