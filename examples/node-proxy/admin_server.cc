#include "admin_server.h"

#include "absl/strings/str_cat.h"

namespace ambient::examples {

namespace {

constexpr char kLoggingUsage[] =
    "usage: GET /logging                  the current level\n"
    "       POST /logging?level=LEVEL     set it; LEVEL is debug, info, warn or error\n";

constexpr char kIndex[] =
    "node-proxy admin endpoint\n"
    "  /config_dump  workloads, services, policies and certificates (JSON, ztunnel's shape)\n"
    "  /logging      the log level: GET to read it, POST ?level=debug|info|warn|error to set it\n";

// Printable renders untrusted bytes for a message: at most `max` of them,
// anything but printable ASCII as '?'.
std::string Printable(absl::string_view s, size_t max = 64) {
  std::string out;
  for (char c : s.substr(0, max)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > max) out += "...";
  return out;
}

std::string CurrentLevel(const AdminHandlers& h, bool head) {
  return HttpText(200, "OK",
                  absl::StrCat("current log level is ", LogLevelName(h.log_level()), "\n"), head);
}

std::string Logging(const HttpRequest& req, const AdminHandlers& h) {
  bool head = req.method == "HEAD";
  if (!h.log_level || !h.set_log_level) {
    return HttpText(500, "Internal Server Error", "log level not available\n", head);
  }
  std::optional<absl::string_view> level = HttpQueryParam(req.query, "level");
  if (req.method == "GET" || head) {
    if (level) {
      return HttpText(405, "Method Not Allowed",
                      absl::StrCat("changing the level takes a POST\n", kLoggingUsage), head);
    }
    return CurrentLevel(h, head);
  }
  if (req.method != "POST") {
    return HttpText(405, "Method Not Allowed",
                    absl::StrCat("only GET, HEAD and POST\n", kLoggingUsage));
  }
  if (!level || level->empty()) return CurrentLevel(h, false);
  std::optional<LogLevel> parsed = ParseLogLevel(*level);
  if (!parsed) {
    return HttpText(
        400, "Bad Request",
        absl::StrCat("Invalid level provided: ", Printable(*level), "\n", kLoggingUsage));
  }
  h.set_log_level(*parsed);
  return CurrentLevel(h, false);
}

}  // namespace

std::optional<LogLevel> ParseLogLevel(absl::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

absl::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::optional<std::string> AdminRespond(absl::string_view request, const AdminHandlers& h) {
  return HttpAnswer(request, [&h](const HttpRequest& req) {
    bool head = req.method == "HEAD";
    bool get = req.method == "GET" || head;
    if (req.path == "/logging") return Logging(req, h);
    if (req.path == "/config_dump") {
      if (!get) return HttpText(405, "Method Not Allowed", "only GET and HEAD\n");
      if (!h.config_dump) {
        return HttpText(500, "Internal Server Error", "config dump not available\n", head);
      }
      return HttpResponse(200, "OK", "application/json", h.config_dump(), head);
    }
    if (req.path == "/") {
      if (!get) return HttpText(405, "Method Not Allowed", "only GET and HEAD\n");
      return HttpText(200, "OK", kIndex, head);
    }
    return HttpText(404, "Not Found", "not found\n", head);
  });
}

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::New(runtime::EventLoop* loop,
                                                              const std::string& listen,
                                                              AdminHandlers handlers) {
  auto http =
      HttpServer::New(loop, listen, [handlers = std::move(handlers)](absl::string_view request) {
        std::optional<std::string> response = AdminRespond(request, handlers);
        if (response && handlers.log) {
          absl::string_view line = request.substr(0, request.find_first_of("\r\n"));
          handlers.log(LogLevel::kDebug, "admin",
                       absl::StrCat(Printable(line, 200), " -> ",
                                    absl::string_view(*response).substr(9, 3)));
        }
        return response;
      });
  if (!http.ok()) return http.status();
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(*http)));
}

}  // namespace ambient::examples
