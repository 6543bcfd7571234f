// The DNS proxy's answer logic (ambient/dns/answer.h) on queries built with
// ldns, as dig would send them, against a directory filled like the demo's.
#include "ambient/dns/answer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include "dns/ldns_headers.h"

#include <cstdlib>
#include <set>
#include <string>

#include "absl/strings/ascii.h"

namespace ambient::dns {
namespace {

using runtime::NetworkAddress;
using runtime::Service;
using runtime::Workload;
using runtime::WorkloadDirectory;
using Action = AnswerResult::Action;

std::string Query(const std::string& name, ldns_rr_type type, uint16_t id = 0x4242,
                  bool edns = false) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&p, name.c_str(), type, LDNS_RR_CLASS_IN, LDNS_RD),
            LDNS_STATUS_OK);
  ldns_pkt_set_id(p, id);
  if (edns) ldns_pkt_set_edns_udp_size(p, 4096);
  uint8_t* wire = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, p, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(wire), size);
  free(wire);
  ldns_pkt_free(p);
  return out;
}

struct Reply {
  uint16_t id = 0;
  int rcode = -1;
  bool aa = false, tc = false, qr = false;
  std::string qname;
  std::set<std::string> addrs;
  std::set<uint32_t> ttls;
};

Reply Parse(const std::string& wire) {
  Reply r;
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()),
            LDNS_STATUS_OK);
  if (p == nullptr) return r;
  r.id = ldns_pkt_id(p);
  r.rcode = ldns_pkt_get_rcode(p);
  r.aa = ldns_pkt_aa(p);
  r.tc = ldns_pkt_tc(p);
  r.qr = ldns_pkt_qr(p);
  if (ldns_rr_list_rr_count(ldns_pkt_question(p)) == 1) {
    char* s = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
    r.qname = s;
    free(s);
  }
  ldns_rr_list* ans = ldns_pkt_answer(p);
  for (size_t i = 0; i < ldns_rr_list_rr_count(ans); ++i) {
    ldns_rr* rr = ldns_rr_list_rr(ans, i);
    char* s = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    r.addrs.insert(s);
    free(s);
    r.ttls.insert(ldns_rr_ttl(rr));
  }
  ldns_pkt_free(p);
  return r;
}

class DnsAnswerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Service reviews;
    reviews.name = "reviews";
    reviews.ns = "bookinfo";
    reviews.hostname = "reviews.bookinfo.svc.cluster.local";
    reviews.vips = {*runtime::ParseNetworkAddress("198.19.0.10"),
                    *runtime::ParseNetworkAddress("2001:db8:ffff::10"),
                    *runtime::ParseNetworkAddress("other/198.19.9.9")};
    reviews.ports = {{9080, 9080}};
    ASSERT_TRUE(dir.UpsertService(reviews).ok());

    Service db;  // headless
    db.name = "db";
    db.ns = "data";
    db.hostname = "db.data.svc.cluster.local";
    db.ports = {{5432, 5432}};
    ASSERT_TRUE(dir.UpsertService(db).ok());
    for (int i = 0; i < 3; ++i) {
      Workload w;
      w.uid = "db-" + std::to_string(i);
      w.name = "db-" + std::to_string(i);
      w.ns = "data";
      w.addresses = {"198.18.1." + std::to_string(10 + i)};
      w.healthy = i != 2;
      w.services["data/db.data.svc.cluster.local"] = {};
      ASSERT_TRUE(dir.Upsert(w).ok());
    }

    Service se;  // a ServiceEntry with a VIP no cluster DNS knows
    se.name = "api";
    se.ns = "bookinfo";
    se.hostname = "api.example.com";
    se.vips = {*runtime::ParseNetworkAddress("240.240.0.1")};
    se.ports = {{443, 443}};
    ASSERT_TRUE(dir.UpsertService(se).ok());

    Service wild;
    wild.name = "wild";
    wild.ns = "bookinfo";
    wild.hostname = "*.wild.example.org";
    wild.vips = {*runtime::ParseNetworkAddress("240.240.0.2")};
    wild.ports = {{80, 80}};
    ASSERT_TRUE(dir.UpsertService(wild).ok());

    pod.ns = "bookinfo";
  }

  Reply Ask(const std::string& name, ldns_rr_type type, Transport t = Transport::kUdp) {
    AnswerResult r = Answer(Query(name, type), dir, pod, t);
    EXPECT_EQ(r.action, Action::kReply) << name;
    return Parse(r.reply);
  }

  WorkloadDirectory dir;
  PodDnsContext pod;
};

TEST_F(DnsAnswerTest, ServiceHostnameGetsVipsOfThePodsNetworkWithShortTtl) {
  Reply r = Ask("reviews.bookinfo.svc.cluster.local.", LDNS_RR_TYPE_A);
  EXPECT_EQ(r.id, 0x4242);
  EXPECT_TRUE(r.qr);
  EXPECT_TRUE(r.aa);
  EXPECT_EQ(r.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(r.qname, "reviews.bookinfo.svc.cluster.local.");
  EXPECT_THAT(r.addrs, ::testing::ElementsAre("198.19.0.10"));
  EXPECT_THAT(r.ttls, ::testing::ElementsAre(kMeshTtlSeconds));
  Reply six = Ask("reviews.bookinfo.svc.cluster.local.", LDNS_RR_TYPE_AAAA);
  EXPECT_THAT(six.addrs, ::testing::ElementsAre("2001:db8:ffff::10"));
}

TEST_F(DnsAnswerTest, KubernetesShortFormsResolveThroughThePodsNamespace) {
  for (const char* name :
       {"reviews.", "reviews.bookinfo.", "reviews.bookinfo.svc.",
        "REVIEWS.Bookinfo.svc.cluster.local.",
        // what a stub resolver sends walking the search list
        "reviews.bookinfo.svc.cluster.local.", "reviews.bookinfo.bookinfo.svc.cluster.local.",
        "reviews.bookinfo.svc.cluster.local.svc.cluster.local."}) {
    Reply r = Ask(name, LDNS_RR_TYPE_A);
    EXPECT_THAT(r.addrs, ::testing::ElementsAre("198.19.0.10")) << name;
    // The answer is for the name asked, as the client expects.
    EXPECT_EQ(absl::AsciiStrToLower(r.qname), absl::AsciiStrToLower(name));
  }
  // From another namespace the bare name is not this service.
  pod.ns = "other";
  AnswerResult r = Answer(Query("reviews.", LDNS_RR_TYPE_A), dir, pod, Transport::kUdp);
  EXPECT_EQ(r.action, Action::kForward);
  EXPECT_THAT(Ask("reviews.bookinfo.", LDNS_RR_TYPE_A).addrs,
              ::testing::ElementsAre("198.19.0.10"));
}

TEST_F(DnsAnswerTest, PodSearchDomainsAreHonoured) {
  pod.search_domains = {"corp.example."};
  EXPECT_THAT(Ask("api.example.com.corp.example.", LDNS_RR_TYPE_A).addrs,
              ::testing::ElementsAre("240.240.0.1"));
}

TEST_F(DnsAnswerTest, ServiceEntryHostAndWildcard) {
  EXPECT_THAT(Ask("api.example.com.", LDNS_RR_TYPE_A).addrs, ::testing::ElementsAre("240.240.0.1"));
  EXPECT_THAT(Ask("a.b.wild.example.org.", LDNS_RR_TYPE_A).addrs,
              ::testing::ElementsAre("240.240.0.2"));
  AnswerResult r = Answer(Query("wild.example.org.", LDNS_RR_TYPE_A), dir, pod, Transport::kUdp);
  EXPECT_EQ(r.action, Action::kForward);
}

TEST_F(DnsAnswerTest, HeadlessServiceGetsHealthyEndpointsAndPodHostnames) {
  EXPECT_THAT(Ask("db.data.svc.cluster.local.", LDNS_RR_TYPE_A).addrs,
              ::testing::ElementsAre("198.18.1.10", "198.18.1.11"));
  EXPECT_THAT(Ask("db-1.db.data.svc.cluster.local.", LDNS_RR_TYPE_A).addrs,
              ::testing::ElementsAre("198.18.1.11"));
  EXPECT_THAT(Ask("db-0.db.data.", LDNS_RR_TYPE_A).addrs, ::testing::ElementsAre("198.18.1.10"));
}

TEST_F(DnsAnswerTest, OtherTypesAndMissingFamiliesOfOwnedNamesAreNodata) {
  for (ldns_rr_type t : {LDNS_RR_TYPE_MX, LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_SRV}) {
    Reply r = Ask("reviews.bookinfo.svc.cluster.local.", t);
    EXPECT_EQ(r.rcode, LDNS_RCODE_NOERROR);
    EXPECT_TRUE(r.addrs.empty());
  }
  Reply r = Ask("api.example.com.", LDNS_RR_TYPE_AAAA);
  EXPECT_EQ(r.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(r.addrs.empty());
}

TEST_F(DnsAnswerTest, UnknownNamesAreForwarded) {
  for (const char* name : {"example.com.", "nope.bookinfo.svc.cluster.local.", "nope."}) {
    AnswerResult r = Answer(Query(name, LDNS_RR_TYPE_A), dir, pod, Transport::kUdp);
    EXPECT_EQ(r.action, Action::kForward) << name;
    EXPECT_TRUE(r.reply.empty());
  }
}

TEST_F(DnsAnswerTest, MalformedQueriesGetFormerrOrAreDropped) {
  EXPECT_EQ(Answer("", dir, pod, Transport::kUdp).action, Action::kDrop);
  EXPECT_EQ(Answer("\x12\x34\x01", dir, pod, Transport::kUdp).action, Action::kDrop);
  // A header announcing a question that is not there.
  std::string q("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
  AnswerResult r = Answer(q, dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  Reply p = Parse(r.reply);
  EXPECT_EQ(p.id, 0x1234);
  EXPECT_EQ(p.rcode, LDNS_RCODE_FORMERR);
  // A truncated name.
  std::string good = Query("reviews.bookinfo.", LDNS_RR_TYPE_A, 0x7777);
  r = Answer(good.substr(0, good.size() - 6), dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, LDNS_RCODE_FORMERR);
  // Two questions.
  std::string two = good;
  two[5] = 2;
  r = Answer(two, dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, LDNS_RCODE_FORMERR);
  // A response is not a query.
  std::string resp = good;
  resp[2] = static_cast<char>(resp[2] | 0x80);
  EXPECT_EQ(Answer(resp, dir, pod, Transport::kUdp).action, Action::kDrop);
}

TEST_F(DnsAnswerTest, BigUdpAnswersAreTruncatedAndWholeOverTcp) {
  for (int i = 0; i < 60; ++i) {
    Workload w;
    w.uid = "big-" + std::to_string(i);
    w.name = w.uid;
    w.ns = "data";
    w.addresses = {"2001:db8:1::" + std::to_string(100 + i)};
    w.services["data/db.data.svc.cluster.local"] = {};
    ASSERT_TRUE(dir.Upsert(w).ok());
  }
  AnswerResult udp =
      Answer(Query("db.data.svc.cluster.local.", LDNS_RR_TYPE_AAAA), dir, pod, Transport::kUdp);
  ASSERT_EQ(udp.action, Action::kReply);
  EXPECT_LE(udp.reply.size(), 512u);
  Reply u = Parse(udp.reply);
  EXPECT_TRUE(u.tc);
  EXPECT_TRUE(u.addrs.empty());
  AnswerResult tcp =
      Answer(Query("db.data.svc.cluster.local.", LDNS_RR_TYPE_AAAA), dir, pod, Transport::kTcp);
  Reply t = Parse(tcp.reply);
  EXPECT_FALSE(t.tc);
  EXPECT_EQ(t.addrs.size(), 60u);
  // EDNS raises the UDP bound.
  AnswerResult edns =
      Answer(Query("db.data.svc.cluster.local.", LDNS_RR_TYPE_AAAA, 1, /*edns=*/true), dir, pod,
             Transport::kUdp);
  EXPECT_FALSE(Parse(edns.reply).tc);
  EXPECT_EQ(Parse(edns.reply).addrs.size(), 60u);
}

TEST_F(DnsAnswerTest, ServfailKeepsIdAndQuestion) {
  Reply r = Parse(ServfailFor(Query("example.com.", LDNS_RR_TYPE_A, 0x9999)));
  EXPECT_EQ(r.id, 0x9999);
  EXPECT_EQ(r.rcode, LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(r.qname, "example.com.");
  EXPECT_EQ(ServfailFor("abc"), "");
}

}  // namespace
}  // namespace ambient::dns
