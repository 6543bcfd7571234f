// Access records of the runtime's HBONE objects: counted and logged in one
// place (the records themselves are built with hbone::RecordBuilder).
#ifndef AMBIENT_LIB_RUNTIME_HBONE_RECORDS_H_
#define AMBIENT_LIB_RUNTIME_HBONE_RECORDS_H_

#include <memory>

#include "ambient/base/log.h"
#include "ambient/hbone/record.h"
#include "ambient/hbone/telemetry.h"

namespace ambient::runtime {

// EmitRecord counts a finished tunnel's `record` in `metrics` (when given)
// and logs its access line on `log` (component "access"; INFO, or ERROR
// when the record carries an error).
void EmitRecord(const LogSink& log, const std::shared_ptr<hbone::Metrics>& metrics,
                const hbone::ConnectionRecord& record);

}  // namespace ambient::runtime

#endif  // AMBIENT_LIB_RUNTIME_HBONE_RECORDS_H_
