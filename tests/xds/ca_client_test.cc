// The Istio CA exchange without a network: our CSR is signed by a test CA
// (tests/support/test_pki.h) the way istiod signs it, and the answer is
// checked as ztunnel checks it.
#include "ambient/xds/ca_client.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string>

#include "ambient/base/tls.h"
#include "ca.pb.h"
#include "gtest/gtest.h"
#include "support/test_pki.h"
#include "test_ca.h"

namespace ambient::xds {
namespace {

namespace ca_wire = ::ambient::wire::istio::ca;
using test_support::Issued;

identity::SpiffeId Id(const std::string& s) { return *identity::SpiffeId::Parse(s); }

// Sign plays istiod: a leaf for `id` over the CSR's public key, by `ca`.
std::string Sign(const std::string& csr_pem, const std::string& id, const Issued& ca) {
  return test_ca::SignCsr(csr_pem, id, ca);
}

std::string Response(std::vector<std::string> chain) { return test_ca::Response(chain); }

class CaClientTest : public ::testing::Test {
 protected:
  Issued root_ = test_support::Issue(test_support::CaSpec("cluster.local", 1));
  identity::SpiffeId id_ = Id("spiffe://cluster.local/ns/demo/sa/client");
};

TEST_F(CaClientTest, CsrIsP256WithTheIdAsItsOnlyCriticalUriSanAndAnEmptySubject) {
  absl::StatusOr<CertificateSigningRequest> csr = MakeCsr(id_);
  ASSERT_TRUE(csr.ok()) << csr.status();
  EXPECT_NE(csr->key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);  // PKCS#8
  tls::UniquePtr<BIO> bio(
      BIO_new_mem_buf(csr->csr_pem.data(), static_cast<int>(csr->csr_pem.size())));
  tls::UniquePtr<X509_REQ> req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(req);
  tls::UniquePtr<EVP_PKEY> pub(X509_REQ_get_pubkey(req.get()));
  EXPECT_EQ(EVP_PKEY_id(pub.get()), EVP_PKEY_EC);
  EXPECT_EQ(X509_REQ_verify(req.get(), pub.get()), 1);
  EXPECT_EQ(X509_NAME_entry_count(X509_REQ_get_subject_name(req.get())), 0);
  tls::UniquePtr<STACK_OF(X509_EXTENSION)> exts(X509_REQ_get_extensions(req.get()));
  ASSERT_EQ(sk_X509_EXTENSION_num(exts.get()), 1u);
  X509_EXTENSION* san = sk_X509_EXTENSION_value(exts.get(), 0);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(san)), NID_subject_alt_name);
  EXPECT_TRUE(X509_EXTENSION_get_critical(san));
  auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(san));
  ASSERT_EQ(static_cast<size_t>(sk_GENERAL_NAME_num(names)), 1u);
  GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, 0);
  ASSERT_EQ(gn->type, GEN_URI);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(
                            ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier)),
                        ASN1_STRING_length(gn->d.uniformResourceIdentifier)),
            id_.str());
  GENERAL_NAMES_free(names);
  // Two CSRs, two keys.
  EXPECT_NE(MakeCsr(id_)->key_pem, csr->key_pem);
}

TEST_F(CaClientTest, RequestCarriesTheCsrLifetimeAndImpersonation) {
  CertificateSigningRequest csr = *MakeCsr(id_);
  ca_wire::IstioCertificateRequest r;
  ASSERT_TRUE(r.ParseFromString(EncodeCertificateRequest(csr, absl::Hours(24), true)));
  EXPECT_EQ(r.csr(), csr.csr_pem);
  EXPECT_EQ(r.validity_duration(), 86400);
  EXPECT_EQ(r.metadata().fields().at("ImpersonatedIdentity").string_value(), id_.str());
  ASSERT_TRUE(r.ParseFromString(EncodeCertificateRequest(csr, absl::ZeroDuration(), false)));
  EXPECT_EQ(r.validity_duration(), 1);
  EXPECT_FALSE(r.has_metadata());
}

TEST_F(CaClientTest, AGoodAnswerBecomesCredentialsAndTheRoot) {
  CertificateSigningRequest csr = *MakeCsr(id_);
  std::string leaf = Sign(csr.csr_pem, id_.str(), root_);
  absl::StatusOr<IssuedCertificate> got =
      DecodeCertificateResponse(Response({leaf, root_.CertPem()}), csr, test_support::kNow);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->credentials->id(), id_);
  EXPECT_EQ(got->root_pem, root_.CertPem());
  EXPECT_EQ(got->credentials->refresh_at(),
            (test_support::kNow - test_support::kDay) + test_support::kDay);  // half its lifetime
  // With an intermediate between the leaf and the root.
  Issued mid = test_support::Issue(test_support::CaSpec("cluster.local", 2), &root_);
  std::string leaf2 = Sign(csr.csr_pem, id_.str(), mid);
  got = DecodeCertificateResponse(Response({leaf2, mid.CertPem(), root_.CertPem()}), csr,
                                  test_support::kNow);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->credentials->chain_der().size(), 2u);
}

TEST_F(CaClientTest, BadAnswersAreRefusedWithTheReason) {
  CertificateSigningRequest csr = *MakeCsr(id_);
  const int64_t now = test_support::kNow;
  EXPECT_EQ(DecodeCertificateResponse("\xff\xff", csr, now).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodeCertificateResponse(Response({}), csr, now).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string leaf = Sign(csr.csr_pem, id_.str(), root_);
  EXPECT_EQ(DecodeCertificateResponse(Response({leaf}), csr, now).status().code(),
            absl::StatusCode::kInvalidArgument);  // no root
  // Another identity than asked for.
  std::string other = Sign(csr.csr_pem, "spiffe://cluster.local/ns/demo/sa/mallory", root_);
  absl::Status st =
      DecodeCertificateResponse(Response({other, root_.CertPem()}), csr, now).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("sa/mallory, asked for"), std::string::npos) << st;
  // Signed for another key (another CSR's).
  CertificateSigningRequest second = *MakeCsr(id_);
  std::string theirs = Sign(second.csr_pem, id_.str(), root_);
  st = DecodeCertificateResponse(Response({theirs, root_.CertPem()}), csr, now).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
  // A chain that does not lead to the root it names, and an expired leaf.
  Issued stranger = test_support::Issue(test_support::CaSpec("cluster.local", 9));
  st = DecodeCertificateResponse(Response({leaf, stranger.CertPem()}), csr, now).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("does not verify"), std::string::npos) << st;
  st = DecodeCertificateResponse(Response({leaf, root_.CertPem()}), csr,
                                 now + 3 * test_support::kDay)
           .status();
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
}

}  // namespace
}  // namespace ambient::xds
