// identity benchmarks: SPIFFE ID parsing, and X509-SVID chain verification
// next to a bare X509_verify_cert of the same chain against the same store
// (the peer measured in the same run). See bench/RESULTS.md.
#include <benchmark/benchmark.h>
#include <openssl/x509.h>

#include <string>
#include <vector>

#include "ambient/base/tls.h"
#include "ambient/identity/spiffe_id.h"
#include "ambient/identity/svid_verifier.h"
#include "ambient/identity/trust_bundle.h"
#include "support/test_pki.h"

namespace {

namespace id = ambient::identity;
using ambient::test_support::CaSpec;
using ambient::test_support::Issue;
using ambient::test_support::Issued;
using ambient::test_support::kNow;
using ambient::test_support::LeafSpec;

const std::vector<std::string>& Ids() {
  static const auto* ids = new std::vector<std::string>{
      "spiffe://cluster.local/ns/default/sa/bookinfo-productpage",
      "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
      "spiffe://example.org/ns/payments/sa/ledger",
      "spiffe://td.example.com/workload/frontend/v2",
  };
  return *ids;
}

// The hot-path parse: views into the input, no allocation.
void BM_ParseSpiffeIdView(benchmark::State& state) {
  const auto& ids = Ids();
  size_t i = 0;
  for (auto _ : state) {
    auto v = id::ParseSpiffeIdView(ids[i++ & 3]);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseSpiffeIdView);

// Parse into an owning SpiffeId (one string copy).
void BM_SpiffeIdParse(benchmark::State& state) {
  const auto& ids = Ids();
  size_t i = 0;
  for (auto _ : state) {
    auto v = id::SpiffeId::Parse(ids[i++ & 3]);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpiffeIdParse);

// Rejection path (error message built): a bad byte late in the path.
void BM_SpiffeIdRejectWithMessage(benchmark::State& state) {
  std::string bad = "spiffe://cluster.local/ns/default/sa/bookinfo?x";
  for (auto _ : state) {
    auto v = id::SpiffeId::Parse(bad);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpiffeIdRejectWithMessage);

// Rejection without a message: the allocation-free check.
void BM_ValidateSpiffeIdReject(benchmark::State& state) {
  std::string bad = "spiffe://cluster.local/ns/default/sa/bookinfo?x";
  for (auto _ : state) benchmark::DoNotOptimize(id::ValidateSpiffeId(bad));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ValidateSpiffeIdReject);

// Peer: ztunnel's Istio identity parse (prefix + split on '/', no character
// checks), as IstioIdentity::Parse implements it.
void BM_Peer_ZtunnelStyleIstioParse(benchmark::State& state) {
  std::string istio = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
  for (auto _ : state) {
    auto v = id::IstioIdentity::Parse(istio);
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_ZtunnelStyleIstioParse);

struct Pki {
  Pki() {
    ca = Issue(CaSpec("cluster.local"));
    inter = Issue(CaSpec("cluster.local", 2), &ca);
    leaf = Issue(LeafSpec("spiffe://cluster.local/ns/default/sa/bookinfo-productpage"), &inter);
    bundle = *id::TrustBundle::FromAuthorities(*id::TrustDomain::Parse("cluster.local"),
                                               {ca.cert.get()});
    set = *id::TrustBundleSet::Create({bundle});
    chain = {leaf.cert.get(), inter.cert.get()};
    leaf_der = ambient::test_support::ToDer(leaf.cert.get());
    inter_der = ambient::test_support::ToDer(inter.cert.get());
  }
  Issued ca, inter, leaf;
  std::shared_ptr<const id::TrustBundle> bundle;
  std::shared_ptr<const id::TrustBundleSet> set;
  std::vector<X509*> chain;
  std::string leaf_der, inter_der;
};

Pki& GetPki() {
  static Pki* pki = new Pki;
  return *pki;
}

// Peer: bare RFC 5280 path validation of leaf + intermediate against the
// same X509_STORE, with the same time, nothing SPIFFE.
void BM_Peer_BareX509VerifyCert(benchmark::State& state) {
  Pki& pki = GetPki();
  for (auto _ : state) {
    ambient::tls::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    ambient::tls::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
    X509_up_ref(pki.inter.cert.get());
    sk_X509_push(untrusted.get(), pki.inter.cert.get());
    X509_STORE_CTX_init(ctx.get(), pki.bundle->store(), pki.leaf.cert.get(), untrusted.get());
    X509_STORE_CTX_set_time(ctx.get(), 0, kNow);
    int ok = X509_verify_cert(ctx.get());
    if (ok != 1) state.SkipWithError("bare verify failed");
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_BareX509VerifyCert);

// The same chain through the full X509-SVID verification (URI SAN, SPIFFE ID,
// leaf rules, bundle of the leaf's trust domain, path validation, expected
// identity).
void BM_VerifyX509Svid(benchmark::State& state) {
  Pki& pki = GetPki();
  id::VerifyPolicy policy = id::VerifyPolicy::ExpectIdentities(
      {*id::SpiffeId::Parse("spiffe://cluster.local/ns/default/sa/bookinfo-productpage")});
  for (auto _ : state) {
    auto peer = id::VerifyX509Svid(pki.chain, *pki.set, policy, kNow);
    if (!peer.ok()) state.SkipWithError("spiffe verify failed");
    benchmark::DoNotOptimize(peer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyX509Svid);

// What the BoringSSL hook runs per handshake: DER (as the TLS library hands
// it over) parsed, then verified through an SvidVerifier and its bundle
// source.
void BM_SvidVerifierVerifyDer(benchmark::State& state) {
  Pki& pki = GetPki();
  auto source = std::make_shared<id::TrustBundleSource>(pki.set);
  auto verifier = *id::SvidVerifier::Create(source, id::VerifyPolicy::SameTrustDomain(
                                                        *id::TrustDomain::Parse("cluster.local")),
                                            [] { return kNow; });
  std::vector<absl::string_view> chain = {pki.leaf_der, pki.inter_der};
  for (auto _ : state) {
    auto peer = verifier->VerifyDer(chain);
    if (!peer.ok()) state.SkipWithError("verify DER failed");
    benchmark::DoNotOptimize(peer);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SvidVerifierVerifyDer);

// Peer of the above: parse the same two DER buffers, then bare verify.
void BM_Peer_ParseDerThenBareVerify(benchmark::State& state) {
  Pki& pki = GetPki();
  for (auto _ : state) {
    const auto* lp = reinterpret_cast<const unsigned char*>(pki.leaf_der.data());
    const auto* ip = reinterpret_cast<const unsigned char*>(pki.inter_der.data());
    ambient::tls::UniquePtr<X509> leaf(
        d2i_X509(nullptr, &lp, static_cast<long>(pki.leaf_der.size())));
    X509* inter = d2i_X509(nullptr, &ip, static_cast<long>(pki.inter_der.size()));
    ambient::tls::UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    ambient::tls::UniquePtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
    sk_X509_push(untrusted.get(), inter);
    X509_STORE_CTX_init(ctx.get(), pki.bundle->store(), leaf.get(), untrusted.get());
    X509_STORE_CTX_set_time(ctx.get(), 0, kNow);
    int ok = X509_verify_cert(ctx.get());
    if (ok != 1) state.SkipWithError("bare verify failed");
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Peer_ParseDerThenBareVerify);

}  // namespace

BENCHMARK_MAIN();
