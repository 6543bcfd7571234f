// The DNS proxy's answer logic (ambient/dns/answer.h) on queries built with
// libresolv's res_mkquery, as a stub resolver would send them, against a
// directory filled like the demo's.
#include "ambient/dns/answer.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "absl/strings/ascii.h"

// libresolv last: its headers define short macros (QUERY, NOERROR, T_A...).
#include <arpa/nameser.h>
#include <resolv.h>

namespace ambient::dns {
namespace {

using runtime::NetworkAddress;
using runtime::Service;
using runtime::Workload;
using runtime::WorkloadDirectory;
using Action = AnswerResult::Action;

// The EDNS OPT record a client appends: root name, type 41, UDP size 4096.
const std::string kOpt4096("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00", 11);

std::string Query(const std::string& name, ns_type type, uint16_t id = 0x4242, bool edns = false) {
  unsigned char buf[NS_PACKETSZ];
  int n =
      res_mkquery(ns_o_query, name.c_str(), ns_c_in, type, nullptr, 0, nullptr, buf, sizeof(buf));
  EXPECT_GT(n, 0) << name;
  if (n <= 0) return "";
  std::string out(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
  out[0] = static_cast<char>(id >> 8);
  out[1] = static_cast<char>(id & 0xff);
  out[2] = static_cast<char>(out[2] | 0x01);  // RD, as a stub resolver sends
  if (edns) {
    out[11] = 1;  // ARCOUNT
    out += kOpt4096;
  }
  return out;
}

struct Reply {
  uint16_t id = 0;
  int rcode = -1;
  int opcode = -1;
  bool aa = false, tc = false, qr = false, rd = false, edns = false;
  std::string qname;  // with the final dot
  std::set<std::string> addrs;
  std::set<uint32_t> ttls;
};

Reply Parse(const std::string& wire) {
  Reply r;
  ns_msg h;
  EXPECT_EQ(ns_initparse(reinterpret_cast<const unsigned char*>(wire.data()),
                         static_cast<int>(wire.size()), &h),
            0);
  r.id = ns_msg_id(h);
  r.rcode = ns_msg_getflag(h, ns_f_rcode);
  r.opcode = ns_msg_getflag(h, ns_f_opcode);
  r.aa = ns_msg_getflag(h, ns_f_aa);
  r.tc = ns_msg_getflag(h, ns_f_tc);
  r.qr = ns_msg_getflag(h, ns_f_qr);
  r.rd = ns_msg_getflag(h, ns_f_rd);
  ns_rr rr;
  if (ns_msg_count(h, ns_s_qd) == 1 && ns_parserr(&h, ns_s_qd, 0, &rr) == 0) {
    r.qname = std::string(ns_rr_name(rr)) + ".";
  }
  for (int i = 0; i < ns_msg_count(h, ns_s_an); ++i) {
    EXPECT_EQ(ns_parserr(&h, ns_s_an, i, &rr), 0);
    char text[INET6_ADDRSTRLEN] = "?";
    int family = ns_rr_rdlen(rr) == 4 ? AF_INET : ns_rr_rdlen(rr) == 16 ? AF_INET6 : 0;
    EXPECT_NE(family, 0);
    if (family != 0) inet_ntop(family, ns_rr_rdata(rr), text, sizeof(text));
    r.addrs.insert(text);
    r.ttls.insert(ns_rr_ttl(rr));
  }
  for (int i = 0; i < ns_msg_count(h, ns_s_ar); ++i) {
    EXPECT_EQ(ns_parserr(&h, ns_s_ar, i, &rr), 0);
    if (ns_rr_type(rr) == ns_t_opt) r.edns = true;
  }
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

  Reply Ask(const std::string& name, ns_type type, Transport t = Transport::kUdp) {
    AnswerResult r = Answer(Query(name, type), dir, pod, t);
    EXPECT_EQ(r.action, Action::kReply) << name;
    return Parse(r.reply);
  }

  WorkloadDirectory dir;
  PodDnsContext pod;
};

TEST_F(DnsAnswerTest, ServiceHostnameGetsVipsOfThePodsNetworkWithShortTtl) {
  Reply r = Ask("reviews.bookinfo.svc.cluster.local.", ns_t_a);
  EXPECT_EQ(r.id, 0x4242);
  EXPECT_TRUE(r.qr);
  EXPECT_TRUE(r.aa);
  EXPECT_EQ(r.rcode, ns_r_noerror);
  EXPECT_EQ(r.qname, "reviews.bookinfo.svc.cluster.local.");
  EXPECT_THAT(r.addrs, ::testing::ElementsAre("198.19.0.10"));
  EXPECT_THAT(r.ttls, ::testing::ElementsAre(kMeshTtlSeconds));
  Reply six = Ask("reviews.bookinfo.svc.cluster.local.", ns_t_aaaa);
  EXPECT_THAT(six.addrs, ::testing::ElementsAre("2001:db8:ffff::10"));
}

TEST_F(DnsAnswerTest, KubernetesShortFormsResolveThroughThePodsNamespace) {
  for (const char* name :
       {"reviews.", "reviews.bookinfo.", "reviews.bookinfo.svc.",
        "REVIEWS.Bookinfo.svc.cluster.local.",
        // what a stub resolver sends walking the search list
        "reviews.bookinfo.svc.cluster.local.", "reviews.bookinfo.bookinfo.svc.cluster.local.",
        "reviews.bookinfo.svc.cluster.local.svc.cluster.local."}) {
    Reply r = Ask(name, ns_t_a);
    EXPECT_THAT(r.addrs, ::testing::ElementsAre("198.19.0.10")) << name;
    // The answer is for the name asked, as the client expects.
    EXPECT_EQ(absl::AsciiStrToLower(r.qname), absl::AsciiStrToLower(name));
  }
  // From another namespace the bare name is not this service.
  pod.ns = "other";
  AnswerResult r = Answer(Query("reviews.", ns_t_a), dir, pod, Transport::kUdp);
  EXPECT_EQ(r.action, Action::kForward);
  EXPECT_THAT(Ask("reviews.bookinfo.", ns_t_a).addrs, ::testing::ElementsAre("198.19.0.10"));
}

TEST_F(DnsAnswerTest, PodSearchDomainsAreHonoured) {
  pod.search_domains = {"corp.example."};
  EXPECT_THAT(Ask("api.example.com.corp.example.", ns_t_a).addrs,
              ::testing::ElementsAre("240.240.0.1"));
}

TEST_F(DnsAnswerTest, ServiceEntryHostAndWildcard) {
  EXPECT_THAT(Ask("api.example.com.", ns_t_a).addrs, ::testing::ElementsAre("240.240.0.1"));
  EXPECT_THAT(Ask("a.b.wild.example.org.", ns_t_a).addrs, ::testing::ElementsAre("240.240.0.2"));
  AnswerResult r = Answer(Query("wild.example.org.", ns_t_a), dir, pod, Transport::kUdp);
  EXPECT_EQ(r.action, Action::kForward);
}

TEST_F(DnsAnswerTest, HeadlessServiceGetsHealthyEndpointsAndPodHostnames) {
  EXPECT_THAT(Ask("db.data.svc.cluster.local.", ns_t_a).addrs,
              ::testing::ElementsAre("198.18.1.10", "198.18.1.11"));
  EXPECT_THAT(Ask("db-1.db.data.svc.cluster.local.", ns_t_a).addrs,
              ::testing::ElementsAre("198.18.1.11"));
  EXPECT_THAT(Ask("db-0.db.data.", ns_t_a).addrs, ::testing::ElementsAre("198.18.1.10"));
}

TEST_F(DnsAnswerTest, OtherTypesAndMissingFamiliesOfOwnedNamesAreNodata) {
  for (ns_type t : {ns_t_mx, ns_t_txt, ns_t_srv}) {
    Reply r = Ask("reviews.bookinfo.svc.cluster.local.", t);
    EXPECT_EQ(r.rcode, ns_r_noerror);
    EXPECT_TRUE(r.addrs.empty());
  }
  Reply r = Ask("api.example.com.", ns_t_aaaa);
  EXPECT_EQ(r.rcode, ns_r_noerror);
  EXPECT_TRUE(r.addrs.empty());
}

TEST_F(DnsAnswerTest, UnknownNamesAreForwarded) {
  for (const char* name : {"example.com.", "nope.bookinfo.svc.cluster.local.", "nope."}) {
    AnswerResult r = Answer(Query(name, ns_t_a), dir, pod, Transport::kUdp);
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
  EXPECT_EQ(p.rcode, ns_r_formerr);
  // A truncated name.
  std::string good = Query("reviews.bookinfo.", ns_t_a, 0x7777);
  r = Answer(good.substr(0, good.size() - 6), dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, ns_r_formerr);
  // Two questions.
  std::string two = good;
  two[5] = 2;
  r = Answer(two, dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, ns_r_formerr);
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
      Answer(Query("db.data.svc.cluster.local.", ns_t_aaaa), dir, pod, Transport::kUdp);
  ASSERT_EQ(udp.action, Action::kReply);
  EXPECT_LE(udp.reply.size(), 512u);
  Reply u = Parse(udp.reply);
  EXPECT_TRUE(u.tc);
  EXPECT_TRUE(u.addrs.empty());
  AnswerResult tcp =
      Answer(Query("db.data.svc.cluster.local.", ns_t_aaaa), dir, pod, Transport::kTcp);
  Reply t = Parse(tcp.reply);
  EXPECT_FALSE(t.tc);
  EXPECT_EQ(t.addrs.size(), 60u);
  // EDNS raises the UDP bound.
  AnswerResult edns = Answer(Query("db.data.svc.cluster.local.", ns_t_aaaa, 1, /*edns=*/true), dir,
                             pod, Transport::kUdp);
  EXPECT_FALSE(Parse(edns.reply).tc);
  EXPECT_EQ(Parse(edns.reply).addrs.size(), 60u);
}

TEST_F(DnsAnswerTest, ServfailKeepsIdAndQuestion) {
  Reply r = Parse(ServfailFor(Query("example.com.", ns_t_a, 0x9999)));
  EXPECT_EQ(r.id, 0x9999);
  EXPECT_EQ(r.rcode, ns_r_servfail);
  EXPECT_EQ(r.qname, "example.com.");
  EXPECT_EQ(ServfailFor("abc"), "");
}

TEST_F(DnsAnswerTest, MalformedRecordsAnywhereInTheQueryGetFormerr) {
  std::string good = Query("reviews.bookinfo.", ns_t_a, 0x5151);
  // Bytes after the last section.
  AnswerResult r = Answer(good + "xyz", dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, ns_r_formerr);
  EXPECT_EQ(Parse(r.reply).id, 0x5151);
  // An additional record whose name is a compression pointer to itself.
  std::string loop = good;
  loop[11] = 1;
  size_t at = loop.size();
  loop.push_back(static_cast<char>(0xc0 | (at >> 8)));
  loop.push_back(static_cast<char>(at & 0xff));
  loop.append("\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", 10);
  r = Answer(loop, dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, ns_r_formerr);
  // A question name that points forward past the end.
  std::string bad("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x40\x00\x01\x00\x01", 18);
  r = Answer(bad, dir, pod, Transport::kTcp);
  ASSERT_EQ(r.action, Action::kReply);
  EXPECT_EQ(Parse(r.reply).rcode, ns_r_formerr);
}

TEST_F(DnsAnswerTest, OtherOpcodesGetNotimpWithTheirOpcode) {
  std::string q = Query("reviews.bookinfo.", ns_t_a, 0x6262);
  q[2] = static_cast<char>((q[2] & 0x87) | (ns_o_notify << 3));
  AnswerResult r = Answer(q, dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  Reply p = Parse(r.reply);
  EXPECT_EQ(p.rcode, ns_r_notimpl);
  EXPECT_EQ(p.opcode, ns_o_notify);
  EXPECT_EQ(p.id, 0x6262);
  EXPECT_TRUE(p.qr);
}

TEST_F(DnsAnswerTest, ReplyKeepsTheQuestionAsSentAndCompressesAnswers) {
  // Mixed case (0x20 randomisation) comes back byte for byte.
  Reply r = Ask("ReViEwS.bookinfo.", ns_t_a);
  EXPECT_EQ(r.qname, "ReViEwS.bookinfo.");
  EXPECT_TRUE(r.rd);
  EXPECT_THAT(r.addrs, ::testing::ElementsAre("198.19.0.10"));
  // Two answers each naming the question by a 2-byte pointer: header,
  // question ("\x02db\x04data\x00" + type + class), 2 x (pointer + type,
  // class, TTL, length + 4 address bytes).
  AnswerResult two = Answer(Query("db.data.", ns_t_a), dir, pod, Transport::kUdp);
  ASSERT_EQ(two.answer_count, 2);  // db-2 is unhealthy
  EXPECT_EQ(two.reply.size(), 12u + (9 + 4) + 2 * (2 + 10 + 4));
}

TEST_F(DnsAnswerTest, EdnsQueriesGetAnOptRecordBack) {
  EXPECT_FALSE(Ask("reviews.bookinfo.", ns_t_a).edns);
  AnswerResult r =
      Answer(Query("reviews.bookinfo.", ns_t_a, 1, /*edns=*/true), dir, pod, Transport::kUdp);
  ASSERT_EQ(r.action, Action::kReply);
  Reply p = Parse(r.reply);
  EXPECT_TRUE(p.edns);
  EXPECT_THAT(p.addrs, ::testing::ElementsAre("198.19.0.10"));
}

}  // namespace
}  // namespace ambient::dns
