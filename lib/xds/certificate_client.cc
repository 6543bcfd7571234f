// CertificateClient: a ControlPlaneConnection to the Istio CA and a
// CertificateManager on one loop (see the header).
#include "ambient/xds/certificate_client.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <utility>

#include "ambient/base/tls.h"
#include "ambient/xds/ca_client.h"

namespace ambient::xds {

absl::StatusOr<std::unique_ptr<CertificateClient>> CertificateClient::New(
    runtime::EventLoop* loop, CertificateClientOptions options) {
  if (options.ca_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("CA client: the CA timeout must be positive");
  }
  auto conn = ControlPlaneConnection::New(loop, options.ca);
  if (!conn.ok()) return conn.status();
  std::unique_ptr<CertificateClient> c(new CertificateClient(loop, std::move(options)));
  c->owned_ = std::move(*conn);
  c->conn_ = c->owned_.get();
  c->conn_->Start();
  return c;
}

absl::StatusOr<std::unique_ptr<CertificateClient>> CertificateClient::OnConnection(
    runtime::EventLoop* loop, ControlPlaneConnection* conn, CertificateClientOptions options) {
  if (options.ca_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("CA client: the CA timeout must be positive");
  }
  if (conn == nullptr) return absl::InvalidArgumentError("CA client: no connection");
  std::unique_ptr<CertificateClient> c(new CertificateClient(loop, std::move(options)));
  c->conn_ = conn;
  return c;
}

CertificateClient::CertificateClient(runtime::EventLoop* loop, CertificateClientOptions options)
    : loop_(loop),
      options_(std::move(options)),
      certs_(options_.certificates),
      timer_(loop, [this] { Pump(); }),
      self_(std::make_shared<std::atomic<CertificateClient*>>(this)) {}

CertificateClient::~CertificateClient() { *self_ = nullptr; }

// The manager works in wall-clock time, the loop's timers in its monotonic clock.
void CertificateClient::Pump() {
  absl::Time now = absl::Now();
  for (CertFetch& f : certs_.StartFetches(now)) {
    uint64_t id = f.fetch;
    std::weak_ptr<std::atomic<CertificateClient*>> weak = self_;
    conn_->Call(kCaMethod, std::move(f.request), loop_->Now() + options_.ca_timeout,
                [weak, id](absl::StatusOr<std::string> answer) {
                  auto self = weak.lock();
                  CertificateClient* c = self ? self->load() : nullptr;
                  if (c == nullptr) return;
                  // The outcome is kept in the manager's status (last_error).
                  if (c->certs_.OnFetchDone(id, std::move(answer), absl::Now()).ok()) {
                    c->conn_->ResetBackoff();
                  }
                  if (c->options_.on_answer) c->options_.on_answer();
                  c->Pump();
                });
  }
  absl::Time next = certs_.NextDeadline();
  if (next == absl::InfiniteFuture()) {
    timer_.Disarm();
  } else {
    timer_.Arm(loop_->Now() + std::max(absl::ZeroDuration(), next - absl::Now()));
  }
}

std::shared_ptr<identity::CredentialHolder> CertificateClient::Acquire(const identity::SpiffeId& id,
                                                                       CertPriority priority) {
  std::shared_ptr<identity::CredentialHolder> holder = certs_.Acquire(id, priority, absl::Now());
  Pump();
  std::weak_ptr<std::atomic<CertificateClient*>> weak = self_;
  runtime::EventLoop* loop = loop_;
  // An aliasing handle: one Acquire, one Release when the last copy goes.
  identity::CredentialHolder* raw = holder.get();
  return std::shared_ptr<identity::CredentialHolder>(
      raw, [holder, weak, loop, id](identity::CredentialHolder*) {
        auto self = weak.lock();
        if (!self || *self == nullptr) return;
        loop->Post([weak, id] {
          auto s = weak.lock();
          CertificateClient* c = s ? s->load() : nullptr;
          if (c != nullptr) c->Release(id);
        });
      });
}

void CertificateClient::Release(const identity::SpiffeId& id) {
  certs_.Release(id);
  Pump();
}

std::optional<CertStatus> CertificateClient::StatusOf(const identity::SpiffeId& id) const {
  for (CertStatus& s : certs_.Status()) {
    if (s.id == id) return std::move(s);
  }
  return std::nullopt;
}

absl::StatusOr<PemPair> CredentialsPem(const identity::Credentials& creds) {
  tls::UniquePtr<BIO> chain(BIO_new(BIO_s_mem()));
  tls::UniquePtr<BIO> key(BIO_new(BIO_s_mem()));
  if (!chain || !key) return absl::InternalError("out of memory rendering PEM");
  for (const std::string& der : creds.chain_der()) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    tls::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
    if (!cert || !PEM_write_bio_X509(chain.get(), cert.get())) {
      return absl::InternalError("cannot render the certificate chain as PEM");
    }
  }
  if (!PEM_write_bio_PrivateKey(key.get(), creds.private_key(), nullptr, nullptr, 0, nullptr,
                                nullptr)) {
    return absl::InternalError("cannot render the private key as PEM");
  }
  PemPair out;
  out.chain = std::string(tls::MemBioContents(chain.get()));
  std::string_view key_pem = tls::MemBioContents(key.get());
  out.key = std::string(key_pem);
  // The key's copy in the BIO is wiped with it.
  OPENSSL_cleanse(const_cast<char*>(key_pem.data()), key_pem.size());
  return out;
}

}  // namespace ambient::xds
