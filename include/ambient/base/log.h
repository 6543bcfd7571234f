// ambient/base/log.h: the log sink ambient's C++ objects write to.
//
// The library never prints. Objects that have something to say take a LogSink
// (a std::function) in their options and call it; an empty sink drops lines.
#ifndef AMBIENT_BASE_LOG_H_
#define AMBIENT_BASE_LOG_H_

#include <functional>

#include "absl/strings/string_view.h"

namespace ambient {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// LogSink receives (level, component, message). The views are valid only
// during the call. Which thread calls it is documented by the object using it.
using LogSink = std::function<void(LogLevel, absl::string_view, absl::string_view)>;

}  // namespace ambient

#endif  // AMBIENT_BASE_LOG_H_
