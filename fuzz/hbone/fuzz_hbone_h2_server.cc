// An authenticated but hostile HBONE client: a real TLS 1.3 mTLS handshake
// with our server Connection, then the fuzz input as the client's HTTP/2
// bytes (after a valid preface). The server must never crash, leak or
// misbehave; it accepts every CONNECT it is offered, echoes what it reads and
// answers the rest, so stream handling and flow control are exercised too.
#include <openssl/ssl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "ambient/base/tls.h"
#include "ambient/hbone/connection.h"
#include "hbone/test_pki.h"

namespace {

using ambient::hbone::Connection;
using ambient::hbone::ConnectionOptions;
using ambient::hbone::Event;
using ambient::hbone::Role;
using ambient::hbone::testing::KeyAndCert;
using ambient::hbone::testing::TestCa;

struct Pki {
  TestCa ca;
  KeyAndCert server = ca.Leaf("spiffe://cluster.local/ns/default/sa/server");
  KeyAndCert client = ca.Leaf("spiffe://cluster.local/ns/default/sa/client");
  ambient::tls::UniquePtr<SSL_CTX> server_ctx = ca.Context(server, true);
  ambient::tls::UniquePtr<SSL_CTX> client_ctx = ca.Context(client, false);
};

Pki* GetPki() {
  static Pki* pki = new Pki;
  return pki;
}

// Moves the server's output into the raw client's TLS and back.
void Shuttle(Connection* server, SSL* client, BIO* client_net) {
  for (int i = 0; i < 64; ++i) {
    bool moved = false;
    auto out = server->PendingOutput();
    if (!out.empty()) {
      BIO_write(client_net, out.data(), static_cast<int>(out.size()));
      server->ConsumeOutput(out.size());
      moved = true;
    }
    uint8_t buf[16384];
    // Drive the client (handshake or reading and discarding responses).
    if (!SSL_is_init_finished(client)) {
      SSL_do_handshake(client);
    } else {
      while (SSL_read(client, buf, sizeof(buf)) > 0) {
      }
    }
    int pending = static_cast<int>(BIO_ctrl_pending(client_net));
    if (pending > 0) {
      std::string cipher(static_cast<size_t>(pending), '\0');
      BIO_read(client_net, cipher.data(), pending);
      (void)server->Receive(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(cipher.data()),
                                                cipher.size()),
                            absl::UnixEpoch());
      moved = true;
    }
    Event ev;
    while (server->PollEvent(&ev)) {
      if (ev.type == Event::Type::kStreamRequest) {
        (void)server->AcceptStream(ev.stream);
      } else if (ev.type == Event::Type::kStreamReadable) {
        uint8_t data[4096];
        size_t n = server->StreamRead(ev.stream, absl::MakeSpan(data));
        if (n > 0) (void)server->StreamWrite(ev.stream, absl::MakeConstSpan(data, n));
        if (server->StreamAtEof(ev.stream)) (void)server->StreamShutdownWrite(ev.stream);
      }
      moved = true;
    }
    if (!moved) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Pki* pki = GetPki();
  ConnectionOptions o;
  o.role = Role::kServer;
  o.ssl_ctx = pki->server_ctx.get();
  auto server = Connection::New(std::move(o));
  if (!server.ok()) return 0;
  (*server)->Start(absl::UnixEpoch());

  ambient::tls::UniquePtr<SSL> client(SSL_new(pki->client_ctx.get()));
  BIO* internal = nullptr;
  BIO* net = nullptr;
  BIO_new_bio_pair(&internal, 1 << 20, &net, 1 << 20);
  SSL_set_bio(client.get(), internal, internal);
  SSL_set_connect_state(client.get());
  Shuttle(server->get(), client.get(), net);
  if (SSL_is_init_finished(client.get())) {
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    std::string plain(kPreface, sizeof(kPreface) - 1);
    plain.append(reinterpret_cast<const char*>(data), size);
    // Feed in slices so frame boundaries fall anywhere.
    size_t off = 0;
    while (off < plain.size() && !(*server)->IsClosed()) {
      size_t n = std::min<size_t>(plain.size() - off, 1000);
      SSL_write(client.get(), plain.data() + off, static_cast<int>(n));
      off += n;
      Shuttle(server->get(), client.get(), net);
    }
    (*server)->OnTimeout(absl::UnixEpoch() + absl::Seconds(31));
    Shuttle(server->get(), client.get(), net);
  }
  BIO_free(net);
  return 0;
}
