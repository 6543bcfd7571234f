#include "identity/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ambient::identity::internal {

void ClearErrors() { ERR_clear_error(); }

absl::StatusOr<tls::UniquePtr<X509>> ParseCertificate(absl::string_view der,
                                                      absl::string_view what) {
  if (der.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": certificate too large"));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* end = p + der.size();
  tls::UniquePtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (cert == nullptr || p != end) {
    ClearErrors();
    return absl::InvalidArgumentError(absl::StrCat(what, ": certificate does not parse as X.509 DER"));
  }
  return cert;
}

absl::StatusOr<std::vector<PemCertificate>> ReadPemCertificates(absl::string_view pem,
                                                                absl::string_view what) {
  std::vector<PemCertificate> out;
  if (pem.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": PEM input too large"));
  }
  if (pem.empty()) return out;  // (OpenSSL's BIO_new_mem_buf refuses a null buffer)
  tls::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  for (int index = 0;; ++index) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (!PEM_read_bio(bio.get(), &name, &header, &data, &len)) {
      unsigned long err = ERR_peek_last_error();
      ClearErrors();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": PEM block ", index, " is malformed (bad base64 or framing)"));
    }
    tls::UniquePtr<char> name_owner(name);
    tls::UniquePtr<char> header_owner(header);
    tls::UniquePtr<uint8_t> data_owner(data);
    if (std::strcmp(name, "CERTIFICATE") != 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": PEM block ", index, " is \"",
                                                     name, "\", expected \"CERTIFICATE\""));
    }
    PemCertificate c;
    c.der.assign(reinterpret_cast<const char*>(data), static_cast<size_t>(len));
    absl::StatusOr<tls::UniquePtr<X509>> cert =
        ParseCertificate(c.der, absl::StrCat(what, ": PEM block ", index));
    if (!cert.ok()) return cert.status();
    c.cert = *std::move(cert);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace ambient::identity::internal
