// A gRPC channel over server-verified TLS (memory BIOs): ambient/grpc/tls.h.
// The only file of lib/grpc that names the TLS library.
#include "ambient/grpc/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "ambient/base/address.h"
#include "grpc/output_buffer.h"

namespace ambient::grpc {
namespace {

constexpr size_t kMaxRootsPem = 1 << 20;
constexpr absl::Duration kHandshakeTimeout = absl::Seconds(10);

std::string TlsErrors() {
  std::string out;
  while (uint32_t e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no detail" : out;
}

bool IsIp(const std::string& name) { return IpAddress::Parse(name).ok(); }

class TlsChannel final : public Channel {
 public:
  TlsChannel(std::unique_ptr<Channel> inner, std::string server_name, absl::Time now)
      : inner_(std::move(inner)), server_name_(std::move(server_name)), started_(now) {}
  ~TlsChannel() override {
    if (ssl_ != nullptr) SSL_free(ssl_);  // frees both BIOs
  }

  absl::Status Init(SSL_CTX* ctx) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) return absl::ResourceExhaustedError("SSL_new: " + TlsErrors());
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (rbio_ == nullptr || wbio_ == nullptr) {
      if (rbio_ != nullptr) BIO_free(rbio_);
      if (wbio_ != nullptr) BIO_free(wbio_);
      rbio_ = wbio_ = nullptr;
      return absl::ResourceExhaustedError("BIO_new failed");
    }
    BIO_set_mem_eof_return(rbio_, -1);  // empty = "try again", not EOF
    SSL_set_bio(ssl_, rbio_, wbio_);
    SSL_set_connect_state(ssl_);
    static const uint8_t kAlpn[] = {2, 'h', '2'};
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    bool named =
        IsIp(server_name_)
            ? X509_VERIFY_PARAM_set1_ip_asc(param, server_name_.c_str()) == 1
            : X509_VERIFY_PARAM_set1_host(param, server_name_.data(), server_name_.size()) == 1;
    if (!named || SSL_set_alpn_protos(ssl_, kAlpn, sizeof(kAlpn)) != 0 ||
        (!IsIp(server_name_) && SSL_set_tlsext_host_name(ssl_, server_name_.c_str()) != 1)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot use \"", server_name_, "\" as the server name: ", TlsErrors()));
    }
    Handshake();
    return absl::OkStatus();
  }

  absl::Status Receive(absl::string_view bytes, absl::Time now) override {
    if (inner_->broken()) return inner_->error();
    if (!bytes.empty() && BIO_write(rbio_, bytes.data(), static_cast<int>(bytes.size())) !=
                              static_cast<int>(bytes.size())) {
      Fail("buffering received TLS records failed");
      return inner_->error();
    }
    if (!done_) {
      Handshake();
      if (!done_) return inner_->broken() ? inner_->error() : absl::OkStatus();
    }
    char buf[16384];
    for (;;) {
      int n = SSL_read(ssl_, buf, sizeof(buf));
      if (n > 0) {
        absl::Status st = inner_->Receive(absl::string_view(buf, static_cast<size_t>(n)), now);
        if (!st.ok()) return st;
        continue;
      }
      int err = SSL_get_error(ssl_, n);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        inner_->ReceiveEof(now);
        break;
      }
      Fail(absl::StrCat("TLS record from the server: ", TlsErrors()));
      break;
    }
    return inner_->broken() ? inner_->error() : absl::OkStatus();
  }

  void ReceiveEof(absl::Time now) override {
    if (!done_) {
      Fail("the server closed the connection during the TLS handshake");
      return;
    }
    inner_->ReceiveEof(now);
  }

  absl::string_view PendingOutput() override {
    if (done_ && !inner_->broken()) {
      absl::string_view plain = inner_->PendingOutput();
      if (!plain.empty()) {
        // Memory BIOs never push back: SSL_write takes all of it.
        if (SSL_write(ssl_, plain.data(), static_cast<int>(plain.size())) !=
            static_cast<int>(plain.size())) {
          Fail(absl::StrCat("TLS write: ", TlsErrors()));
        } else {
          inner_->ConsumeOutput(plain.size());
        }
      }
    }
    DrainWbio();
    return out_.Pending();
  }
  void ConsumeOutput(size_t n) override { out_.Consume(n); }

  absl::StatusOr<CallId> StartCall(absl::string_view method, absl::Time deadline,
                                   const Metadata& metadata, absl::Time now) override {
    return inner_->StartCall(method, deadline, metadata, now);
  }
  absl::Status SendMessage(CallId call, absl::string_view message, absl::Time now) override {
    return inner_->SendMessage(call, message, now);
  }
  absl::Status CloseSend(CallId call, absl::Time now) override {
    return inner_->CloseSend(call, now);
  }
  void Cancel(CallId call, absl::Time now) override { inner_->Cancel(call, now); }
  void Abort(absl::Status why) override { inner_->Abort(std::move(why)); }
  void SetMetadata(Metadata metadata) override { inner_->SetMetadata(std::move(metadata)); }
  bool PollEvent(CallEvent* out) override { return inner_->PollEvent(out); }
  absl::Time NextDeadline() const override {
    absl::Time t = inner_->NextDeadline();
    if (!done_ && !inner_->broken()) t = std::min(t, started_ + kHandshakeTimeout);
    return t;
  }
  void OnTimeout(absl::Time now) override {
    if (!done_ && now >= started_ + kHandshakeTimeout) {
      Fail(absl::StrCat("TLS handshake with ", server_name_, " not done within ",
                        absl::FormatDuration(kHandshakeTimeout)));
      return;
    }
    inner_->OnTimeout(now);
  }
  bool broken() const override { return inner_->broken(); }
  absl::Status error() const override { return inner_->error(); }
  bool draining() const override { return inner_->draining(); }
  size_t open_calls() const override { return inner_->open_calls(); }

 private:
  void Fail(absl::string_view why) { inner_->Abort(absl::UnavailableError(why)); }

  void Handshake() {
    int rv = SSL_do_handshake(ssl_);
    if (rv == 1) {
      const uint8_t* alpn = nullptr;
      unsigned len = 0;
      SSL_get0_alpn_selected(ssl_, &alpn, &len);
      if (len != 2 || alpn[0] != 'h' || alpn[1] != '2') {
        Fail(absl::StrCat("the server at ", server_name_, " did not agree to ALPN h2"));
        return;
      }
      done_ = true;
      return;
    }
    int err = SSL_get_error(ssl_, rv);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
    long verify = SSL_get_verify_result(ssl_);
    std::string reason = verify != X509_V_OK ? absl::StrCat("certificate rejected: ",
                                                            X509_verify_cert_error_string(verify))
                                             : TlsErrors();
    Fail(absl::StrCat("TLS handshake with ", server_name_, " failed: ", reason));
  }

  void DrainWbio() {
    char buf[16384];
    for (;;) {
      int n = BIO_read(wbio_, buf, sizeof(buf));
      if (n <= 0) break;
      out_.Append(buf, static_cast<size_t>(n));
    }
  }

  std::unique_ptr<Channel> inner_;
  std::string server_name_;
  absl::Time started_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;  // owned by ssl_
  BIO* wbio_ = nullptr;  // owned by ssl_
  bool done_ = false;
  OutputBuffer out_;
};

}  // namespace

absl::StatusOr<ssl_ctx_st*> NewClientTlsContext(absl::string_view roots_pem) {
  if (roots_pem.empty() || roots_pem.size() > kMaxRootsPem) {
    return absl::InvalidArgumentError("root certificates: want 1 byte to 1 MiB of PEM");
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  if (ctx == nullptr) return absl::ResourceExhaustedError("SSL_CTX_new: " + TlsErrors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  BIO* in = BIO_new_mem_buf(roots_pem.data(), static_cast<int>(roots_pem.size()));
  int count = 0;
  bool bad = in == nullptr;
  while (!bad) {
    X509* cert = PEM_read_bio_X509(in, nullptr, nullptr, nullptr);
    if (cert == nullptr) {
      uint32_t e = ERR_peek_last_error();
      // The end of the input, after at least one certificate, is fine.
      if (count > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
      } else {
        bad = true;
      }
      break;
    }
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert) != 1) bad = true;
    X509_free(cert);
    ++count;
  }
  if (in != nullptr) BIO_free(in);
  if (bad || count == 0) {
    std::string why = TlsErrors();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(absl::StrCat("root certificates: ", why));
  }
  return ctx;
}

void FreeTlsContext(ssl_ctx_st* ctx) {
  if (ctx != nullptr) SSL_CTX_free(ctx);
}

absl::StatusOr<std::unique_ptr<Channel>> NewTlsChannel(ChannelOptions options, TlsOptions tls,
                                                       absl::Time now) {
  if (tls.ssl_ctx == nullptr) return absl::InvalidArgumentError("TLS channel needs an SSL_CTX");
  if (tls.server_name.empty() || tls.server_name.find('\0') != std::string::npos ||
      tls.server_name.size() > 253) {
    return absl::InvalidArgumentError("TLS channel needs the server's name");
  }
  absl::StatusOr<std::unique_ptr<Channel>> inner = Channel::New(std::move(options), now);
  if (!inner.ok()) return inner.status();
  auto ch = std::make_unique<TlsChannel>(std::move(*inner), tls.server_name, now);
  if (absl::Status st = ch->Init(tls.ssl_ctx); !st.ok()) return st;
  return ch;
}

}  // namespace ambient::grpc
