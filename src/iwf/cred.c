/* SPDX-License-Identifier: MIT */
/*
 * Credentials for 3rd parties, kept server-private (SPEC §4.3 rule 4).
 *
 * A request's inline <credentials> are sealed and stored as the secret
 * (XUI, "request:" + request id), then deleted from the Feature Handler
 * document; a <credential-ref> NAME reads the secret (XUI, "ref:" + NAME),
 * which an administrator provisions (xdmsctl credential set). Secrets are
 * sealed with AES-256-GCM (nettle) under the server's key, a 32-byte file
 * (iwf.key_file, mode 0600) created on first use; the (owner, name) pair is
 * the associated data, so a sealed value cannot be moved to another user or
 * request and still open. The store holds only the sealed bytes.
 *
 * Sealed format: version byte 1, 12-byte random nonce, 16-byte tag, then the
 * ciphertext of "username NUL password NUL token NUL".
 *
 * Threads: any; no shared state besides the key, which is read-only.
 */
#include "config.h"

#include <nettle/gcm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/file.h"
#include "base/mem.h"
#include "iwf/iwf_int.h"

#define SEAL_VERSION 1
#define NONCE_LEN 12
#define HEAD_LEN (1 + NONCE_LEN + GCM_DIGEST_SIZE)

enum xdms_err iwf_key_load(const char *path, uint8_t key[IWF_KEY_LEN], char **why)
{
	return file_key_load(path, key, IWF_KEY_LEN, "credential key", why);
}

/* The associated data, "owner NUL name", in one update: GCM takes a partial
 * block only in the last one. */
static void aad(struct gcm_aes256_ctx *ctx, const char *owner, const char *name)
{
	size_t ol = strlen(owner), nl = strlen(name);
	uint8_t *buf = xmalloc(ol + 1 + nl);

	memcpy(buf, owner, ol + 1);
	memcpy(buf + ol + 1, name, nl);
	gcm_aes256_update(ctx, ol + 1 + nl, buf);
	free(buf);
}

enum xdms_err iwf_cred_save(struct store *st, const uint8_t key[IWF_KEY_LEN], const char *owner, const char *name,
			    const struct iwf_cred *c, bool is_durable)
{
	uint8_t plain[sizeof(c->username) + sizeof(c->password) + sizeof(c->token)];
	uint8_t sealed[HEAD_LEN + sizeof(plain)];
	struct gcm_aes256_ctx ctx;
	size_t n = 0;
	enum xdms_err err;

	for (int i = 0; i < 3; i++) {
		const char *s = i == 0 ? c->username : i == 1 ? c->password : c->token;
		size_t len = strnlen(s, sizeof(c->token));

		memcpy(plain + n, s, len);
		plain[n + len] = '\0';
		n += len + 1;
	}
	sealed[0] = SEAL_VERSION;
	if (getrandom(sealed + 1, NONCE_LEN, 0) != NONCE_LEN)
		return XDMS_ERR_IO;
	gcm_aes256_set_key(&ctx, key);
	gcm_aes256_set_iv(&ctx, NONCE_LEN, sealed + 1);
	aad(&ctx, owner, name);
	gcm_aes256_encrypt(&ctx, n, sealed + HEAD_LEN, plain);
	gcm_aes256_digest(&ctx, GCM_DIGEST_SIZE, sealed + 1 + NONCE_LEN);
	err = store_secret_put(st, owner, name, sealed, HEAD_LEN + n, is_durable);
	memset(plain, 0, sizeof(plain));
	memset(&ctx, 0, sizeof(ctx));
	return err;
}

enum xdms_err iwf_cred_load(struct store *st, const uint8_t key[IWF_KEY_LEN], const char *owner, const char *name,
			    struct iwf_cred *c)
{
	uint8_t sealed[HEAD_LEN + sizeof(*c)], plain[sizeof(*c)], tag[GCM_DIGEST_SIZE];
	struct store_read *rd = NULL;
	struct gcm_aes256_ctx ctx;
	size_t len = 0, n, at = 0;
	enum xdms_err err;

	memset(c, 0, sizeof(*c));
	err = store_read_begin(st, &rd);
	if (!err)
		err = store_secret_get(rd, owner, name, sealed, sizeof(sealed), &len);
	store_read_end(rd);
	if (err)
		return err;
	if (len < HEAD_LEN || sealed[0] != SEAL_VERSION)
		return XDMS_ERR_CORRUPT;
	n = len - HEAD_LEN;
	gcm_aes256_set_key(&ctx, key);
	gcm_aes256_set_iv(&ctx, NONCE_LEN, sealed + 1);
	aad(&ctx, owner, name);
	gcm_aes256_decrypt(&ctx, n, plain, sealed + HEAD_LEN);
	gcm_aes256_digest(&ctx, GCM_DIGEST_SIZE, tag);
	memset(&ctx, 0, sizeof(ctx));
	/* Not a secret comparison in time: a forger learns nothing from it
	 * that a wrong key would not tell, and the key never leaves the host. */
	if (memcmp(tag, sealed + 1 + NONCE_LEN, GCM_DIGEST_SIZE) != 0)
		err = XDMS_ERR_CORRUPT;
	for (int i = 0; i < 3 && !err; i++) {
		char *dst = i == 0 ? c->username : i == 1 ? c->password : c->token;
		size_t cap = i == 0 ? sizeof(c->username) : i == 1 ? sizeof(c->password) : sizeof(c->token);
		const uint8_t *nul = memchr(plain + at, '\0', n - at);

		if (!nul || (size_t)(nul - (plain + at)) >= cap) {
			err = XDMS_ERR_CORRUPT;
			break;
		}
		memcpy(dst, plain + at, (size_t)(nul - (plain + at)) + 1);
		at = (size_t)(nul - plain) + 1;
	}
	memset(plain, 0, sizeof(plain));
	if (err)
		memset(c, 0, sizeof(*c));
	return err;
}
