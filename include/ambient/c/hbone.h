/* ambient/c/hbone.h: HBONE tunnels (TLS 1.3 mTLS + HTTP/2 CONNECT), sans I/O.
 *
 * Object model. Two opaque objects:
 *  - ambient_hbone_tls: the TLS side of HBONE for one role (client or
 *    server): an SSL_CTX of libambient's TLS library with our credentials, the trust bundles and
 *    ambient's SPIFFE verifier (server: clients of our own trust domain;
 *    client: the server must be one of the expected identities given per
 *    connection). It can also wrap a host's own SSL_CTX. Shared by any number
 *    of connections; it keeps what it needs alive, so it may be freed while
 *    connections made from it live on.
 *  - ambient_hbone_conn: one HBONE connection that never touches sockets,
 *    threads or clocks. The host feeds it the bytes it read
 *    (ambient_hbone_conn_receive), writes out what it produces
 *    (ambient_hbone_conn_pending_output + _consume_output), passes the time
 *    (monotonic nanoseconds, any origin) on the calls that need it and calls
 *    ambient_hbone_conn_on_timeout when ambient_hbone_conn_next_deadline has
 *    passed. What happened is pulled with ambient_hbone_conn_poll_event after
 *    every call; no callback ever re-enters the host.
 *
 * Streams. A client opens CONNECT streams (ambient_hbone_conn_open_stream);
 * a server gets AMBIENT_HBONE_EVENT_STREAM_REQUEST and answers with
 * ambient_hbone_conn_accept_stream (200, after the host authorized the peer
 * and connected upstream) or ambient_hbone_conn_reject_stream (400/401/503).
 * Payload moves with ambient_hbone_stream_write / _read. Flow-control windows
 * are released only as the host reads, so a slow reader slows the sender.
 * ambient_hbone_stream_shutdown_write sends END_STREAM (TCP EOF); the peer's
 * END_STREAM shows as ambient_hbone_stream_at_eof once everything before it
 * was read (then shutdown(SHUT_WR) the TCP side). A stream id stays valid
 * until its AMBIENT_HBONE_EVENT_STREAM_CLOSED has been polled.
 *
 * Errors. Setup calls return an owned ambient_error* (NULL on success). Hot
 * path calls return an int: >= 0 on success (a count where documented), a
 * negative ambient_code on failure: AMBIENT_ERR_NOT_FOUND for an unknown or
 * released stream id, AMBIENT_ERR_FAILED_PRECONDITION for a stream or
 * connection in the wrong state, AMBIENT_ERR_INVALID_ARGUMENT for bad
 * arguments, AMBIENT_ERR_UNAVAILABLE when no stream can be opened now.
 *
 * Threads. An ambient_hbone_tls may be used by connections on any threads.
 * An ambient_hbone_conn is used by one thread at a time. */
#ifndef AMBIENT_C_HBONE_H_
#define AMBIENT_C_HBONE_H_

#include "ambient/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ambient_hbone_role says which end of HBONE an object is for. */
typedef enum ambient_hbone_role {
  AMBIENT_HBONE_CLIENT = 0,
  AMBIENT_HBONE_SERVER = 1
} ambient_hbone_role;

typedef struct ambient_hbone_tls ambient_hbone_tls;
typedef struct ambient_hbone_conn ambient_hbone_conn;

/* ambient_hbone_tls_options holds the PEM material ambient_hbone_tls_new
 * builds a TLS side from: our certificate chain, its private key and the
 * trust bundle of our trust domain (more trust sources will join it without
 * a new symbol). */
typedef struct ambient_hbone_tls_options ambient_hbone_tls_options;

/* ambient_hbone_tls_options_new returns empty options (all three parts must
 * be set), or NULL when out of memory. Free with
 * ambient_hbone_tls_options_free. Any thread; one options object must not be
 * used from two threads at once. */
AMBIENT_EXPORT ambient_hbone_tls_options* ambient_hbone_tls_options_new(void);

/* ambient_hbone_tls_options_free releases `opts` (the copy of the private
 * key is wiped first). NULL is allowed. */
AMBIENT_EXPORT void ambient_hbone_tls_options_free(ambient_hbone_tls_options* opts);

/* ambient_hbone_tls_options_set_cert_chain_pem sets our certificate chain
 * (`len` bytes of PEM, leaf first; the leaf must carry exactly one SPIFFE ID
 * URI SAN). The buffer need not be NUL-terminated and is copied; it is
 * parsed by ambient_hbone_tls_new. Errors (options unchanged):
 * AMBIENT_ERR_INVALID_ARGUMENT for NULL arguments. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_options_set_cert_chain_pem(
    ambient_hbone_tls_options* opts, const char* pem, size_t len);

/* ambient_hbone_tls_options_set_private_key_pem sets the chain's private key
 * (`len` bytes of PEM: PKCS#8, SEC1 or PKCS#1; ECDSA P-256 or RSA >= 2048).
 * Copied like the chain. Errors as ambient_hbone_tls_options_set_cert_chain_pem. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_options_set_private_key_pem(
    ambient_hbone_tls_options* opts, const char* pem, size_t len);

/* ambient_hbone_tls_options_set_trust_bundle sets the trust bundle of our
 * trust domain (`len` bytes: PEM certificates, or SPIFFE bundle JSON when it
 * starts with '{'). Copied like the chain. Errors as
 * ambient_hbone_tls_options_set_cert_chain_pem. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_options_set_trust_bundle(
    ambient_hbone_tls_options* opts, const char* bundle, size_t len);

/* ambient_hbone_tls_new makes the TLS side of `role` from `opts` (read, not
 * kept: free it when you like). On success `*out` owns a new object (free
 * with ambient_hbone_tls_free). Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL
 * arguments, a part not set, unparsable PEM/JSON, key not matching, leaf
 * without a SPIFFE ID; the message names the part),
 * AMBIENT_ERR_FAILED_PRECONDITION (the TLS library bound to the process is
 * not the one libambient was built with). It replaces ambient_hbone_tls_new_from_pem (role and three
 * buffers positionally), removed in issue 11, the version being 0.x. Any
 * thread. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_new(ambient_hbone_role role,
                                                    const ambient_hbone_tls_options* opts,
                                                    ambient_hbone_tls** out);

/* ambient_hbone_tls_new_from_files is ambient_hbone_tls_new with the three
 * parts read from files; an unreadable file is AMBIENT_ERR_NOT_FOUND (or
 * AMBIENT_ERR_PERMISSION_DENIED) naming the path; a file larger than 16 MiB
 * (or a device that never ends, such as /dev/zero) is
 * AMBIENT_ERR_INVALID_ARGUMENT, and no more than 16 MiB of it is read. It
 * keeps its positional form (the role, three paths and `out`): what the TLS
 * side grows goes into ambient_hbone_tls_options. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_new_from_files(ambient_hbone_role role,
                                                               const char* cert_path,
                                                               const char* key_path,
                                                               const char* bundle_path,
                                                               ambient_hbone_tls** out);

/* ambient_hbone_tls_new_from_ssl_ctx wraps a host's own SSL_CTX
 * (`ssl_ctx` is an SSL_CTX*, from the same TLS library libambient uses:
 * ambient_tls_backend()). The
 * HBONE TLS policy is applied to it (TLS 1.3 only, ALPN h2, no session
 * tickets; a server context refuses clients without certificates); its
 * certificates and peer verification are the host's, and it must verify
 * peers (SSL_VERIFY_PEER), else AMBIENT_ERR_INVALID_ARGUMENT. The object
 * takes its own reference to the SSL_CTX. Any thread. */
AMBIENT_EXPORT ambient_error* ambient_hbone_tls_new_from_ssl_ctx(ambient_hbone_role role,
                                                                 void* ssl_ctx,
                                                                 ambient_hbone_tls** out);

/* ambient_hbone_tls_get0_identity returns our own SPIFFE ID (NUL-terminated,
 * lent: valid while `tls` lives), or "" when `tls` wraps a host SSL_CTX or
 * is NULL. */
AMBIENT_EXPORT const char* ambient_hbone_tls_get0_identity(const ambient_hbone_tls* tls);

/* ambient_hbone_tls_free releases `tls`. NULL is allowed. Connections made
 * from it keep working. */
AMBIENT_EXPORT void ambient_hbone_tls_free(ambient_hbone_tls* tls);

/* ambient_hbone_header is one request header (name lowercase). The strings
 * need not be NUL-terminated. */
typedef struct ambient_hbone_header {
  const char* name;
  size_t name_len;
  const char* value;
  size_t value_len;
} ambient_hbone_header;

/* ambient_hbone_conn_new makes a connection for `tls`'s role. For a client,
 * `expected_ids` (`n_expected` NUL-terminated SPIFFE IDs, may be 0) are the
 * identities the server may present. On success `*out` owns the connection
 * (free with ambient_hbone_conn_free); call ambient_hbone_conn_start next.
 * Errors: AMBIENT_ERR_INVALID_ARGUMENT (NULL tls/out; a malformed expected
 * identity: "expected_ids[i]: ..." with the broken rule's
 * ambient_spiffe_id_error as the detail), AMBIENT_ERR_FAILED_PRECONDITION
 * (not the one libambient was built with). Any thread. */
AMBIENT_EXPORT ambient_error* ambient_hbone_conn_new(const ambient_hbone_tls* tls,
                                                     const char* const* expected_ids,
                                                     size_t n_expected, ambient_hbone_conn** out);

/* ambient_hbone_conn_free releases `conn` and every stream on it (without
 * telling the peer: drain first for a graceful end). NULL is allowed. */
AMBIENT_EXPORT void ambient_hbone_conn_free(ambient_hbone_conn* conn);

/* ambient_hbone_conn_start starts the connection at time `now_ns`: a client
 * produces its ClientHello; both sides arm the 10 s handshake deadline. */
AMBIENT_EXPORT void ambient_hbone_conn_start(ambient_hbone_conn* conn, uint64_t now_ns);

/* ambient_hbone_conn_receive processes `len` bytes read from the transport
 * (all of them). Returns 0, or the negative code of the failure that closed
 * the connection (AMBIENT_ERR_UNAUTHENTICATED / _PERMISSION_DENIED for TLS
 * and identity failures, AMBIENT_ERR_INVALID_ARGUMENT for malformed HTTP/2,
 * AMBIENT_ERR_DATA_LOSS for broken TLS records); the same is reported by
 * AMBIENT_HBONE_EVENT_CONNECTION_CLOSED, and pending output (a GOAWAY or an
 * alert) is still worth sending. */
AMBIENT_EXPORT int ambient_hbone_conn_receive(ambient_hbone_conn* conn, const uint8_t* data,
                                              size_t len, uint64_t now_ns);

/* ambient_hbone_conn_receive_eof says the transport delivers no more bytes. */
AMBIENT_EXPORT void ambient_hbone_conn_receive_eof(ambient_hbone_conn* conn, uint64_t now_ns);

/* ambient_hbone_conn_pending_output lends the bytes waiting to be written to
 * the transport in `*data`/`*len` (len 0 if none); valid until the next call
 * on `conn`. Returns 0. After writing n of them call
 * ambient_hbone_conn_consume_output(conn, n). */
AMBIENT_EXPORT int ambient_hbone_conn_pending_output(ambient_hbone_conn* conn, const uint8_t** data,
                                                     size_t* len);
/* ambient_hbone_conn_consume_output drops `n` written output bytes. */
AMBIENT_EXPORT void ambient_hbone_conn_consume_output(ambient_hbone_conn* conn, size_t n);

/* ambient_hbone_conn_next_deadline returns when ambient_hbone_conn_on_timeout
 * should be called, in the host's nanoseconds, or UINT64_MAX for never. */
AMBIENT_EXPORT uint64_t ambient_hbone_conn_next_deadline(const ambient_hbone_conn* conn);
/* ambient_hbone_conn_on_timeout runs what is due at `now_ns` (handshake
 * deadline, PING every 10 s, drop after 20 s without a PING reply). */
AMBIENT_EXPORT void ambient_hbone_conn_on_timeout(ambient_hbone_conn* conn, uint64_t now_ns);

/* ambient_hbone_event_type names what happened. */
typedef enum ambient_hbone_event_type {
  AMBIENT_HBONE_EVENT_HANDSHAKE_DONE = 0,   /* TLS + HTTP/2 up; peer identity known */
  AMBIENT_HBONE_EVENT_STREAM_REQUEST = 1,   /* server: a CONNECT arrived */
  AMBIENT_HBONE_EVENT_STREAM_RESPONSE = 2,  /* client: `http_status` (200 = open) */
  AMBIENT_HBONE_EVENT_STREAM_READABLE = 3,  /* bytes or end-of-stream to read */
  AMBIENT_HBONE_EVENT_STREAM_WRITABLE = 4,  /* ambient_hbone_stream_write takes more */
  AMBIENT_HBONE_EVENT_STREAM_CLOSED = 5,    /* the stream is over; id released */
  AMBIENT_HBONE_EVENT_GOAWAY = 6,           /* peer: no new streams here */
  AMBIENT_HBONE_EVENT_CONNECTION_CLOSED = 7 /* over: flush output, close transport */
} ambient_hbone_event_type;

/* ambient_hbone_event is one event. `code` is AMBIENT_OK or the negative
 * ambient_code of a failure (STREAM_CLOSED, CONNECTION_CLOSED), with a
 * human-readable `message`. For STREAM_REQUEST, `authority` is the CONNECT
 * :authority and `n_headers` the number of other request headers (read them
 * with ambient_hbone_conn_request_header). The pointers are lent until the
 * next ambient_hbone_conn_poll_event call. */
typedef struct ambient_hbone_event {
  ambient_hbone_event_type type;
  int32_t stream;
  int http_status;
  int code;
  const char* message;
  size_t message_len;
  const char* authority;
  size_t authority_len;
  size_t n_headers;
} ambient_hbone_event;

/* ambient_hbone_conn_poll_event moves the oldest pending event into `*event`
 * and returns 1, or returns 0 when there is none. Call it after every other
 * call until it returns 0. */
AMBIENT_EXPORT int ambient_hbone_conn_poll_event(ambient_hbone_conn* conn,
                                                 ambient_hbone_event* event);

/* ambient_hbone_conn_request_header lends header `index` of the last polled
 * STREAM_REQUEST event. Returns 0, or AMBIENT_ERR_OUT_OF_RANGE. */
AMBIENT_EXPORT int ambient_hbone_conn_request_header(const ambient_hbone_conn* conn, size_t index,
                                                     ambient_hbone_header* header);

/* ambient_hbone_conn_get0_peer_identity returns the peer's SPIFFE ID
 * (NUL-terminated, lent while `conn` lives; "" before the handshake). */
AMBIENT_EXPORT const char* ambient_hbone_conn_get0_peer_identity(const ambient_hbone_conn* conn);

/* ambient_hbone_conn_is_closed returns 1 once the connection is over (close
 * the transport when pending output is also empty), else 0. */
AMBIENT_EXPORT int ambient_hbone_conn_is_closed(const ambient_hbone_conn* conn);

/* ambient_hbone_conn_can_open_stream returns 1 when a client connection is
 * established, not going away and below its stream limit (100, or the
 * server's SETTINGS_MAX_CONCURRENT_STREAMS if lower), else 0. */
AMBIENT_EXPORT int ambient_hbone_conn_can_open_stream(const ambient_hbone_conn* conn);

/* ambient_hbone_conn_drain sends GOAWAY: no new streams, existing ones end;
 * the connection closes itself after the last one. */
AMBIENT_EXPORT void ambient_hbone_conn_drain(ambient_hbone_conn* conn);

/* ambient_hbone_conn_open_stream (client) sends a CONNECT to `authority`
 * ("ip:port", "[v6]:port" or "host:port", NUL-terminated) with `n_headers`
 * extra headers (baggage, forwarded, traceparent...). Returns the new
 * stream id (> 0), or AMBIENT_ERR_INVALID_ARGUMENT (bad authority or
 * header), AMBIENT_ERR_UNAVAILABLE (not established, going away, at the
 * stream limit), AMBIENT_ERR_FAILED_PRECONDITION (a server connection). */
AMBIENT_EXPORT int32_t ambient_hbone_conn_open_stream(ambient_hbone_conn* conn,
                                                      const char* authority,
                                                      const ambient_hbone_header* headers,
                                                      size_t n_headers);

/* ambient_hbone_authority_check reports whether `len` bytes of `text` (need
 * not be NUL-terminated) are a CONNECT :authority the library sends and
 * accepts: "IPv4:PORT", "[IPv6]:PORT" or "host:PORT" (a DNS name), port
 * 1-65535, no zone id, no userinfo. Returns NULL when it is, else an owned
 * error (AMBIENT_ERR_INVALID_ARGUMENT) whose message names the text and the
 * reason ("missing port", "IPv6 address must be in brackets", "bad port (want
 * 1-65535)", ...). NULL `text` with `len` > 0 is an error too. Any thread. */
AMBIENT_EXPORT ambient_error* ambient_hbone_authority_check(const char* text, size_t len);

/* ambient_hbone_conn_accept_stream (server) answers 200: the tunnel is open.
 * Returns 0 or a negative code. */
AMBIENT_EXPORT int ambient_hbone_conn_accept_stream(ambient_hbone_conn* conn, int32_t stream);

/* ambient_hbone_conn_reject_stream (server) answers `http_status` (400-599)
 * and ends the stream. Returns 0 or a negative code. */
AMBIENT_EXPORT int ambient_hbone_conn_reject_stream(ambient_hbone_conn* conn, int32_t stream,
                                                    int http_status);

/* ambient_hbone_stream_write queues up to `len` bytes for the peer and
 * returns how many it took (0 when the stream's send buffer is full: wait
 * for AMBIENT_HBONE_EVENT_STREAM_WRITABLE), or a negative code. At most
 * INT32_MAX bytes are taken per call. */
AMBIENT_EXPORT int ambient_hbone_stream_write(ambient_hbone_conn* conn, int32_t stream,
                                              const uint8_t* data, size_t len);

/* ambient_hbone_stream_shutdown_write sends END_STREAM after the queued
 * bytes. Returns 0 or a negative code. */
AMBIENT_EXPORT int ambient_hbone_stream_shutdown_write(ambient_hbone_conn* conn, int32_t stream);

/* ambient_hbone_stream_read copies up to `len` received bytes into `buf`
 * and returns the count (0: nothing now, or end of stream: see
 * ambient_hbone_stream_at_eof). Reading releases flow-control window. */
AMBIENT_EXPORT int ambient_hbone_stream_read(ambient_hbone_conn* conn, int32_t stream, uint8_t* buf,
                                             size_t len);

/* ambient_hbone_stream_at_eof returns 1 when the peer ended the stream
 * cleanly and everything was read, else 0. */
AMBIENT_EXPORT int ambient_hbone_stream_at_eof(const ambient_hbone_conn* conn, int32_t stream);

/* ambient_hbone_stream_reset ends the stream with RST_STREAM(CANCEL): it is
 * ambient_hbone_stream_reset_with(conn, stream, AMBIENT_HBONE_RESET_CANCEL).
 * Returns 0 or a negative code. */
AMBIENT_EXPORT int ambient_hbone_stream_reset(ambient_hbone_conn* conn, int32_t stream);

/* ambient_hbone_reset_code is the HTTP/2 error code (RFC 9113 section 7) a
 * host resets a stream with; the values are the wire codes. */
typedef enum ambient_hbone_reset_code {
  AMBIENT_HBONE_RESET_CANCEL = 0x8,       /* the stream is not needed any more */
  AMBIENT_HBONE_RESET_CONNECT_ERROR = 0xa /* the TCP connection behind the CONNECT
                                             was reset or failed */
} ambient_hbone_reset_code;

/* ambient_hbone_stream_reset_with ends the stream with RST_STREAM(`code`).
 * A host relaying the stream to TCP uses AMBIENT_HBONE_RESET_CONNECT_ERROR
 * when its TCP side was reset or broke (a read or write failed with
 * ECONNRESET, EPIPE, ETIMEDOUT...), as ztunnel does: the peer's proxy then
 * resets its own TCP connection (RFC 9113 section 8.5); anything else (the
 * host gave up on the stream) is AMBIENT_HBONE_RESET_CANCEL. A stream already
 * closed on the wire is left alone (returns 0). Returns 0, or
 * AMBIENT_ERR_INVALID_ARGUMENT (NULL `conn`, or `code` is not one of the
 * ambient_hbone_reset_code values; nothing is sent),
 * AMBIENT_ERR_NOT_FOUND (unknown or released stream id). */
AMBIENT_EXPORT int ambient_hbone_stream_reset_with(ambient_hbone_conn* conn, int32_t stream,
                                                   ambient_hbone_reset_code code);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AMBIENT_C_HBONE_H_ */
