/*
 * The small C shim between OpenSSL and Swift.
 *
 * OpenSSL exposes much of its DTLS API as function-like macros over SSL_ctrl,
 * SSL_CTX_ctrl and BIO_ctrl. Swift cannot import macros that take arguments,
 * so each one we use is restated here as a static inline function with the
 * same meaning. Nothing here holds state; the one helper with a body of its own
 * (dp_EVP_MAC_CTX_set_hmac_sha256_key, dp_EVP_KDF_derive_tls1_prf) exists
 * because Swift cannot build an OSSL_PARAM array whose string pointers outlive
 * the call safely.
 */
#ifndef DTLS_PROXYD_COPENSSL_SHIM_H
#define DTLS_PROXYD_COPENSSL_SHIM_H

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline long dp_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_mode(ctx, mode);
}

static inline int dp_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}

static inline int dp_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}

static inline int dp_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return (int)SSL_CTX_set1_groups_list(ctx, list);
}

static inline int dp_SSL_CTX_set_max_send_fragment(SSL_CTX *ctx, long length) {
    return (int)SSL_CTX_set_max_send_fragment(ctx, length);
}

static inline long dp_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}

/* Sets the largest datagram OpenSSL may write, IP and UDP headers excluded. */
static inline long dp_SSL_set_mtu(SSL *ssl, long mtu) {
    return SSL_set_mtu(ssl, mtu);
}

static inline long dp_DTLSv1_get_timeout(SSL *ssl, struct timeval *tv) {
    return DTLSv1_get_timeout(ssl, tv);
}

static inline long dp_DTLSv1_handle_timeout(SSL *ssl) {
    return DTLSv1_handle_timeout(ssl);
}

static inline int dp_SSL_set_app_data(SSL *ssl, void *data) {
    return SSL_set_app_data(ssl, data);
}

static inline void *dp_SSL_get_app_data(const SSL *ssl) {
    return SSL_get_app_data(ssl);
}

static inline void dp_BIO_set_retry_read(BIO *bio) {
    BIO_set_retry_read(bio);
}

static inline void dp_BIO_clear_retry_flags(BIO *bio) {
    BIO_clear_retry_flags(bio);
}

static inline int dp_SSL_is_init_finished(const SSL *ssl) {
    return SSL_is_init_finished(ssl);
}

static inline int dp_SSL_get_shutdown(const SSL *ssl) {
    return SSL_get_shutdown(ssl);
}

static inline long dp_SSL_CTX_set_read_ahead(SSL_CTX *ctx, int yes) {
    return SSL_CTX_set_read_ahead(ctx, yes);
}

static inline int dp_SSL_CTX_set_app_data(SSL_CTX *ctx, void *data) {
    return SSL_CTX_set_app_data(ctx, data);
}

static inline void *dp_SSL_CTX_get_app_data(const SSL_CTX *ctx) {
    return SSL_CTX_get_app_data(ctx);
}

static inline void dp_BIO_set_init(BIO *bio, int init) {
    BIO_set_init(bio, init);
}

static inline long dp_SSL_CTX_set_timeout(SSL_CTX *ctx, long seconds) {
    return SSL_CTX_set_timeout(ctx, seconds);
}

static inline void dp_OPENSSL_free(void *pointer) {
    OPENSSL_free(pointer);
}

static inline int dp_sk_GENERAL_NAME_num(const GENERAL_NAMES *names) {
    return sk_GENERAL_NAME_num(names);
}

static inline GENERAL_NAME *dp_sk_GENERAL_NAME_value(const GENERAL_NAMES *names, int index) {
    return sk_GENERAL_NAME_value(names, index);
}

static inline int dp_sk_SSL_CIPHER_num(const STACK_OF(SSL_CIPHER) *ciphers) {
    return sk_SSL_CIPHER_num(ciphers);
}

static inline const SSL_CIPHER *dp_sk_SSL_CIPHER_value(const STACK_OF(SSL_CIPHER) *ciphers, int index) {
    return sk_SSL_CIPHER_value(ciphers, index);
}

static inline void dp_sk_X509_NAME_pop_free(STACK_OF(X509_NAME) *names) {
    sk_X509_NAME_pop_free(names, X509_NAME_free);
}

/* Client mode: the server name sent in the ClientHello (SNI, RFC 6066 §3). */
static inline int dp_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

/* The session-ticket key callback of OpenSSL 3.0 (EVP_MAC based, not deprecated). */
typedef int (*dp_ticket_key_evp_cb)(SSL *ssl, unsigned char *key_name, unsigned char *iv,
                                    EVP_CIPHER_CTX *cipher, EVP_MAC_CTX *mac, int encrypt);

static inline long dp_SSL_CTX_set_tlsext_ticket_key_evp_cb(SSL_CTX *ctx, dp_ticket_key_evp_cb cb) {
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, cb);
}

/* The server-name (SNI) callback: routes with their own certificate switch the SSL_CTX in it. */
typedef int (*dp_servername_cb)(SSL *ssl, int *alert, void *arg);

static inline long dp_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, dp_servername_cb cb) {
    return SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}

/*
 * Keys an HMAC-SHA256 EVP_MAC_CTX. The OSSL_PARAM array keeps pointers to its
 * names and values until the call returns; in C those are static strings,
 * which Swift cannot promise for a bridged string.
 */
static inline int dp_EVP_MAC_CTX_set_hmac_sha256_key(EVP_MAC_CTX *mac, unsigned char *key, size_t length) {
    char digest[] = "SHA256";
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, length);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(mac, params);
}

/*
 * Runs the TLS 1.2 PRF (RFC 5246 §5) of an EVP_KDF_CTX fetched as "TLS1-PRF":
 * `length` bytes of P_<digest>(secret, seed) into `out`, where the seed is the
 * label followed by the randoms. As above, the OSSL_PARAM array must not
 * outlive the strings it points at, so it is built here, for this call only.
 */
static inline int dp_EVP_KDF_derive_tls1_prf(EVP_KDF_CTX *kdf, const char *digest, const unsigned char *secret,
                                             size_t secret_length, const unsigned char *seed, size_t seed_length,
                                             unsigned char *out, size_t length) {
    OSSL_PARAM params[4];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret, secret_length);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed, seed_length);
    params[3] = OSSL_PARAM_construct_end();
    return EVP_KDF_derive(kdf, out, length, params);
}


/* Whether the OpenSSL we were built against knows DTLS 1.3 at all. */
#ifdef DTLS1_3_VERSION
static const int dp_DTLS1_3_VERSION = DTLS1_3_VERSION;
#else
static const int dp_DTLS1_3_VERSION = 0;
#endif

/* Constants that Swift imports poorly (macros built from other macros). */
static const long dp_SSL_OP_NO_QUERY_MTU = SSL_OP_NO_QUERY_MTU;
static const long dp_SSL_OP_NO_RENEGOTIATION = SSL_OP_NO_RENEGOTIATION;
static const long dp_SSL_OP_NO_COMPRESSION = SSL_OP_NO_COMPRESSION;
static const long dp_SSL_OP_COOKIE_EXCHANGE = SSL_OP_COOKIE_EXCHANGE;
static const long dp_SSL_OP_CIPHER_SERVER_PREFERENCE = SSL_OP_CIPHER_SERVER_PREFERENCE;
static const long dp_SSL_OP_NO_TICKET = SSL_OP_NO_TICKET;
/* The key_name of the ticket callback: 16 bytes (RFC 5077 §4; not exported by OpenSSL). */
static const int dp_TLSEXT_KEYNAME_LENGTH = 16;
static const long dp_SSL_MODE_RELEASE_BUFFERS = SSL_MODE_RELEASE_BUFFERS;
/* Flag for BIO_meth_new: a source/sink BIO (the type index comes from BIO_get_new_index). */
static const int dp_BIO_TYPE_SOURCE_SINK = BIO_TYPE_SOURCE_SINK;

#endif
