// Test support: the PEM files an HBONE server and client are started with,
// written into a TempDir from the in-memory test CA (tests/hbone/test_pki.h):
// ca.pem, server.pem + server.key, client.pem + client.key.
#ifndef AMBIENT_TESTS_SUPPORT_HBONE_PKI_FILES_H_
#define AMBIENT_TESTS_SUPPORT_HBONE_PKI_FILES_H_

#include <string>

#include "hbone/test_pki.h"
#include "support/temp_dir.h"

namespace ambient::test_support {

// WriteHbonePki writes `ca`'s certificate and a leaf for `server_id` and one
// for `client_id` (certificate and key each) into `dir`.
inline void WriteHbonePki(const TempDir& dir, const hbone::testing::TestCa& ca,
                          const std::string& server_id, const std::string& client_id) {
  using hbone::testing::KeyAndCert;
  using hbone::testing::TestCa;
  dir.Write("ca.pem", ca.CaPem());
  KeyAndCert server = ca.Leaf(server_id);
  KeyAndCert client = ca.Leaf(client_id);
  dir.Write("server.pem", TestCa::CertPem(server));
  dir.Write("server.key", TestCa::KeyPem(server));
  dir.Write("client.pem", TestCa::CertPem(client));
  dir.Write("client.key", TestCa::KeyPem(client));
}

}  // namespace ambient::test_support

#endif  // AMBIENT_TESTS_SUPPORT_HBONE_PKI_FILES_H_
