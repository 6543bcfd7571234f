// ambient/base/tls.h: owning pointers to objects of the TLS library ambient
// was built with.
//
// ambient builds on BoringSSL (the default) or OpenSSL 3 (-DAMBIENT_TLS=openssl);
// ambient/version.h says which. Both libraries name their types alike (SSL_CTX,
// X509, EVP_PKEY, ...), so the C++ APIs take and return the same types on
// either; what differs is how an owned object is freed. tls::UniquePtr<T> is
// that owner on both: BoringSSL's tls::UniquePtr<T> there, and the same shape
// with the matching *_free function on OpenSSL. As with tls::UniquePtr, an
// owned STACK_OF(T) frees its elements too.
#ifndef AMBIENT_BASE_TLS_H_
#define AMBIENT_BASE_TLS_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "ambient/base/tls.h"
#include "ambient/version.h"

#if AMBIENT_TLS_BORINGSSL && !defined(OPENSSL_IS_BORINGSSL)
#error "ambient was built with BoringSSL: put BoringSSL's include directory first"
#endif
#if AMBIENT_TLS_OPENSSL && defined(OPENSSL_IS_BORINGSSL)
#error "ambient was built with OpenSSL 3: BoringSSL's headers are in the include path"
#endif

namespace ambient::tls {

#if AMBIENT_TLS_BORINGSSL

template <typename T>
using UniquePtr = bssl::UniquePtr<T>;

#else

template <typename T>
struct Deleter;

#define AMBIENT_TLS_DELETER(type, free_fn)         \
  template <>                                      \
  struct Deleter<type> {                           \
    void operator()(type* p) const { free_fn(p); } \
  };
AMBIENT_TLS_DELETER(SSL_CTX, SSL_CTX_free)
AMBIENT_TLS_DELETER(SSL, SSL_free)
AMBIENT_TLS_DELETER(SSL_SESSION, SSL_SESSION_free)
AMBIENT_TLS_DELETER(X509, X509_free)
AMBIENT_TLS_DELETER(X509_STORE, X509_STORE_free)
AMBIENT_TLS_DELETER(X509_STORE_CTX, X509_STORE_CTX_free)
AMBIENT_TLS_DELETER(X509_REQ, X509_REQ_free)
AMBIENT_TLS_DELETER(X509_NAME, X509_NAME_free)
AMBIENT_TLS_DELETER(X509_EXTENSION, X509_EXTENSION_free)
AMBIENT_TLS_DELETER(EVP_PKEY, EVP_PKEY_free)
AMBIENT_TLS_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free)
AMBIENT_TLS_DELETER(EVP_CIPHER_CTX, EVP_CIPHER_CTX_free)
AMBIENT_TLS_DELETER(EVP_MD_CTX, EVP_MD_CTX_free)
AMBIENT_TLS_DELETER(BIO, BIO_free)
AMBIENT_TLS_DELETER(BIGNUM, BN_free)
// ASN1_TIME, ASN1_IA5STRING, ASN1_OCTET_STRING, ... are all ASN1_STRING here.
AMBIENT_TLS_DELETER(ASN1_STRING, ASN1_STRING_free)
AMBIENT_TLS_DELETER(GENERAL_NAME, GENERAL_NAME_free)
AMBIENT_TLS_DELETER(char, OPENSSL_free)
AMBIENT_TLS_DELETER(uint8_t, OPENSSL_free)
#undef AMBIENT_TLS_DELETER

template <>
struct Deleter<STACK_OF(X509)> {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};
template <>
struct Deleter<STACK_OF(X509_EXTENSION)> {
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
};
template <>
struct Deleter<GENERAL_NAMES> {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};

template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter<T> >;

#endif

// MemBioContents lends the bytes a memory BIO (BIO_s_mem) holds.
inline std::string_view MemBioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) return {};
  return std::string_view(data, static_cast<size_t>(len));
}

}  // namespace ambient::tls

#endif  // AMBIENT_BASE_TLS_H_
