#include "identity/pem.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/mem.h>
#include <openssl/pem.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ambient::identity::internal {

void ClearErrors() { ERR_clear_error(); }

absl::StatusOr<bssl::UniquePtr<CRYPTO_BUFFER>> NewBuffer(absl::string_view der) {
  bssl::UniquePtr<CRYPTO_BUFFER> buf(
      CRYPTO_BUFFER_new(reinterpret_cast<const uint8_t*>(der.data()), der.size(), nullptr));
  if (buf == nullptr) return absl::ResourceExhaustedError("out of memory");
  return buf;
}

absl::StatusOr<bssl::UniquePtr<X509>> ParseCertificate(CRYPTO_BUFFER* buf,
                                                       absl::string_view what) {
  bssl::UniquePtr<X509> cert(X509_parse_from_buffer(buf));
  if (cert == nullptr) {
    ClearErrors();
    return absl::InvalidArgumentError(absl::StrCat(what, ": certificate does not parse as X.509 DER"));
  }
  return cert;
}

absl::StatusOr<std::vector<bssl::UniquePtr<CRYPTO_BUFFER>>> ReadPemCertificates(
    absl::string_view pem, absl::string_view what) {
  std::vector<bssl::UniquePtr<CRYPTO_BUFFER>> out;
  if (pem.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": PEM input too large"));
  }
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  for (int index = 0;; ++index) {
    char* name = nullptr;
    char* header = nullptr;
    uint8_t* data = nullptr;
    long len = 0;
    if (!PEM_read_bio(bio.get(), &name, &header, &data, &len)) {
      uint32_t err = ERR_peek_last_error();
      ClearErrors();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) break;
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": PEM block ", index, " is malformed (bad base64 or framing)"));
    }
    bssl::UniquePtr<char> name_owner(name);
    bssl::UniquePtr<char> header_owner(header);
    bssl::UniquePtr<uint8_t> data_owner(data);
    if (std::strcmp(name, "CERTIFICATE") != 0) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": PEM block ", index, " is \"",
                                                     name, "\", expected \"CERTIFICATE\""));
    }
    absl::StatusOr<bssl::UniquePtr<CRYPTO_BUFFER>> buf = NewBuffer(
        absl::string_view(reinterpret_cast<const char*>(data), static_cast<size_t>(len)));
    if (!buf.ok()) return buf.status();
    absl::StatusOr<bssl::UniquePtr<X509>> cert =
        ParseCertificate(buf->get(), absl::StrCat(what, ": PEM block ", index));
    if (!cert.ok()) return cert.status();
    out.push_back(*std::move(buf));
  }
  return out;
}

}  // namespace ambient::identity::internal
