// ambient/xds/address_handler.h: istio.workload.Address resources into a
// runtime::WorkloadDirectory.
//
// Object model. An AddressHandler is the TypeHandler (delta_ads.h) for
// type.googleapis.com/istio.workload.Address. Each resource is an Address
// holding a Workload (resource name = the workload's uid) or a Service
// (resource name = "namespace/hostname"). It is decoded and converted as
// ztunnel converts it (DecodeAddress below), then upserted into the borrowed
// directory. A resource that does not decode, does not convert, or that the
// directory refuses is rejected as "reason" (the session NACKs with
// "name: reason") and changes nothing; the others are applied. A removed name
// is forgotten as ztunnel forgets it: the workload with that uid, else the
// service "namespace/hostname" (a name whose hostname part holds a '/' is a
// workload uid and never a service); unknown names are ignored.
//
// Threads: Apply runs on one thread at a time (the session's); the directory
// itself is thread-safe, so readers may use it meanwhile.
#ifndef AMBIENT_XDS_ADDRESS_HANDLER_H_
#define AMBIENT_XDS_ADDRESS_HANDLER_H_

#include <string>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ambient/runtime/workload_directory.h"
#include "ambient/xds/delta_ads.h"

namespace ambient::xds {

// DecodeAddress decodes one binary istio.workload.Address and converts it to
// the directory's Workload or Service the way ztunnel does:
//   - addresses are 4 (IPv4) or 16 (IPv6) raw bytes;
//   - tunnel_protocol NONE is plain TCP, HBONE is HBONE, LEGACY_ISTIO_MTLS is
//     refused ("unsupported tunnel protocol: legacy istio mtls");
//   - an empty trust_domain is "cluster.local", an empty service_account
//     "default", an empty cluster_id "Kubernetes", an unset capacity 1;
//   - a waypoint (or network gateway) needs an address or a hostname;
//   - `services` keys are "namespace/hostname", each with its PortList;
//   - a Service's namespace and hostname hold no '/' (its resource name must
//     split back into the two);
//   - Service VIPs are network/address pairs; a prefix length shorter than
//     the address (a CIDR VIP) is refused, the directory has none;
//   - load-balancing scopes other than REGION..NETWORK are refused;
//   - enum values the proto does not define and ports above 65535 are refused.
// Errors: InvalidArgument naming the field, e.g. "workload addresses[1]: 5
// bytes, want 4 (IPv4) or 16 (IPv6)". Nothing is checked that the directory
// checks itself on upsert (empty names, SPIFFE parts, address owners).
absl::StatusOr<std::variant<runtime::Workload, runtime::Service>> DecodeAddress(
    absl::string_view bytes);

class AddressHandler : public TypeHandler {
 public:
  // `directory` is borrowed and must outlive the handler.
  explicit AddressHandler(runtime::WorkloadDirectory* directory) : directory_(directory) {}

  // Apply upserts each update, then forgets each removed name (see above).
  // A rejection's reason is DecodeAddress's or the directory's error message,
  // or "resource name must be the workload uid \"U\"" / "... the service's
  // \"namespace/hostname\" \"K\"" when the name does not match the content.
  std::vector<Rejection> Apply(const std::vector<ResourceUpdate>& updates,
                               const std::vector<std::string>& removed) override;

 private:
  runtime::WorkloadDirectory* directory_;
};

}  // namespace ambient::xds

#endif  // AMBIENT_XDS_ADDRESS_HANDLER_H_
