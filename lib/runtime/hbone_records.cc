#include "runtime/hbone_records.h"

namespace ambient::runtime {

void EmitRecord(const LogSink& log, const std::shared_ptr<hbone::Metrics>& metrics,
                const hbone::ConnectionRecord& record) {
  if (metrics) metrics->ConnectionClosed(record);
  if (log) {
    log(record.error.ok() ? LogLevel::kInfo : LogLevel::kError, "access",
        hbone::FormatAccessLog(record));
  }
}

}  // namespace ambient::runtime
