#include "common/auth.h"

#include <errno.h>
#include <limits.h>
#include <openssl/core_names.h>
#include <string.h>

#include "common/cryptolib.h"

static const char LABEL_AGENT[] = "faultline/agent";
static const char LABEL_CONTROLLER[] = "faultline/controller";
static const char LABEL_C2A[] = "faultline/key/controller-to-agent";
static const char LABEL_A2C[] = "faultline/key/agent-to-controller";

struct part {
    const void *data;
    size_t len;
};

/* HMAC-SHA256 over the concatenation of parts. */
static int hmac(const uint8_t *key, size_t key_len, const struct part *parts, size_t n,
                uint8_t out[FL_MAC_LEN])
{
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL || c->hmac == NULL)
        return -EIO;
    int rc = -EIO;
    EVP_MAC_CTX *ctx = c->mac_ctx_new(c->hmac);
    if (ctx == NULL)
        return -ENOMEM;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        c->param_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        c->param_end(),
    };
    size_t out_len = 0;
    if (c->mac_init(ctx, key, key_len, params) != 1)
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (c->mac_update(ctx, parts[i].data, parts[i].len) != 1)
            goto cleanup;
    if (c->mac_final(ctx, out, &out_len, FL_MAC_LEN) != 1 || out_len != FL_MAC_LEN)
        goto cleanup;
    rc = 0;
cleanup:
    c->mac_ctx_free(ctx);
    return rc;
}

static int handshake_mac(const struct fl_auth *auth, const char *label, uint8_t out[FL_MAC_LEN])
{
    struct part parts[] = {
        {label, strlen(label)},
        {auth->nonce_c, FL_NONCE_LEN},
        {auth->nonce_a, FL_NONCE_LEN},
    };
    return hmac(auth->key.bytes, FL_KEY_LEN, parts, 3, out);
}

static int fail(struct fl_auth *auth, int rc)
{
    auth->state = FL_AUTH_FAILED;
    return rc;
}

void fl_auth_init(struct fl_auth *auth, enum fl_role role, const struct fl_key *key)
{
    memset(auth, 0, sizeof(*auth));
    auth->role = role;
    auth->state = FL_AUTH_START;
    auth->key = *key;
}

void fl_auth_wipe(struct fl_auth *auth)
{
    explicit_bzero(auth, sizeof(*auth));
}

int fl_auth_hello(struct fl_auth *auth, uint8_t nonce_c[FL_NONCE_LEN])
{
    if (auth->role != FL_ROLE_CONTROLLER || auth->state != FL_AUTH_START)
        return fail(auth, -EPROTO);
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL)
        return fail(auth, -EIO);
    if (c->rand_bytes(auth->nonce_c, FL_NONCE_LEN) != 1)
        return fail(auth, -EIO);
    memcpy(nonce_c, auth->nonce_c, FL_NONCE_LEN);
    auth->state = FL_AUTH_HELLO_SENT;
    return 0;
}

int fl_auth_challenge(struct fl_auth *auth, const uint8_t *nonce_c, size_t nonce_len,
                      uint8_t nonce_a[FL_NONCE_LEN], uint8_t proof_a[FL_MAC_LEN])
{
    if (auth->role != FL_ROLE_AGENT || auth->state != FL_AUTH_START || nonce_len != FL_NONCE_LEN)
        return fail(auth, -EPROTO);
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL)
        return fail(auth, -EIO);
    memcpy(auth->nonce_c, nonce_c, FL_NONCE_LEN);
    if (c->rand_bytes(auth->nonce_a, FL_NONCE_LEN) != 1)
        return fail(auth, -EIO);
    /* A controller echoing our own nonce back gains nothing (labels differ),
     * but identical nonces mean something is badly wrong. */
    if (c->memcmp(auth->nonce_a, auth->nonce_c, FL_NONCE_LEN) == 0)
        return fail(auth, -EPROTO);
    int rc = handshake_mac(auth, LABEL_AGENT, proof_a);
    if (rc < 0)
        return fail(auth, rc);
    memcpy(nonce_a, auth->nonce_a, FL_NONCE_LEN);
    auth->state = FL_AUTH_CHALLENGED;
    return 0;
}

/* One key per direction: each side seals with its own and opens with the
 * peer's, so the sequence numbers of the two directions never share a key. */
static int derive_keys(struct fl_auth *auth)
{
    int ctl = auth->role == FL_ROLE_CONTROLLER;
    int rc = handshake_mac(auth, ctl ? LABEL_C2A : LABEL_A2C, auth->send_key);
    if (rc == 0)
        rc = handshake_mac(auth, ctl ? LABEL_A2C : LABEL_C2A, auth->recv_key);
    return rc;
}

int fl_auth_respond(struct fl_auth *auth, const uint8_t *nonce_a, size_t nonce_len,
                    const uint8_t *proof_a, size_t proof_len, uint8_t proof_c[FL_MAC_LEN])
{
    if (auth->role != FL_ROLE_CONTROLLER || auth->state != FL_AUTH_HELLO_SENT ||
        nonce_len != FL_NONCE_LEN || proof_len != FL_MAC_LEN)
        return fail(auth, -EPROTO);
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL)
        return fail(auth, -EIO);
    memcpy(auth->nonce_a, nonce_a, FL_NONCE_LEN);
    if (c->memcmp(auth->nonce_a, auth->nonce_c, FL_NONCE_LEN) == 0)
        return fail(auth, -EPROTO); /* our own nonce reflected */

    uint8_t expect[FL_MAC_LEN];
    int rc = handshake_mac(auth, LABEL_AGENT, expect);
    if (rc < 0)
        return fail(auth, rc);
    int ok = c->memcmp(expect, proof_a, FL_MAC_LEN) == 0;
    explicit_bzero(expect, sizeof(expect));
    if (!ok)
        return fail(auth, -EACCES);

    if ((rc = handshake_mac(auth, LABEL_CONTROLLER, proof_c)) < 0 || (rc = derive_keys(auth)) < 0)
        return fail(auth, rc);
    auth->state = FL_AUTH_PROOF_SENT;
    return 0;
}

int fl_auth_verify(struct fl_auth *auth, const uint8_t *proof_c, size_t proof_len)
{
    if (auth->role != FL_ROLE_AGENT || auth->state != FL_AUTH_CHALLENGED || proof_len != FL_MAC_LEN)
        return fail(auth, -EPROTO);
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL)
        return fail(auth, -EIO);
    uint8_t expect[FL_MAC_LEN];
    int rc = handshake_mac(auth, LABEL_CONTROLLER, expect);
    if (rc < 0)
        return fail(auth, rc);
    int ok = c->memcmp(expect, proof_c, FL_MAC_LEN) == 0;
    explicit_bzero(expect, sizeof(expect));
    if (!ok)
        return fail(auth, -EACCES);
    if ((rc = derive_keys(auth)) < 0)
        return fail(auth, rc);
    auth->state = FL_AUTH_ESTABLISHED;
    return 0;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

enum { DECRYPT = 0, ENCRYPT = 1 };

/* ChaCha20-Poly1305 in place over frame = seq text[text_len] tag: the nonce is
 * 0:u32 || seq, and seq is the associated data. Encrypting writes the tag;
 * decrypting checks it (-EBADMSG). */
static int aead(const uint8_t key[FL_AEAD_KEY_LEN], int enc, uint8_t *frame, size_t text_len)
{
    const struct fl_cryptolib *c = fl_cryptolib();
    if (c == NULL || c->chacha20_poly1305 == NULL)
        return -EIO;
    if (text_len > INT_MAX)
        return -EMSGSIZE;
    uint8_t nonce[12] = {0};
    memcpy(nonce + 4, frame, FL_SEQ_LEN);
    uint8_t *text = frame + FL_SEQ_LEN;
    uint8_t *tag = text + text_len;
    EVP_CIPHER_CTX *ctx = c->cipher_ctx_new();
    if (ctx == NULL)
        return -ENOMEM;
    int rc = -EIO, n = 0;
    if (c->cipher_init(ctx, c->chacha20_poly1305, key, nonce, enc, NULL) != 1 ||
        c->cipher_update(ctx, NULL, &n, frame, FL_SEQ_LEN) != 1 ||
        c->cipher_update(ctx, text, &n, text, (int)text_len) != 1)
        goto cleanup;
    if (enc == ENCRYPT) {
        if (c->cipher_final(ctx, tag, &n) != 1 ||
            c->cipher_ctx_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, FL_TAG_LEN, tag) != 1)
            goto cleanup;
    } else {
        if (c->cipher_ctx_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, FL_TAG_LEN, tag) != 1)
            goto cleanup;
        if (c->cipher_final(ctx, tag, &n) != 1) {
            rc = -EBADMSG;
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    c->cipher_ctx_free(ctx);
    return rc;
}

static int can_seal(const struct fl_auth *auth)
{
    if (auth->state == FL_AUTH_ESTABLISHED)
        return 1;
    /* the controller may send as soon as it has sent its proof */
    return auth->role == FL_ROLE_CONTROLLER && auth->state == FL_AUTH_PROOF_SENT;
}

int fl_auth_seal(struct fl_auth *auth, uint8_t *frame, size_t payload_len)
{
    if (!can_seal(auth))
        return -EPROTO;
    if (auth->send_seq == UINT64_MAX)
        return -EOVERFLOW;
    put_u64(frame, auth->send_seq);
    int rc = aead(auth->send_key, ENCRYPT, frame, payload_len);
    if (rc < 0)
        return fail(auth, rc); /* this seq may have been used: never again */
    auth->send_seq++;
    return 0;
}

int fl_auth_open(struct fl_auth *auth, uint8_t *frame, size_t len, const uint8_t **payload,
                 size_t *payload_len)
{
    if (!can_seal(auth))
        return -EPROTO;
    if (len < FL_SEAL_OVERHEAD)
        return fail(auth, -EBADMSG);
    size_t text_len = len - FL_SEAL_OVERHEAD;
    int rc = aead(auth->recv_key, DECRYPT, frame, text_len);
    if (rc < 0)
        return fail(auth, rc);
    if (get_u64(frame) != auth->recv_seq)
        return fail(auth, -EPROTO);
    auth->recv_seq++;
    if (auth->state == FL_AUTH_PROOF_SENT)
        auth->state = FL_AUTH_ESTABLISHED; /* the agent accepted our proof */
    *payload = frame + FL_SEQ_LEN;
    *payload_len = text_len;
    return 0;
}
