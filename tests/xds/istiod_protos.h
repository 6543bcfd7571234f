// tests/xds/istiod_protos.h: the python modules tests/xds/fake_istiod.py
// imports (discovery_pb2, workload_pb2, authorization_pb2), generated with
// protoc from the library's own .proto files into a test's temp directory.
#ifndef AMBIENT_TESTS_XDS_ISTIOD_PROTOS_H_
#define AMBIENT_TESTS_XDS_ISTIOD_PROTOS_H_

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"

namespace ambient::xds::test_istiod {

// GenerateProtos writes the modules into `dir`; the protoc command line on
// failure, "" on success.
inline std::string GenerateProtos(const std::string& dir) {
  std::string protoc =
      absl::StrCat("protoc --python_out=", dir, " -I ", AMBIENT_SOURCE_DIR, "/lib/xds -I ",
                   AMBIENT_SOURCE_DIR, "/lib/authz -I /usr/include ", AMBIENT_SOURCE_DIR,
                   "/lib/xds/discovery.proto ", AMBIENT_SOURCE_DIR, "/lib/xds/workload.proto ",
                   AMBIENT_SOURCE_DIR, "/lib/xds/ca.proto ",
                   AMBIENT_SOURCE_DIR, "/lib/authz/authorization.proto");
  return std::system(protoc.c_str()) == 0 ? "" : protoc;
}

}  // namespace ambient::xds::test_istiod

#endif  // AMBIENT_TESTS_XDS_ISTIOD_PROTOS_H_
