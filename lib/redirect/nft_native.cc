#include "redirect/nft_native.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <net/if.h>
#include <netinet/in.h>

#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "ambient/base/address.h"
#include "ambient/base/errno_status.h"
#include "redirect/drift_diff.h"

namespace ambient::redirect::internal {
namespace {

// nft's datatype numbers for set keys (nftables src/datatype.h).
constexpr uint32_t kTypeIpv4Addr = 7;
constexpr uint32_t kTypeIpv6Addr = 8;

struct RuleDeleter {
  void operator()(nftnl_rule* r) const { nftnl_rule_free(r); }
};
struct ChainDeleter {
  void operator()(nftnl_chain* c) const { nftnl_chain_free(c); }
};
struct TableDeleter {
  void operator()(nftnl_table* t) const { nftnl_table_free(t); }
};
struct SetDeleter {
  void operator()(nftnl_set* s) const { nftnl_set_free(s); }
};
using RulePtr = std::unique_ptr<nftnl_rule, RuleDeleter>;
using ChainPtr = std::unique_ptr<nftnl_chain, ChainDeleter>;
using TablePtr = std::unique_ptr<nftnl_table, TableDeleter>;
using SetPtr = std::unique_ptr<nftnl_set, SetDeleter>;
struct UdataDeleter {
  void operator()(nftnl_udata_buf* b) const { nftnl_udata_buf_free(b); }
};
using UdataPtr = std::unique_ptr<nftnl_udata_buf, UdataDeleter>;

// ---- expressions ----

class RuleBuilder {
 public:
  explicit RuleBuilder(nftnl_rule* r) : r_(r) {}

  nftnl_expr* Add(const char* name) {
    nftnl_expr* e = nftnl_expr_alloc(name);
    if (e == nullptr) throw std::bad_alloc();
    nftnl_rule_add_expr(r_, e);
    return e;
  }
  void MetaLoad(uint32_t key) {
    nftnl_expr* e = Add("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
  }
  void MetaSet(uint32_t key) {
    nftnl_expr* e = Add("meta");
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
  }
  void CtLoad(uint32_t key) {
    nftnl_expr* e = Add("ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
  }
  void CtSet(uint32_t key) {
    nftnl_expr* e = Add("ct");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
  }
  void Cmp(bool negate, const void* data, uint32_t len) {
    nftnl_expr* e = Add("cmp");
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, negate ? NFT_CMP_NEQ : NFT_CMP_EQ);
    nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  }
  void Payload(uint32_t base, uint32_t offset, uint32_t len) {
    nftnl_expr* e = Add("payload");
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
    nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  }
  void Bitwise(uint32_t mask, uint32_t xor_value) {
    nftnl_expr* e = Add("bitwise");
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_OP, NFT_BITWISE_BOOL);
    nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(uint32_t));
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
    nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor_value, sizeof(xor_value));
  }
  void ImmediateData(const void* data, uint32_t len) {
    nftnl_expr* e = Add("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
    nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, data, len);
  }
  void Verdict(int verdict, const std::string& chain = "") {
    nftnl_expr* e = Add("immediate");
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
    nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(verdict));
    if (!chain.empty()) nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain.c_str());
  }
  void NfProto(IpFamily family) {
    MetaLoad(NFT_META_NFPROTO);
    uint8_t p = family == IpFamily::kIPv4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
    Cmp(false, &p, 1);
  }
  void L4Proto(uint8_t proto) {
    MetaLoad(NFT_META_L4PROTO);
    Cmp(false, &proto, 1);
  }

 private:
  nftnl_rule* r_;
};

void EncodeAddress(IpFamily family, const std::string& text, unsigned char* out, uint32_t* len) {
  *len = family == IpFamily::kIPv4 ? 4 : 16;
  memset(out, 0, 16);
  // Addresses were validated when the ruleset was built.
  absl::StatusOr<IpAddress> ip = IpAddress::Parse(text);
  if (ip.ok() && ip->bytes().size() == *len) memcpy(out, ip->bytes().data(), *len);
}

void EncodeTerm(RuleBuilder& b, const NftTerm& t) {
  using K = NftTerm::Kind;
  switch (t.kind) {
    case K::kL4Proto: b.L4Proto(t.proto); break;
    case K::kAddr:
    case K::kAddrInSet: {
      b.NfProto(t.family);
      const bool v4 = t.family == IpFamily::kIPv4;
      const bool source = t.kind == K::kAddr && t.is_source;
      uint32_t offset = v4 ? (source ? 12 : 16) : (source ? 8 : 24);
      b.Payload(NFT_PAYLOAD_NETWORK_HEADER, offset, v4 ? 4 : 16);
      if (t.kind == K::kAddrInSet) {
        nftnl_expr* e = b.Add("lookup");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, t.text.c_str());
      } else {
        unsigned char addr[16];
        uint32_t len;
        EncodeAddress(t.family, t.text, addr, &len);
        b.Cmp(t.negate, addr, len);
      }
      break;
    }
    case K::kPort: {
      b.L4Proto(t.proto);
      b.Payload(NFT_PAYLOAD_TRANSPORT_HEADER, t.is_source ? 0 : 2, 2);
      uint16_t port = htons(static_cast<uint16_t>(t.value));
      b.Cmp(t.negate, &port, sizeof(port));
      break;
    }
    case K::kMark:
    case K::kCtMark: {
      if (t.kind == K::kMark) {
        b.MetaLoad(NFT_META_MARK);
      } else {
        b.CtLoad(NFT_CT_MARK);
      }
      b.Bitwise(t.mask, 0);
      uint32_t v = t.value;
      b.Cmp(t.negate, &v, sizeof(v));
      break;
    }
    case K::kIfname: {
      b.MetaLoad(t.is_source ? NFT_META_IIFNAME : NFT_META_OIFNAME);
      char name[IFNAMSIZ];
      memset(name, 0, sizeof(name));
      memcpy(name, t.text.data(), std::min(t.text.size(), sizeof(name) - 1));
      b.Cmp(t.negate, name, sizeof(name));
      break;
    }
    case K::kSkuid: {
      b.MetaLoad(NFT_META_SKUID);
      uint32_t uid = t.value;
      b.Cmp(false, &uid, sizeof(uid));
      break;
    }
  }
}

void EncodeStatement(RuleBuilder& b, const NftStatement& s) {
  using K = NftStatement::Kind;
  switch (s.kind) {
    case K::kJump: b.Verdict(NFT_JUMP, s.text); break;
    case K::kAccept: b.Verdict(NF_ACCEPT); break;
    case K::kReturn: b.Verdict(NFT_RETURN); break;
    case K::kRedirect: {
      uint16_t port = htons(static_cast<uint16_t>(s.value));
      b.ImmediateData(&port, sizeof(port));
      nftnl_expr* e = b.Add("redir");
      nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN, NFT_REG_1);
      nftnl_expr_set_u32(e, NFTNL_EXPR_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
      break;
    }
    case K::kCtMarkSet:
      b.CtLoad(NFT_CT_MARK);
      b.Bitwise(s.mask, s.value);
      b.CtSet(NFT_CT_MARK);
      break;
    case K::kMarkFromCtMark:
      b.CtLoad(NFT_CT_MARK);
      b.MetaSet(NFT_META_MARK);
      break;
    case K::kCtZoneSet: {
      uint16_t zone = static_cast<uint16_t>(s.value);
      b.ImmediateData(&zone, sizeof(zone));
      b.CtSet(NFT_CT_ZONE);
      break;
    }
    case K::kSnat: {
      unsigned char addr[16];
      uint32_t len;
      EncodeAddress(s.family, s.text, addr, &len);
      b.ImmediateData(addr, len);
      nftnl_expr* e = b.Add("nat");
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY,
                         s.family == IpFamily::kIPv4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
      nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
      break;
    }
  }
}

RulePtr MakeRule(const std::string& table, const NftRule& rule) {
  RulePtr r(nftnl_rule_alloc());
  if (!r) throw std::bad_alloc();
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, NFPROTO_INET);
  if (!table.empty()) nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, rule.chain.c_str());
  RuleBuilder b(r.get());
  for (const NftTerm& t : rule.terms) EncodeTerm(b, t);
  if (rule.counter) b.Add("counter");
  EncodeStatement(b, rule.statement);
  return r;
}

uint32_t HookNumber(const std::string& hook) {
  if (hook == "prerouting") return NF_INET_PRE_ROUTING;
  if (hook == "input") return NF_INET_LOCAL_IN;
  if (hook == "forward") return NF_INET_FORWARD;
  if (hook == "output") return NF_INET_LOCAL_OUT;
  return NF_INET_POST_ROUTING;
}

// ---- batches ----

// Batch encodes one nf_tables transaction into bytes, numbering its messages
// 1, 2, ... (Send renumbers them for the socket they go out on).
class Batch {
 public:
  explicit Batch(uint16_t family = NFPROTO_INET) : family_(family), buf_(new char[kBatchBuffer]) {
    batch_ = mnl_nlmsg_batch_start(buf_.get(), kBatchBuffer);
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    mnl_nlmsg_batch_next(batch_);
  }
  ~Batch() { mnl_nlmsg_batch_stop(batch_); }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  // Header starts the next message; the caller fills its payload.
  struct nlmsghdr* Header(uint16_t type, uint16_t flags) {
    last_ = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), type,
                                  family_, flags, seq_++);
    return last_;
  }
  absl::Status Next() {
    // Leave room for the batch end message.
    if (!mnl_nlmsg_batch_next(batch_) || mnl_nlmsg_batch_size(batch_) + 64 > kBatchBuffer) {
      return absl::ResourceExhaustedError("nftables batch too large");
    }
    return absl::OkStatus();
  }

  // Finish asks for an ack on the last request, closes the batch and returns
  // its bytes (empty when there is no request).
  EncodedBatch Finish() {
    EncodedBatch out;
    if (last_ == nullptr) return out;
    last_->nlmsg_flags |= NLM_F_ACK;
    out.ack_seq = last_->nlmsg_seq;
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch_)), seq_++);
    out.messages = seq_ - 1;
    mnl_nlmsg_batch_next(batch_);
    out.bytes.assign(static_cast<const char*>(mnl_nlmsg_batch_head(batch_)),
                     mnl_nlmsg_batch_size(batch_));
    return out;
  }

 private:
  static constexpr size_t kBatchBuffer = 256 * 1024;
  uint16_t family_;
  uint32_t seq_ = 1;
  std::unique_ptr<char[]> buf_;  // not zeroed: only written parts are sent
  struct mnl_nlmsg_batch* batch_;
  struct nlmsghdr* last_ = nullptr;
};

absl::Status AddTable(Batch& b, const std::string& name) {
  TablePtr t(nftnl_table_alloc());
  if (!t) throw std::bad_alloc();
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_nlmsg_build_payload(b.Header(NFT_MSG_NEWTABLE, NLM_F_CREATE), t.get());
  return b.Next();
}

absl::Status DeleteTable(Batch& b, const std::string& name) {
  TablePtr t(nftnl_table_alloc());
  if (!t) throw std::bad_alloc();
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, name.c_str());
  nftnl_table_nlmsg_build_payload(b.Header(NFT_MSG_DELTABLE, 0), t.get());
  return b.Next();
}

absl::Status FlushTable(Batch& b, const std::string& name) {
  RulePtr r(nftnl_rule_alloc());
  if (!r) throw std::bad_alloc();
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, name.c_str());
  nftnl_rule_nlmsg_build_payload(b.Header(NFT_MSG_DELRULE, 0), r.get());
  return b.Next();
}

absl::Status AddChain(Batch& b, const std::string& table, const NftChain& chain) {
  ChainPtr c(nftnl_chain_alloc());
  if (!c) throw std::bad_alloc();
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.name.c_str());
  if (chain.base) {
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, HookNumber(chain.hook));
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, chain.priority);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, chain.type.c_str());
  }
  nftnl_chain_nlmsg_build_payload(b.Header(NFT_MSG_NEWCHAIN, NLM_F_CREATE), c.get());
  return b.Next();
}

absl::Status AddSet(Batch& b, const std::string& table, const NftSet& set, uint32_t id) {
  SetPtr s(nftnl_set_alloc());
  if (!s) throw std::bad_alloc();
  const bool v4 = set.family == IpFamily::kIPv4;
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.name.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, NFPROTO_INET);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, v4 ? kTypeIpv4Addr : kTypeIpv6Addr);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v4 ? 4 : 16);
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, id);
  nftnl_set_nlmsg_build_payload(b.Header(NFT_MSG_NEWSET, NLM_F_CREATE), s.get());
  return b.Next();
}

absl::Status AddRule(Batch& b, const std::string& table, const NftRule& rule) {
  RulePtr r = MakeRule(table, rule);
  nftnl_rule_nlmsg_build_payload(b.Header(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND), r.get());
  return b.Next();
}

// ---- reading back ----

std::string Bytecode(nftnl_rule* r) {
  std::string out;
  nftnl_expr_iter* it = nftnl_expr_iter_create(r);
  if (it == nullptr) throw std::bad_alloc();
  char buf[512];
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e != nullptr; e = nftnl_expr_iter_next(it)) {
    const char* name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
    if (!out.empty()) out += " ";
    if (name != nullptr && strcmp(name, "counter") == 0) {
      out += "[ counter ]";
      continue;
    }
    int n = nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
    std::string text = n > 0 ? std::string(buf, std::min<size_t>(n, sizeof(buf) - 1)) : "";
    if (name != nullptr && strcmp(name, "redir") == 0 &&
        nftnl_expr_is_set(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX) &&
        nftnl_expr_get_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX) ==
            nftnl_expr_get_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MIN)) {
      // The kernel reports an absent proto_max as equal to proto_min.
      std::string echo = absl::StrCat("proto_max reg ",
                                      nftnl_expr_get_u32(e, NFTNL_EXPR_REDIR_REG_PROTO_MAX), " ");
      size_t at = text.find(echo);
      if (at != std::string::npos) text.erase(at, echo.size());
    }
    if (name != nullptr && strcmp(name, "nat") == 0 &&
        nftnl_expr_is_set(e, NFTNL_EXPR_NAT_REG_ADDR_MAX) &&
        nftnl_expr_get_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX) ==
            nftnl_expr_get_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN)) {
      // Likewise for addr_max, with the address-mapping flag it implies.
      for (const std::string& echo :
           {absl::StrCat("addr_max reg ", nftnl_expr_get_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX), " "),
            absl::StrCat("flags 0x", absl::Hex(NF_NAT_RANGE_MAP_IPS), " ")}) {
        size_t at = text.find(echo);
        if (at != std::string::npos) text.erase(at, echo.size());
      }
    }
    if (name != nullptr && strcmp(name, "lookup") == 0 &&
        (!nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_FLAGS) ||
         nftnl_expr_get_u32(e, NFTNL_EXPR_LOOKUP_FLAGS) == 0)) {
      size_t at = text.rfind(" 0x0");
      if (at != std::string::npos && at + 4 >= text.size() - 1) text.erase(at, 4);
    }
    absl::StrAppend(&out, "[ ", name != nullptr ? name : "?", " ", text, "]");
  }
  nftnl_expr_iter_destroy(it);
  return out;
}

struct InstalledChain {
  bool base = false;
  uint32_t hook = 0;
  int32_t prio = 0;
  std::string type;
};

struct Installed {
  std::set<std::string> tables;
  std::map<std::string, std::map<std::string, InstalledChain>> chains;  // table -> chain
  std::map<std::string, std::set<std::string>> sets;                    // table -> sets
  // table -> chain -> rules in order
  std::map<std::string, std::map<std::string, std::vector<std::string>>> rules;
};

absl::StatusOr<Installed> ReadInstalled(NetlinkSocket& nl, const NftRuleset& want) {
  Installed have;
  std::set<std::string> ours;
  for (const NftTable& t : want.tables) ours.insert(t.name);
  char buf[512];
  {
    uint32_t seq = nl.NextSeq();
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_DUMP, seq);
    absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
      TablePtr t(nftnl_table_alloc());
      if (!t) throw std::bad_alloc();
      if (nftnl_table_nlmsg_parse(h, t.get()) < 0) return absl::DataLossError("bad table message");
      if (nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY) != NFPROTO_INET) return absl::OkStatus();
      have.tables.insert(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME));
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  {
    uint32_t seq = nl.NextSeq();
    struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, seq);
    absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
      ChainPtr c(nftnl_chain_alloc());
      if (!c) throw std::bad_alloc();
      if (nftnl_chain_nlmsg_parse(h, c.get()) < 0) return absl::DataLossError("bad chain message");
      if (nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY) != NFPROTO_INET) return absl::OkStatus();
      std::string table = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE);
      if (!ours.count(table)) return absl::OkStatus();
      InstalledChain ic;
      ic.base = nftnl_chain_is_set(c.get(), NFTNL_CHAIN_HOOKNUM);
      if (ic.base) {
        ic.hook = nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_HOOKNUM);
        ic.prio = nftnl_chain_get_s32(c.get(), NFTNL_CHAIN_PRIO);
        const char* type = nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TYPE);
        ic.type = type != nullptr ? type : "";
      }
      have.chains[table][nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME)] = ic;
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
  }
  for (const NftTable& t : want.tables) {
    if (!have.tables.count(t.name)) continue;
    {
      uint32_t seq = nl.NextSeq();
      struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, seq);
      RulePtr filter(nftnl_rule_alloc());
      if (!filter) throw std::bad_alloc();
      nftnl_rule_set_str(filter.get(), NFTNL_RULE_TABLE, t.name.c_str());
      nftnl_rule_nlmsg_build_payload(nlh, filter.get());
      absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
        RulePtr r(nftnl_rule_alloc());
        if (!r) throw std::bad_alloc();
        if (nftnl_rule_nlmsg_parse(h, r.get()) < 0) return absl::DataLossError("bad rule message");
        if (nftnl_rule_get_u32(r.get(), NFTNL_RULE_FAMILY) != NFPROTO_INET) return absl::OkStatus();
        if (t.name != nftnl_rule_get_str(r.get(), NFTNL_RULE_TABLE)) return absl::OkStatus();
        have.rules[t.name][nftnl_rule_get_str(r.get(), NFTNL_RULE_CHAIN)].push_back(Bytecode(r.get()));
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
    }
    if (!t.sets.empty()) {
      uint32_t seq = nl.NextSeq();
      struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, seq);
      SetPtr filter(nftnl_set_alloc());
      if (!filter) throw std::bad_alloc();
      nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, t.name.c_str());
      nftnl_set_nlmsg_build_payload(nlh, filter.get());
      absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
        SetPtr st(nftnl_set_alloc());
        if (!st) throw std::bad_alloc();
        if (nftnl_set_nlmsg_parse(h, st.get()) < 0) return absl::DataLossError("bad set message");
        if (t.name == nftnl_set_get_str(st.get(), NFTNL_SET_TABLE)) {
          have.sets[t.name].insert(nftnl_set_get_str(st.get(), NFTNL_SET_NAME));
        }
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
    }
  }
  return have;
}

}  // namespace

std::string NftRuleBytecode(const NftRule& rule) {
  // Serialise and parse back, so the expected rule is printed from the same
  // attributes a dump from the kernel carries.
  RulePtr built = MakeRule("t", rule);
  std::vector<char> buf(16384);
  struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_NEWRULE, NFPROTO_INET, 0, 0);
  nftnl_rule_nlmsg_build_payload(nlh, built.get());
  RulePtr parsed(nftnl_rule_alloc());
  if (!parsed) throw std::bad_alloc();
  if (nftnl_rule_nlmsg_parse(nlh, parsed.get()) < 0) return "<unparsable>";
  return Bytecode(parsed.get());
}

absl::StatusOr<EncodedBatch> NftEncodeApply(const NftRuleset& ruleset, bool inject_bad_request) {
  Batch b;
  uint32_t set_id = 1;
  for (const NftTable& t : ruleset.tables) {
    if (absl::Status s = AddTable(b, t.name); !s.ok()) return s;
    if (absl::Status s = FlushTable(b, t.name); !s.ok()) return s;
    for (const NftChain& c : t.chains) {
      if (absl::Status s = AddChain(b, t.name, c); !s.ok()) return s;
    }
    for (const NftSet& set : t.sets) {
      if (absl::Status s = AddSet(b, t.name, set, set_id++); !s.ok()) return s;
    }
    for (const NftRule& r : t.rules) {
      if (absl::Status s = AddRule(b, t.name, r); !s.ok()) return s;
    }
  }
  if (inject_bad_request && !ruleset.tables.empty()) {
    NftRule bad;
    bad.chain = "istio-injected-missing-chain";
    bad.statement.kind = NftStatement::Kind::kAccept;
    if (absl::Status s = AddRule(b, ruleset.tables.back().name, bad); !s.ok()) return s;
  }
  return b.Finish();
}

absl::Status NftSend(NetlinkSocket& nl, const EncodedBatch& batch, absl::string_view what) {
  if (batch.bytes.empty()) return absl::OkStatus();
  // Renumber the messages for this socket (they were encoded from 1).
  std::unique_ptr<char[]> buf(new char[batch.bytes.size()]);
  memcpy(buf.get(), batch.bytes.data(), batch.bytes.size());
  const uint32_t base = nl.ReserveSeqs(batch.messages) - 1;
  int left = static_cast<int>(batch.bytes.size());
  for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf.get());
       NLMSG_OK(h, static_cast<unsigned>(left)); h = NLMSG_NEXT(h, left)) {
    h->nlmsg_seq += base;
  }
  if (absl::Status s = nl.Send(buf.get(), batch.bytes.size()); !s.ok()) return s;
  absl::StatusOr<std::vector<Ack>> acks = nl.CollectAcks(batch.ack_seq + base);
  if (!acks.ok()) return acks.status();
  for (const Ack& a : *acks) {
    if (a.error != 0) return ErrnoStatus(-a.error, what);
  }
  return absl::OkStatus();
}

absl::Status NftApply(NetlinkSocket& nl, const NftRuleset& ruleset, bool inject_bad_request) {
  absl::StatusOr<EncodedBatch> batch = NftEncodeApply(ruleset, inject_bad_request);
  if (!batch.ok()) return batch.status();
  return NftSend(nl, *batch, kApplyFailed);
}

absl::StatusOr<std::set<std::string>> NftTables(NetlinkSocket& nl, uint8_t family) {
  std::set<std::string> names;
  char buf[256];
  uint32_t seq = nl.NextSeq();
  struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, family, NLM_F_DUMP, seq);
  absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
    TablePtr t(nftnl_table_alloc());
    if (!t) throw std::bad_alloc();
    if (nftnl_table_nlmsg_parse(h, t.get()) < 0) return absl::DataLossError("bad table message");
    if (nftnl_table_get_u32(t.get(), NFTNL_TABLE_FAMILY) == family) {
      names.insert(nftnl_table_get_str(t.get(), NFTNL_TABLE_NAME));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return names;
}

absl::StatusOr<std::set<std::string>> NftChains(NetlinkSocket& nl, uint8_t family) {
  std::set<std::string> names;
  char buf[256];
  uint32_t seq = nl.NextSeq();
  struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, family, NLM_F_DUMP, seq);
  absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
    ChainPtr c(nftnl_chain_alloc());
    if (!c) throw std::bad_alloc();
    if (nftnl_chain_nlmsg_parse(h, c.get()) < 0) return absl::DataLossError("bad chain message");
    if (nftnl_chain_get_u32(c.get(), NFTNL_CHAIN_FAMILY) == family) {
      names.insert(absl::StrCat(nftnl_chain_get_str(c.get(), NFTNL_CHAIN_TABLE), "/",
                                nftnl_chain_get_str(c.get(), NFTNL_CHAIN_NAME)));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return names;
}

absl::Status NftDelete(NetlinkSocket& nl, const std::vector<std::string>& tables, uint8_t family) {
  Batch b(family);
  for (const std::string& t : tables) {
    // Adding first makes the delete valid when the table is absent.
    if (absl::Status s = AddTable(b, t); !s.ok()) return s;
    if (absl::Status s = DeleteTable(b, t); !s.ok()) return s;
  }
  return NftSend(nl, b.Finish(), "deleting the nftables tables");
}

namespace {

// SetElements appends one NEWSETELEM or DELSETELEM request for `address`
// (with `comment` when not empty) to `b`.
absl::Status SetElements(Batch& b, uint16_t type, uint16_t flags, const std::string& table,
                         const std::string& set, const RawAddress& address,
                         const std::string& comment) {
  SetPtr s(nftnl_set_alloc());
  if (!s) throw std::bad_alloc();
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
  nftnl_set_elem* e = nftnl_set_elem_alloc();
  if (e == nullptr) throw std::bad_alloc();
  nftnl_set_elem_add(s.get(), e);  // owned by the set from here
  nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, address.bytes, address.size());
  if (!comment.empty()) {
    UdataPtr ud(nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN));
    if (!ud) throw std::bad_alloc();
    if (!nftnl_udata_put_strz(ud.get(), NFTNL_UDATA_SET_ELEM_COMMENT, comment.c_str())) {
      return absl::InvalidArgumentError("set element comment too long");
    }
    nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(ud.get()),
                       nftnl_udata_buf_len(ud.get()));
  }
  nftnl_set_elems_nlmsg_build_payload(b.Header(type, flags), s.get());
  return b.Next();
}

absl::Status SetStatus(absl::Status s, const std::string& table, const std::string& set) {
  if (absl::IsNotFound(s)) {
    return absl::NotFoundError(absl::StrCat("there is no nftables set inet ", table, " ", set,
                                            " (apply the host rules first)"));
  }
  return s;
}

int CommentOf(const nftnl_udata* attr, void* data) {
  if (nftnl_udata_type(attr) == NFTNL_UDATA_SET_ELEM_COMMENT) {
    const char* text = static_cast<const char*>(nftnl_udata_get(attr));
    *static_cast<std::string*>(data) = std::string(text, strnlen(text, nftnl_udata_len(attr)));
  }
  return 0;
}

}  // namespace

absl::Status NftSetAdd(NetlinkSocket& nl, const std::string& table, const std::string& set,
                       const RawAddress& address, const std::string& comment) {
  // Make sure the member exists, drop it, add it with the new comment: one
  // transaction, so a member is never missing in between.
  Batch b;
  if (absl::Status s = SetElements(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, address, "");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SetElements(b, NFT_MSG_DELSETELEM, 0, table, set, address, ""); !s.ok()) {
    return s;
  }
  if (absl::Status s = SetElements(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, address, comment);
      !s.ok()) {
    return s;
  }
  return SetStatus(NftSend(nl, b.Finish(), absl::StrCat("adding a probe address to nftables set ", set)),
                   table, set);
}

absl::Status NftSetDel(NetlinkSocket& nl, const std::string& table, const std::string& set,
                       const RawAddress& address) {
  Batch b;
  if (absl::Status s = SetElements(b, NFT_MSG_NEWSETELEM, NLM_F_CREATE, table, set, address, "");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = SetElements(b, NFT_MSG_DELSETELEM, 0, table, set, address, ""); !s.ok()) {
    return s;
  }
  return SetStatus(
      NftSend(nl, b.Finish(), absl::StrCat("removing a probe address from nftables set ", set)),
      table, set);
}

absl::StatusOr<std::vector<SetMember>> NftSetList(NetlinkSocket& nl, const std::string& table,
                                                  const std::string& set) {
  std::vector<SetMember> out;
  char buf[512];
  uint32_t seq = nl.NextSeq();
  struct nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, seq);
  SetPtr filter(nftnl_set_alloc());
  if (!filter) throw std::bad_alloc();
  nftnl_set_set_str(filter.get(), NFTNL_SET_TABLE, table.c_str());
  nftnl_set_set_str(filter.get(), NFTNL_SET_NAME, set.c_str());
  nftnl_set_elems_nlmsg_build_payload(nlh, filter.get());
  absl::Status s = nl.Dump(buf, nlh->nlmsg_len, seq, [&](const struct nlmsghdr* h) {
    SetPtr got(nftnl_set_alloc());
    if (!got) throw std::bad_alloc();
    if (nftnl_set_elems_nlmsg_parse(h, got.get()) < 0) return absl::DataLossError("bad set element message");
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(got.get());
    if (it == nullptr) throw std::bad_alloc();
    // iter_next returns the current element, then moves on.
    for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e != nullptr;
         e = nftnl_set_elems_iter_next(it)) {
      uint32_t len = 0;
      const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
      if (key == nullptr || (len != 4 && len != 16)) continue;
      SetMember m;
      m.address.v6 = len == 16;
      memcpy(m.address.bytes, key, len);
      uint32_t ulen = 0;
      const void* ud = nftnl_set_elem_get(e, NFTNL_SET_ELEM_USERDATA, &ulen);
      if (ud != nullptr && ulen > 0) nftnl_udata_parse(ud, ulen, CommentOf, &m.comment);
      out.push_back(std::move(m));
    }
    nftnl_set_elems_iter_destroy(it);
    return absl::OkStatus();
  });
  if (!s.ok()) return SetStatus(s, table, set);
  return out;
}

absl::StatusOr<std::vector<Drift>> NftCheck(NetlinkSocket& nl, const NftRuleset& ruleset) {
  absl::StatusOr<Installed> have = ReadInstalled(nl, ruleset);
  if (!have.ok()) return have.status();
  std::vector<Drift> out;
  for (const NftTable& t : ruleset.tables) {
    const std::string where = absl::StrCat("nftables inet ", t.name);
    if (!have->tables.count(t.name)) {
      out.push_back({Drift::Kind::kMissing, where, "table"});
      continue;
    }
    std::map<std::string, InstalledChain> chains = have->chains[t.name];
    for (const NftChain& c : t.chains) {
      auto it = chains.find(c.name);
      if (it == chains.end()) {
        out.push_back({Drift::Kind::kMissing, where, absl::StrCat("chain ", c.name)});
        continue;
      }
      const InstalledChain& ic = it->second;
      bool same = ic.base == c.base &&
                  (!c.base || (ic.hook == HookNumber(c.hook) && ic.prio == c.priority && ic.type == c.type));
      if (!same) {
        out.push_back({Drift::Kind::kModified, where,
                       absl::StrCat("chain ", c.name, " has another type, hook or priority")});
      }
      chains.erase(it);
    }
    for (const auto& [name, ic] : chains) {
      out.push_back({Drift::Kind::kExtra, where, absl::StrCat("chain ", name)});
    }
    for (const NftSet& set : t.sets) {
      if (!have->sets[t.name].count(set.name)) {
        out.push_back({Drift::Kind::kMissing, where, absl::StrCat("set ", set.name)});
      }
    }
    std::map<std::string, std::vector<std::string>> want_rules;
    for (const NftChain& c : t.chains) want_rules[c.name];
    for (const NftRule& r : t.rules) want_rules[r.chain].push_back(NftRuleBytecode(r));
    std::map<std::string, std::vector<std::string>>& have_rules = have->rules[t.name];
    for (const auto& [chain, rules] : have_rules) want_rules[chain];
    for (const auto& [chain, want] : want_rules) {
      DiffRules(absl::StrCat(where, " chain ", chain), want, have_rules[chain], &out);
    }
  }
  return out;
}

}  // namespace ambient::redirect::internal
