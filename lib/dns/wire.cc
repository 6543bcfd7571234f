// DNS messages on top of libresolv; see dns/wire.h.
#include "dns/wire.h"

#include <cstring>

// libresolv's headers last: they define short macros (QUERY, NOERROR, T_A...).
#include <arpa/nameser.h>
#include <resolv.h>

namespace ambient::dns::wire {

bool ReadHeader(absl::string_view msg, Header* out) {
  if (msg.size() < kHeaderSize) return false;
  auto b = [&](size_t i) { return static_cast<uint8_t>(msg[i]); };
  out->id = static_cast<uint16_t>((b(0) << 8) | b(1));
  out->qr = (b(2) & 0x80) != 0;
  out->opcode = (b(2) >> 3) & 0x0f;
  out->rd = (b(2) & 0x01) != 0;
  return true;
}

bool ParseQuery(absl::string_view msg, Query* out) {
  if (!ReadHeader(msg, &out->header)) return false;
  ns_msg handle;
  // ns_initparse walks every section and refuses bad lengths and trailing bytes.
  if (ns_initparse(reinterpret_cast<const unsigned char*>(msg.data()), static_cast<int>(msg.size()),
                   &handle) != 0) {
    return false;
  }
  if (ns_msg_count(handle, ns_s_qd) != 1) return false;
  ns_rr rr;
  // ns_parserr expands the name (following and checking compression pointers).
  if (ns_parserr(&handle, ns_s_qd, 0, &rr) != 0) return false;
  out->qname = ns_rr_name(rr);
  out->qtype = ns_rr_type(rr);
  out->qclass = ns_rr_class(rr);
  out->edns = false;
  out->edns_udp_size = 0;
  // Records in the other sections are checked too: a query whose names do
  // not expand is malformed even if its question is fine.
  for (ns_sect s : {ns_s_an, ns_s_ns, ns_s_ar}) {
    for (int i = 0; i < ns_msg_count(handle, s); ++i) {
      if (ns_parserr(&handle, s, i, &rr) != 0) return false;
      if (s == ns_s_ar && ns_rr_type(rr) == kTypeOpt && !out->edns) {
        out->edns = true;
        out->edns_udp_size = ns_rr_class(rr);
      }
    }
  }
  return true;
}

ReplyWriter::ReplyWriter(uint16_t id, int opcode, bool rd, int rcode)
    : buf_(new uint8_t[kMaxMessage]),
      id_(id),
      flags1_(static_cast<uint8_t>(0x80 | ((opcode & 0x0f) << 3) | (rd ? 0x01 : 0))),
      flags2_(static_cast<uint8_t>(0x80 | (rcode & 0x0f))) {
  dnptrs_[0] = buf_.get();
  dnptrs_[1] = nullptr;
}

void ReplyWriter::Put16(uint16_t v) {
  buf_[len_++] = static_cast<uint8_t>(v >> 8);
  buf_[len_++] = static_cast<uint8_t>(v & 0xff);
}

void ReplyWriter::Put32(uint32_t v) {
  Put16(static_cast<uint16_t>(v >> 16));
  Put16(static_cast<uint16_t>(v & 0xffff));
}

bool ReplyWriter::Name(const std::string& name) {
  if (overflow_) return false;
  uint8_t** last = dnptrs_ + (sizeof(dnptrs_) / sizeof(dnptrs_[0]));
  int n =
      dn_comp(name.c_str(), buf_.get() + len_, static_cast<int>(kMaxMessage - len_), dnptrs_, last);
  if (n < 0) {
    overflow_ = true;
    return false;
  }
  len_ += static_cast<size_t>(n);
  return true;
}

void ReplyWriter::AddQuestion(const std::string& name, uint16_t type, uint16_t klass) {
  size_t mark = len_;
  if (!Name(name)) return;
  if (!Room(4)) {
    len_ = mark;
    overflow_ = true;
    return;
  }
  Put16(type);
  Put16(klass);
  ++qd_;
}

void ReplyWriter::AddAnswer(const std::string& name, uint16_t type, uint32_t ttl,
                            absl::string_view rdata) {
  size_t mark = len_;
  if (!Name(name)) return;
  if (rdata.size() > 0xffff || !Room(10 + rdata.size())) {
    len_ = mark;
    overflow_ = true;
    return;
  }
  Put16(type);
  Put16(kClassIn);
  Put32(ttl);
  Put16(static_cast<uint16_t>(rdata.size()));
  std::memcpy(buf_.get() + len_, rdata.data(), rdata.size());
  len_ += rdata.size();
  ++an_;
}

void ReplyWriter::AddOpt(uint16_t udp_size) {
  size_t mark = len_;
  if (!Name(".")) return;
  if (!Room(10)) {
    len_ = mark;
    overflow_ = true;
    return;
  }
  Put16(kTypeOpt);
  Put16(udp_size);  // the OPT record's class is the UDP payload size
  Put32(0);         // extended RCODE, version 0, no flags
  Put16(0);         // no options
  ++ar_;
}

std::string ReplyWriter::Bytes() const {
  uint8_t h[kHeaderSize] = {static_cast<uint8_t>(id_ >> 8),
                            static_cast<uint8_t>(id_ & 0xff),
                            flags1_,
                            flags2_,
                            static_cast<uint8_t>(qd_ >> 8),
                            static_cast<uint8_t>(qd_ & 0xff),
                            static_cast<uint8_t>(an_ >> 8),
                            static_cast<uint8_t>(an_ & 0xff),
                            0,
                            0,
                            static_cast<uint8_t>(ar_ >> 8),
                            static_cast<uint8_t>(ar_ & 0xff)};
  std::string out(reinterpret_cast<const char*>(buf_.get()), len_);
  std::memcpy(out.data(), h, kHeaderSize);
  return out;
}

std::string HeaderOnlyReply(const Header& h, int rcode) {
  ReplyWriter w(h.id, h.opcode, h.rd, rcode);
  return w.Bytes();
}

}  // namespace ambient::dns::wire
