// dns/wire.h (private to the dns layer): reading a pod's DNS query and
// writing the proxy's replies, on top of glibc's libresolv (ns_initparse,
// ns_parserr and dn_comp; Debian's libc6-dev). libresolv does the parts that
// are easy to get wrong (section walking, name decompression with its loop
// and bounds checks, name compression); this file writes only the fixed
// 12-byte header and the fixed fields of the records it adds.
//
// libresolv needs no OpenSSL, which is why the dns layer uses it rather than
// Debian's libldns (linked to OpenSSL 3, which must not be loaded beside the
// library's BoringSSL).
//
// Threads: everything here is a pure function of its arguments or owned by
// the caller.
#ifndef AMBIENT_DNS_WIRE_H_
#define AMBIENT_DNS_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace ambient::dns::wire {

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxMessage = 65535;

// Values of the header and question fields the proxy uses (RFC 1035, 6891).
inline constexpr int kOpcodeQuery = 0;
inline constexpr int kRcodeNoError = 0;
inline constexpr int kRcodeFormErr = 1;
inline constexpr int kRcodeServFail = 2;
inline constexpr int kRcodeNotImp = 4;
inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeAaaa = 28;
inline constexpr uint16_t kTypeOpt = 41;
inline constexpr uint16_t kClassIn = 1;

// Header is what the first 12 bytes of a message say, read by hand (they
// are all a reply to a malformed query can be built from).
struct Header {
  uint16_t id = 0;
  bool qr = false;
  int opcode = 0;
  bool rd = false;
};

// ReadHeader reads the header of `msg`; false when it is shorter than 12
// bytes.
bool ReadHeader(absl::string_view msg, Header* out);

// Query is a parsed query with exactly one question.
struct Query {
  Header header;
  std::string qname;  // presentation form as sent (case kept, no final dot; "." is the root)
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool edns = false;           // an OPT record is in the additional section
  uint16_t edns_udp_size = 0;  // its UDP payload size (the OPT record's class)
};

// ParseQuery parses `msg` with libresolv; false when any section is
// malformed (bad lengths, names, compression pointers, trailing bytes) or
// the message does not carry exactly one question.
bool ParseQuery(absl::string_view msg, Query* out);

// ReplyWriter builds one reply in a buffer of kMaxMessage bytes. Calls after
// an Add* failed (the message would exceed kMaxMessage, or a name does not
// compress) are ignored and overflowed() turns true.
class ReplyWriter {
 public:
  // The reply to a query with this ID, opcode and RD bit; QR and RA set.
  ReplyWriter(uint16_t id, int opcode, bool rd, int rcode);
  ReplyWriter(const ReplyWriter&) = delete;
  ReplyWriter& operator=(const ReplyWriter&) = delete;

  void SetAuthoritative() { flags1_ |= 0x04; }
  void SetTruncated() { flags1_ |= 0x02; }

  // AddQuestion appends the question `name` (presentation form) type/class.
  void AddQuestion(const std::string& name, uint16_t type, uint16_t klass);
  // AddRecord appends an answer record `name` IN `type` `ttl` with `rdata`;
  // the name is compressed against the question.
  void AddAnswer(const std::string& name, uint16_t type, uint32_t ttl, absl::string_view rdata);
  // AddOpt appends an EDNS OPT record advertising `udp_size`.
  void AddOpt(uint16_t udp_size);

  bool overflowed() const { return overflow_; }
  int answer_count() const { return an_; }
  // Bytes returns the message so far (header counts included).
  std::string Bytes() const;

 private:
  // Name writes `name` at the end, compressed; false when it cannot.
  bool Name(const std::string& name);
  bool Room(size_t n) const { return !overflow_ && len_ + n <= kMaxMessage; }
  void Put16(uint16_t v);
  void Put32(uint32_t v);

  std::unique_ptr<uint8_t[]> buf_;
  size_t len_ = kHeaderSize;
  uint8_t* dnptrs_[64] = {};
  uint16_t id_;
  uint8_t flags1_;
  uint8_t flags2_;
  int qd_ = 0, an_ = 0, ar_ = 0;
  bool overflow_ = false;
};

// HeaderOnlyReply is a reply with no sections at all to a query whose
// header is `h`, with RCODE `rcode`.
std::string HeaderOnlyReply(const Header& h, int rcode);

}  // namespace ambient::dns::wire

#endif  // AMBIENT_DNS_WIRE_H_
