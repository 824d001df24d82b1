/* SPDX-License-Identifier: MIT */
/*
 * The IWF's watches: one record per <subscribe-profile> being carried out,
 * in the "watches" database, keyed by XUI + NUL + request id.
 *
 * A value is a version byte, the fixed-size numbers (big-endian) and then
 * each string as a 16-bit length and its bytes, in the order of
 * struct store_watch; the dialog blob goes last the same way. A record that
 * does not decode is CORRUPT and never half-read.
 *
 * Writes from the IWF share the writer's group commit (store_txn_group): a
 * poll that found nothing new writes nothing, so the steady load is one small
 * record write per update or failure. The Feature Handler's commit hook
 * removes a record inside the client's transaction and bumps a generation
 * counter, which the IWF reads to drop the watch from its schedule.
 *
 * Threads: any thread; the drop runs on the writer thread (commit hook).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "store/store_int.h"

#define WATCH_VERSION 1
#define WATCH_U64S 6
#define WATCH_U32S 5
/* Every field at its largest, with the 16-bit length of each of the 13 strings. */
#define WATCH_VALUE_MAX (1 + WATCH_U64S * 8 + WATCH_U32S * 4 + 14 * 2 + 8 + sizeof(struct store_watch))

static const char *const state_names[STORE_WATCH__STATES] = { "active", "held", "terminated" };

const char *store_watch_state_name(enum store_watch_state s)
{
	return (unsigned)s < STORE_WATCH__STATES ? state_names[s] : NULL;
}

/* xui + NUL + request id into @kb; 0 when it does not fit a key. */
static size_t watch_key(const struct store *st, char *kb, const char *xui, const char *request_id)
{
	size_t al = strlen(xui), bl = strlen(request_id);

	if (!al || !bl || al >= STORE_XUI_MAX || bl >= STORE_JOB_ID_MAX || al + 1 + bl > st->max_key)
		return 0;
	memcpy(kb, xui, al);
	kb[al] = '\0';
	memcpy(kb + al + 1, request_id, bl);
	return al + 1 + bl;
}

static void put_str(unsigned char **p, const void *s, size_t len)
{
	store_put_be(*p, len, 2);
	memcpy(*p + 2, s, len);
	*p += 2 + len;
}

static size_t encode(const struct store_watch *w, unsigned char *out)
{
	const uint64_t u64[WATCH_U64S] = { w->job_id,	    w->created_ms,   w->expires_ms,
					   w->next_poll_ms, w->last_poll_ms, w->last_update_ms };
	const uint32_t u32[WATCH_U32S] = { (uint32_t)w->state, w->seq, w->failures, w->code, w->imported_count };
	const char *strs[] = { w->adapter,  w->target,  w->validator,   w->held_validator, w->pcc_etag,
			       w->hook_id,  w->hook_secret, w->reason, w->remote_user,    w->merge_policy,
			       w->fields };
	unsigned char *p = out;

	*p++ = WATCH_VERSION;
	for (size_t i = 0; i < WATCH_U64S; i++, p += 8)
		store_put_be(p, u64[i], 8);
	for (size_t i = 0; i < WATCH_U32S; i++, p += 4)
		store_put_be(p, u32[i], 4);
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		put_str(&p, strs[i], strlen(strs[i]));
	put_str(&p, w->dialog, w->dialog_len);
	put_str(&p, w->cred, strlen(w->cred));
	put_str(&p, w->hook_remote, strlen(w->hook_remote));
	store_put_be(p, w->hook_renew_ms, 8);
	p += 8;
	return (size_t)(p - out);
}

/* Copies a length-prefixed string into @dst (@cap bytes with its NUL). */
static bool get_str(const unsigned char **p, const unsigned char *end, char *dst, size_t cap)
{
	size_t n;

	if (end - *p < 2)
		return false;
	n = (size_t)store_get_be(*p, 2);
	if ((size_t)(end - *p - 2) < n || n >= cap)
		return false;
	memcpy(dst, *p + 2, n);
	dst[n] = '\0';
	*p += 2 + n;
	return true;
}

static enum xdms_err decode(const MDB_val *k, const MDB_val *v, struct store_watch *w)
{
	const unsigned char *p = v->mv_data, *end = p + v->mv_size;
	const char *kb = k->mv_data;
	size_t al = strnlen(kb, k->mv_size);
	uint64_t u64[WATCH_U64S];
	uint32_t u32[WATCH_U32S];
	size_t n;

	memset(w, 0, sizeof(*w));
	if (al >= k->mv_size || al >= STORE_XUI_MAX || k->mv_size - al - 1 >= STORE_JOB_ID_MAX)
		return XDMS_ERR_CORRUPT;
	memcpy(w->xui, kb, al);
	memcpy(w->request_id, kb + al + 1, k->mv_size - al - 1);
	if (v->mv_size < 1 + WATCH_U64S * 8 + WATCH_U32S * 4 || *p != WATCH_VERSION)
		return XDMS_ERR_CORRUPT;
	p++;
	for (size_t i = 0; i < WATCH_U64S; i++, p += 8)
		u64[i] = store_get_be(p, 8);
	for (size_t i = 0; i < WATCH_U32S; i++, p += 4)
		u32[i] = (uint32_t)store_get_be(p, 4);
	w->job_id = u64[0];
	w->created_ms = u64[1];
	w->expires_ms = u64[2];
	w->next_poll_ms = u64[3];
	w->last_poll_ms = u64[4];
	w->last_update_ms = u64[5];
	if (u32[0] >= STORE_WATCH__STATES)
		return XDMS_ERR_CORRUPT;
	w->state = (enum store_watch_state)u32[0];
	w->seq = u32[1];
	w->failures = u32[2];
	w->code = u32[3];
	w->imported_count = u32[4];
	if (!get_str(&p, end, w->adapter, sizeof(w->adapter)) || !get_str(&p, end, w->target, sizeof(w->target)) ||
	    !get_str(&p, end, w->validator, sizeof(w->validator)) ||
	    !get_str(&p, end, w->held_validator, sizeof(w->held_validator)) ||
	    !get_str(&p, end, w->pcc_etag, sizeof(w->pcc_etag)) || !get_str(&p, end, w->hook_id, sizeof(w->hook_id)) ||
	    !get_str(&p, end, w->hook_secret, sizeof(w->hook_secret)) ||
	    !get_str(&p, end, w->reason, sizeof(w->reason)) ||
	    !get_str(&p, end, w->remote_user, sizeof(w->remote_user)) ||
	    !get_str(&p, end, w->merge_policy, sizeof(w->merge_policy)) ||
	    !get_str(&p, end, w->fields, sizeof(w->fields)) || end - p < 2)
		return XDMS_ERR_CORRUPT;
	n = (size_t)store_get_be(p, 2);
	if (n > STORE_WATCH_DIALOG_MAX || (size_t)(end - p - 2) < n)
		return XDMS_ERR_CORRUPT;
	memcpy(w->dialog, p + 2, n);
	w->dialog_len = n;
	p += 2 + n;
	/* The credential's place: absent from records stored before it. */
	if (p != end && !get_str(&p, end, w->cred, sizeof(w->cred)))
		return XDMS_ERR_CORRUPT;
	if (p != end) {
		if (!get_str(&p, end, w->hook_remote, sizeof(w->hook_remote)) || end - p != 8)
			return XDMS_ERR_CORRUPT;
		w->hook_renew_ms = store_get_be(p, 8);
	}
	return XDMS_ERR_OK;
}

static bool is_valid(const struct store_watch *w)
{
	return w->xui[0] && w->request_id[0] && w->adapter[0] && memchr(w->xui, 0, sizeof(w->xui)) &&
	       memchr(w->request_id, 0, sizeof(w->request_id)) && memchr(w->adapter, 0, sizeof(w->adapter)) &&
	       memchr(w->target, 0, sizeof(w->target)) && memchr(w->validator, 0, sizeof(w->validator)) &&
	       memchr(w->held_validator, 0, sizeof(w->held_validator)) &&
	       memchr(w->pcc_etag, 0, sizeof(w->pcc_etag)) && memchr(w->hook_id, 0, sizeof(w->hook_id)) &&
	       memchr(w->hook_secret, 0, sizeof(w->hook_secret)) && memchr(w->reason, 0, sizeof(w->reason)) &&
	       memchr(w->remote_user, 0, sizeof(w->remote_user)) &&
	       memchr(w->merge_policy, 0, sizeof(w->merge_policy)) && memchr(w->fields, 0, sizeof(w->fields)) &&
	       memchr(w->cred, 0, sizeof(w->cred)) && memchr(w->hook_remote, 0, sizeof(w->hook_remote)) &&
	       w->dialog_len <= STORE_WATCH_DIALOG_MAX && (unsigned)w->state < STORE_WATCH__STATES;
}

struct watch_op {
	const struct store_watch *w; /* NULL: delete */
	const char *xui, *request_id;
};

static enum xdms_err watch_op_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct watch_op *op = arg;
	char kb[STORE_SELECTOR_MAX + 1];
	unsigned char vb[WATCH_VALUE_MAX];
	MDB_val k = { 0, kb }, v = { 0, vb };

	k.mv_size = watch_key(st, kb, op->xui, op->request_id);
	if (!k.mv_size)
		return XDMS_ERR_INVAL;
	if (!op->w)
		return store_err_from_mdb(store_kv_del(st, txn, st->dbi_watches, &k));
	v.mv_size = encode(op->w, vb);
	return store_err_from_mdb(store_kv_put(st, txn, st->dbi_watches, &k, &v, 0));
}

enum xdms_err store_watch_put(struct store *st, const struct store_watch *w)
{
	struct watch_op op = { w, w ? w->xui : NULL, w ? w->request_id : NULL };

	if (!st || !w || !is_valid(w))
		return XDMS_ERR_INVAL;
	return store_txn_group(st, watch_op_txn, &op);
}

enum xdms_err store_watch_del(struct store *st, const char *xui, const char *request_id)
{
	struct watch_op op = { NULL, xui, request_id };

	if (!st || !xui || !request_id)
		return XDMS_ERR_INVAL;
	return store_txn_group(st, watch_op_txn, &op);
}

enum xdms_err store_watch_drop_txn(struct store_txn *txn, const char *xui, const char *request_id)
{
	struct store *st = txn->st;
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb };
	int rc;

	k.mv_size = watch_key(st, kb, xui, request_id);
	if (!k.mv_size)
		return XDMS_ERR_OK; /* too long to have been a watch */
	rc = store_kv_del(st, txn->txn, st->dbi_watches, &k);
	if (rc == MDB_NOTFOUND)
		return XDMS_ERR_OK;
	if (!rc)
		atomic_fetch_add_explicit(&st->watch_generation, 1, memory_order_relaxed);
	return store_err_from_mdb(rc);
}

enum xdms_err store_watch_get(struct store_read *rd, const char *xui, const char *request_id,
			      struct store_watch *out)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb }, v;
	struct store *st;
	int rc;

	if (!rd || !rd->txn || !xui || !request_id || !out)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	k.mv_size = watch_key(st, kb, xui, request_id);
	if (!k.mv_size)
		return XDMS_ERR_NOTFOUND;
	rc = mdb_get(rd->txn, st->dbi_watches, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	return decode(&k, &v, out);
}

struct list_ctx {
	store_watch_visit_fn visit;
	void *arg;
	struct store_watch w; /* one record at a time: too large for a stack frame per call */
};

static int list_one(void *arg, const MDB_val *k, const MDB_val *v, enum xdms_err *err)
{
	struct list_ctx *ctx = arg;

	(void)err;
	if (decode(k, v, &ctx->w))
		return 0;
	return ctx->visit(ctx->arg, &ctx->w) ? 1 : 0;
}

enum xdms_err store_watch_list(struct store_read *rd, store_watch_visit_fn visit, void *arg)
{
	struct list_ctx *ctx;
	enum xdms_err err;

	if (!rd || !rd->txn || !visit)
		return XDMS_ERR_INVAL;
	ctx = xcalloc(1, sizeof(*ctx));
	ctx->visit = visit;
	ctx->arg = arg;
	err = store_walk(rd, atomic_load_explicit(&rd->st, memory_order_relaxed)->dbi_watches, NULL, list_one, ctx);
	free(ctx);
	return err;
}

uint64_t store_watch_generation(struct store *st)
{
	return atomic_load_explicit(&st->watch_generation, memory_order_relaxed);
}
