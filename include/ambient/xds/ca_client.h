// ambient/xds/ca_client.h: the Istio CA's CreateCertificate, sans I/O.
//
// ztunnel gets every workload certificate from istiod's CA: a P-256 key made
// and kept in the process, a CSR with an empty subject and the pod's SPIFFE
// ID as its only (critical) URI SAN, sent in an IstioCertificateRequest with
// the wanted lifetime and, when the node proxy asks on a pod's behalf,
// metadata {"ImpersonatedIdentity": "<spiffe id>"}, over the unary gRPC call
// kCaMethod (with the same bearer token and clusterid headers as xDS). The
// answer is a PEM chain, leaf first, whose last element is the workload
// trust root (not necessarily the root the xDS connection trusts). These
// calls build the request and check the answer; the host makes the call
// (grpc::Channel) and decides when (Credentials::refresh_at is half the
// lifetime, as ztunnel refreshes).
//
// Threads: any; the calls share no state.
#ifndef AMBIENT_XDS_CA_CLIENT_H_
#define AMBIENT_XDS_CA_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ambient/identity/credentials.h"
#include "ambient/identity/spiffe_id.h"

namespace ambient::xds {

inline constexpr char kCaMethod[] = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

struct CertificateSigningRequest {
  identity::SpiffeId id;
  std::string csr_pem;
  std::string key_pem;  // PKCS#8; never leaves the process
};

// MakeCsr makes a new P-256 key and a CSR for `id` as ztunnel does.
// Errors: Internal when the TLS library fails.
absl::StatusOr<CertificateSigningRequest> MakeCsr(const identity::SpiffeId& id);

// EncodeCertificateRequest serializes the IstioCertificateRequest for `csr`
// with `validity` (whole seconds, at least 1) and, when `impersonate`, the
// ImpersonatedIdentity metadata naming csr.id.
std::string EncodeCertificateRequest(const CertificateSigningRequest& csr, absl::Duration validity,
                                     bool impersonate);

struct IssuedCertificate {
  std::shared_ptr<const identity::Credentials> credentials;  // leaf + intermediates + key
  std::string root_pem;  // the chain's last element: the workload trust root
};

// DecodeCertificateResponse reads an IstioCertificateResponse answering
// `csr` and checks it before anything uses it: at least one certificate;
// the leaf's key is csr's; the leaf names exactly csr.id; the chain
// verifies up to its own last element (the root) at `now_unix` under
// ztunnel's SVID rules. Errors: InvalidArgument (undecodable, empty, or a
// PEM that does not parse), PermissionDenied (another identity, or a chain
// that does not verify) with the reason.
absl::StatusOr<IssuedCertificate> DecodeCertificateResponse(absl::string_view bytes,
                                                            const CertificateSigningRequest& csr,
                                                            int64_t now_unix);

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_CA_CLIENT_H_
