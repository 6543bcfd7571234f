// ambient/dns/answer.h: the DNS proxy's answer logic, sans-IO.
//
// A pod's DNS query (the bytes of one message) is answered from the
// workload directory when it asks for a name the mesh owns, as ztunnel's DNS
// proxy does (its src/dns/), or handed back as "forward" for the upstream
// resolvers. Names the mesh owns:
//  - service hostnames (Service::hostname, any namespace; the pod's own
//    namespace wins), answered with the service's VIPs on the pod's network;
//  - the Kubernetes short forms of a service "name.ns.svc.<cluster domain>":
//    "name" (through the pod's namespace), "name.ns", "name.ns.svc", and any
//    of them with one of the pod's search domains appended (what a stub
//    resolver sends when it walks the search list);
//  - headless services (no VIP): the addresses of their healthy endpoints;
//  - workload hostnames "<workload name>.<service hostname>" of a service's
//    endpoints (the Kubernetes form for pods of a headless service), with
//    that workload's addresses;
//  - wildcard hosts "*.example.com" (ServiceEntry), matching any deeper name.
// A and AAAA questions get the matching addresses (TTL 30 s, as ztunnel);
// every other type of an owned name, or a family the name has no address
// of, gets NODATA (NOERROR with no answer). Everything else is forwarded.
//
// Messages are parsed and built with glibc's libresolv (ns_initparse,
// ns_parserr, dn_comp; no OpenSSL). Malformed queries with a readable header
// (any section that does not parse, bytes after the last one, not exactly
// one question) get FORMERR; opcodes other than QUERY get NOTIMP with their
// opcode; shorter messages, and messages that are responses, are dropped.
// The reply's question is the query's, byte for byte (case kept). No input crashes or leaks
// (fuzz/dns/fuzz_dns_query.cc).
//
// Threads: Answer is a pure function of its arguments; it takes a short read
// lock on the directory.
#ifndef AMBIENT_DNS_ANSWER_H_
#define AMBIENT_DNS_ANSWER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ambient/runtime/workload_directory.h"

namespace ambient::dns {

// kMeshTtlSeconds is the TTL of the records the proxy answers itself.
inline constexpr uint32_t kMeshTtlSeconds = 30;

// PodDnsContext is what the proxy knows of the pod that asked.
struct PodDnsContext {
  std::string ns;       // the pod's namespace
  std::string network;  // the pod's network ("" = default)
  std::string cluster_domain = "cluster.local";
  // The pod's resolv.conf search list; empty: Kubernetes' default
  // "<ns>.svc.<cluster domain>", "svc.<cluster domain>", "<cluster domain>".
  std::vector<std::string> search_domains;
};

// Transport is how the query came: UDP answers are bounded by 512 bytes or
// the client's EDNS buffer size and are truncated (TC set, no answers)
// beyond it; TCP answers are bounded by 65535.
enum class Transport { kUdp, kTcp };

struct AnswerResult {
  enum class Action {
    kReply,    // send `reply` to the pod
    kForward,  // not a mesh name: forward the query unchanged upstream
    kDrop,     // not answerable at all (no header, or not a query)
  };
  Action action = Action::kDrop;
  std::string reply;     // the wire bytes when kReply
  int rcode = 0;         // the reply's RCODE (0 NOERROR, 1 FORMERR, 4 NOTIMP)
  int answer_count = 0;  // records in the answer section
  std::string qname;     // the question, lowercase without the final dot ("" if none)
  uint16_t qtype = 0;
};

// Answer decides what to do with `query` (one DNS message, without TCP's
// length prefix) from pod `pod`.
AnswerResult Answer(absl::string_view query, const runtime::WorkloadDirectory& dir,
                    const PodDnsContext& pod, Transport transport);

// ServfailFor builds a SERVFAIL reply to `query` (same ID and question), for
// when the upstream failed or timed out; empty when `query` has no header.
std::string ServfailFor(absl::string_view query);

}  // namespace ambient::dns

#endif  // AMBIENT_DNS_ANSWER_H_
