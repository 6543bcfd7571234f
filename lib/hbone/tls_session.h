// TlsSession: the TLS half of one sans-IO HBONE connection.
//
// It owns one SSL made from the host's SSL_CTX, fed through a memory BIO:
// ciphertext the host received is lent with SetInput for the duration of one
// call, and every record TLS produces is appended to the ByteQueue the
// connection drains to the transport. It runs the handshake, checks the peer
// (TLS 1.3, ALPN h2, AES-GCM, verified certificate, SPIFFE identity, the
// expected identities or the trust domain) and seals/opens application data.
//
// This file and tls_session.cc (with tls_context.cc for SSL_CTX preparation
// and peer_identity.cc for reading URI SANs) are the only places in lib/hbone
// that name BoringSSL: the HTTP/2 side and the connection that joins the two
// see only this interface, so a second TLS backend replaces these files.
//
// Threads: one thread at a time, like the Connection that owns it.
#ifndef AMBIENT_LIB_HBONE_TLS_SESSION_H_
#define AMBIENT_LIB_HBONE_TLS_SESSION_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "ambient/hbone/connection.h"

namespace ambient::hbone {

class ByteQueue;

class TlsSession {
 public:
  // CheckContext is what Connection::New requires of the host's context: a
  // BoringSSL process (FailedPrecondition otherwise), a non-null SSL_CTX and
  // SSL_VERIFY_PEER on it (InvalidArgument otherwise).
  static absl::Status CheckContext(ssl_ctx_st* ctx);

  // New makes the TLS side of a connection in `role` from `ctx` (which it
  // references). The client offers ALPN h2 and, when `bundles` is set,
  // installs ambient's SPIFFE verifier for `expected_identities`. Ciphertext
  // goes to `out`, which must outlive the session.
  static absl::StatusOr<std::unique_ptr<TlsSession>> New(
      Role role, ssl_ctx_st* ctx, std::vector<identity::SpiffeId> expected_identities,
      std::shared_ptr<identity::TrustBundleSource> bundles, ByteQueue* out);

  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // SetInput lends received ciphertext to the next Handshake/Read calls; the
  // caller clears it (SetInput({})) before the bytes go away. What TLS does
  // not read stays in the view.
  void SetInput(absl::Span<const uint8_t> in);

  // Handshake advances the handshake: false = needs more input, true = done
  // (then call CheckPeer). An error is Unauthenticated ("TLS handshake
  // failed: ..."), naming a rejected peer certificate when that was the cause.
  absl::StatusOr<bool> Handshake();

  // CheckPeer enforces the HBONE policy on the finished handshake and returns
  // the peer's SPIFFE ID (Unauthenticated / PermissionDenied /
  // FailedPrecondition with the reason otherwise).
  absl::StatusOr<identity::SpiffeId> CheckPeer();

  // Read opens application data into `out`.
  struct ReadResult {
    enum class Kind { kData, kWantRead, kClosed, kError };
    Kind kind = Kind::kWantRead;
    size_t n = 0;        // kData: bytes in out
    absl::Status error;  // kError: DataLoss with the TLS error
  };
  ReadResult Read(absl::Span<uint8_t> out);

  // Write seals `plain` in full (false when TLS refused it; LastError says why).
  bool Write(absl::Span<const uint8_t> plain);

  // SendCloseNotify sends close_notify once, if the handshake has finished.
  void SendCloseNotify();

  // LastError drains the TLS error queue into text ("no detail" if empty);
  // ClearErrors drops it.
  static std::string LastError();
  static void ClearErrors();

 private:
  struct Impl;
  explicit TlsSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ambient::hbone

#endif  // AMBIENT_LIB_HBONE_TLS_SESSION_H_
