/* SPDX-License-Identifier: MIT */
/*
 * IWF jobs (store.h). One LMDB database, "jobs", with four kinds of keys:
 *
 *   'J' + 8-byte big-endian id        -> job record (format 1, below)
 *   'A' + 8-byte big-endian id        -> "" : the job is queued or running
 *   'D' + 8-byte due time (ms) + id   -> "" : the same jobs, in the order they
 *                                        become claimable
 *   'R' + XUI + NUL + request id      -> 8-byte id of the current job + hash
 *   'N'                               -> 8-byte big-endian last id given out
 *
 * The 'A' keys keep counting and releasing proportional to the unfinished
 * jobs, not to the history. The 'D' keys make a claim one cursor step
 * whatever the backlog: the first 'D' key is the job to claim when its time
 * has come, and otherwise says when the next one will. A job's due time is
 * its next_run while queued and its lease_until while running. 'R' is what
 * the Feature Handler's commit hook compares a request against. Every change
 * to a job updates its record and its 'A' and 'D' keys in one transaction,
 * so they cannot disagree; a claim still checks a 'D' key against the
 * record and drops it if it does not match (a store written by a version
 * without the index gets its keys from store_job_release_all at start-up).
 *
 * Record: format byte, state, kind, a zero byte, attempts (4), code (4),
 * created, updated, next_run, lease_until (8 each), then xui, request id,
 * hash and reason, each NUL-terminated.
 *
 * Secrets live in their own database, "secrets": owner + NUL + name -> bytes.
 *
 * Threads: the *_txn functions run on the writer thread inside a commit hook;
 * claims, retries, ends and request secrets run in the writer's group commit
 * (store_txn_group), so many workers share one flush; provisioned secrets run
 * a durable transaction of their own (store_txn_run); reads use a snapshot.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "store/store_int.h"

#define JOB_FORMAT 1
#define JOB_HEAD_LEN (4 + 4 + 4 + 4 * 8)
#define JOB_VALUE_MAX (JOB_HEAD_LEN + STORE_XUI_MAX + STORE_JOB_ID_MAX + STORE_JOB_HASH_MAX + STORE_JOB_REASON_MAX)
#define JOB_KEY_LEN 9
#define DUE_KEY_LEN 17
#define REQ_VALUE_LEN (8 + STORE_JOB_HASH_MAX - 1)

static const char *const state_names[STORE_JOB__STATES] = { "queued", "running", "done", "failed",
							    "cancelled" };

const char *store_job_state_name(enum store_job_state s)
{
	return (unsigned)s < STORE_JOB__STATES ? state_names[s] : NULL;
}

bool store_job_state_parse(const char *name, enum store_job_state *out)
{
	for (unsigned i = 0; i < STORE_JOB__STATES; i++) {
		if (!strcmp(name, state_names[i])) {
			*out = (enum store_job_state)i;
			return true;
		}
	}
	return false;
}

static bool is_active(enum store_job_state s)
{
	return s == STORE_JOB_QUEUED || s == STORE_JOB_RUNNING;
}

static void job_key(unsigned char *k, char tag, uint64_t id)
{
	k[0] = (unsigned char)tag;
	store_put_be(k + 1, id, 8);
}

/* Copies @s into @dst (@size bytes); false when it does not fit. */
static bool copy_str(char *dst, size_t size, const char *s)
{
	size_t len = strlen(s);

	if (len >= size)
		return false;
	memcpy(dst, s, len + 1);
	return true;
}

static size_t job_encode(const struct store_job *j, unsigned char *out)
{
	unsigned char *p = out;
	const char *strs[4] = { j->xui, j->request_id, j->hash, j->reason };

	p[0] = JOB_FORMAT;
	p[1] = (unsigned char)j->state;
	p[2] = (unsigned char)j->kind;
	p[3] = 0;
	store_put_be(p + 4, j->attempts, 4);
	store_put_be(p + 8, j->code, 4);
	store_put_be(p + 12, j->created_ms, 8);
	store_put_be(p + 20, j->updated_ms, 8);
	store_put_be(p + 28, j->next_run_ms, 8);
	store_put_be(p + 36, j->lease_until_ms, 8);
	p += JOB_HEAD_LEN;
	for (size_t i = 0; i < 4; i++) {
		size_t len = strlen(strs[i]) + 1;

		memcpy(p, strs[i], len);
		p += len;
	}
	return (size_t)(p - out);
}

static enum xdms_err job_decode(const MDB_val *k, const MDB_val *v, struct store_job *j)
{
	const unsigned char *p = v->mv_data, *end = p + v->mv_size;
	char *strs[4];
	size_t sizes[4] = { sizeof(j->xui), sizeof(j->request_id), sizeof(j->hash), sizeof(j->reason) };

	memset(j, 0, sizeof(*j));
	if (k->mv_size != JOB_KEY_LEN || v->mv_size < JOB_HEAD_LEN || p[0] != JOB_FORMAT ||
	    p[1] >= STORE_JOB__STATES || (p[2] < STORE_JOB_IMPORT || p[2] > STORE_JOB_SUBSCRIBE))
		return XDMS_ERR_CORRUPT;
	j->id = store_get_be((const unsigned char *)k->mv_data + 1, 8);
	j->state = (enum store_job_state)p[1];
	j->kind = (enum store_job_kind)p[2];
	j->attempts = (unsigned)store_get_be(p + 4, 4);
	j->code = (unsigned)store_get_be(p + 8, 4);
	j->created_ms = store_get_be(p + 12, 8);
	j->updated_ms = store_get_be(p + 20, 8);
	j->next_run_ms = store_get_be(p + 28, 8);
	j->lease_until_ms = store_get_be(p + 36, 8);
	p += JOB_HEAD_LEN;
	strs[0] = j->xui;
	strs[1] = j->request_id;
	strs[2] = j->hash;
	strs[3] = j->reason;
	for (size_t i = 0; i < 4; i++) {
		const unsigned char *nul = memchr(p, '\0', (size_t)(end - p));

		if (!nul || (size_t)(nul - p) >= sizes[i])
			return XDMS_ERR_CORRUPT;
		memcpy(strs[i], p, (size_t)(nul - p) + 1);
		p = nul + 1;
	}
	return XDMS_ERR_OK;
}

static enum xdms_err job_read(struct store *st, MDB_txn *txn, uint64_t id, struct store_job *j)
{
	unsigned char kb[JOB_KEY_LEN];
	MDB_val k = { sizeof(kb), kb }, v;
	int rc;

	job_key(kb, 'J', id);
	rc = mdb_get(txn, st->dbi_jobs, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	return job_decode(&k, &v, j);
}

/* When an unfinished job can next be claimed. */
static uint64_t job_due(const struct store_job *j)
{
	return j->state == STORE_JOB_RUNNING ? j->lease_until_ms : j->next_run_ms;
}

static void due_key(unsigned char *k, uint64_t due_ms, uint64_t id)
{
	k[0] = 'D';
	store_put_be(k + 1, due_ms, 8);
	store_put_be(k + 9, id, 8);
}

/* Adds (@is_put) or removes the 'D' key of job @id due at @due_ms. */
static enum xdms_err due_set(struct store *st, MDB_txn *txn, uint64_t due_ms, uint64_t id, bool is_put)
{
	unsigned char kb[DUE_KEY_LEN];
	MDB_val k = { sizeof(kb), kb }, v = { 0, kb };
	int rc;

	due_key(kb, due_ms, id);
	rc = is_put ? store_kv_put(st, txn, st->dbi_jobs, &k, &v, 0) : store_kv_del(st, txn, st->dbi_jobs, &k);
	return store_err_from_mdb(rc == MDB_NOTFOUND ? 0 : rc);
}

/* Stores @j and keeps its 'A' and 'D' keys in step with its state. */
static enum xdms_err job_write(struct store *st, MDB_txn *txn, const struct store_job *j)
{
	unsigned char kb[JOB_KEY_LEN], vb[JOB_VALUE_MAX];
	MDB_val k = { sizeof(kb), kb }, v = { 0, vb };
	struct store_job old;
	enum xdms_err err;
	int rc;

	err = job_read(st, txn, j->id, &old);
	if (!err && is_active(old.state))
		err = due_set(st, txn, job_due(&old), old.id, false);
	else if (err == XDMS_ERR_NOTFOUND)
		err = XDMS_ERR_OK;
	if (err)
		return err;
	if (is_active(j->state)) {
		err = due_set(st, txn, job_due(j), j->id, true);
		if (err)
			return err;
	}
	job_key(kb, 'J', j->id);
	v.mv_size = job_encode(j, vb);
	rc = store_kv_put(st, txn, st->dbi_jobs, &k, &v, 0);
	if (rc)
		return store_err_from_mdb(rc);
	job_key(kb, 'A', j->id);
	if (is_active(j->state)) {
		v.mv_size = 0;
		rc = store_kv_put(st, txn, st->dbi_jobs, &k, &v, 0);
	} else {
		rc = store_kv_del(st, txn, st->dbi_jobs, &k);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	return store_err_from_mdb(rc);
}

/*
 * @tag (when not NUL) + @a + NUL + @b into @kb: the shape of the request and
 * secret keys. 0 when a part is empty or the key is longer than LMDB takes.
 */
static size_t pair_key(const struct store *st, char *kb, char tag, const char *a, const char *b)
{
	size_t t = tag ? 1 : 0, al = strlen(a), bl = strlen(b);

	if (!al || !bl || t + al + 1 + bl > st->max_key)
		return 0;
	kb[0] = tag;
	memcpy(kb + t, a, al);
	kb[t + al] = '\0';
	memcpy(kb + t + al + 1, b, bl);
	return t + al + 1 + bl;
}

/* 'R' + xui + NUL + request id into @kb; 0 when it does not fit a key. */
static size_t req_key(const struct store *st, char *kb, const char *xui, const char *request_id)
{
	if (strlen(xui) >= STORE_XUI_MAX || strlen(request_id) >= STORE_JOB_ID_MAX)
		return 0;
	return pair_key(st, kb, 'R', xui, request_id);
}

static enum xdms_err req_get(struct store *st, MDB_txn *txn, const char *xui, const char *request_id,
			     uint64_t *job_id, char *hash)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb }, v;
	int rc;

	k.mv_size = req_key(st, kb, xui, request_id);
	if (!k.mv_size)
		return XDMS_ERR_INVAL;
	rc = mdb_get(txn, st->dbi_jobs, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size != REQ_VALUE_LEN)
		return XDMS_ERR_CORRUPT;
	*job_id = store_get_be(v.mv_data, 8);
	if (hash) {
		memcpy(hash, (const char *)v.mv_data + 8, STORE_JOB_HASH_MAX - 1);
		hash[STORE_JOB_HASH_MAX - 1] = '\0';
	}
	return XDMS_ERR_OK;
}

static enum xdms_err req_put(struct store *st, MDB_txn *txn, const char *xui, const char *request_id,
			     uint64_t job_id, const char *hash)
{
	char kb[STORE_SELECTOR_MAX + 1];
	unsigned char vb[REQ_VALUE_LEN];
	MDB_val k = { 0, kb }, v = { sizeof(vb), vb };

	k.mv_size = req_key(st, kb, xui, request_id);
	if (!k.mv_size || strlen(hash) != STORE_JOB_HASH_MAX - 1)
		return XDMS_ERR_INVAL;
	store_put_be(vb, job_id, 8);
	memcpy(vb + 8, hash, STORE_JOB_HASH_MAX - 1);
	return store_err_from_mdb(store_kv_put(st, txn, st->dbi_jobs, &k, &v, 0));
}

/* Ends job @id with @state if it is unfinished. */
static enum xdms_err job_end(struct store *st, MDB_txn *txn, uint64_t id, enum store_job_state state,
			     unsigned code, const char *reason, bool *was_active)
{
	struct store_job j;
	enum xdms_err err = job_read(st, txn, id, &j);

	*was_active = false;
	if (err)
		return err;
	if (!is_active(j.state))
		return XDMS_ERR_OK;
	*was_active = true;
	j.state = state;
	j.code = code;
	j.updated_ms = store_now_ms();
	j.lease_until_ms = 0;
	if (reason && !copy_str(j.reason, sizeof(j.reason), reason))
		j.reason[0] = '\0';
	return job_write(st, txn, &j);
}

/* ---- inside a commit hook -------------------------------------------------------- */

enum xdms_err store_job_current_txn(struct store_txn *txn, const char *xui, const char *request_id,
				    uint64_t *job_id, char hash[STORE_JOB_HASH_MAX])
{
	return req_get(txn->st, txn->txn, xui, request_id, job_id, hash);
}

enum xdms_err store_job_add_txn(struct store_txn *txn, const char *xui, const char *request_id,
				const char *hash, enum store_job_kind kind, uint64_t *job_id)
{
	struct store *st = txn->st;
	unsigned char nk[1] = { 'N' }, nb[8];
	MDB_val k = { 1, nk }, v;
	struct store_job j;
	uint64_t prev, last = 0;
	enum xdms_err err;
	bool was_active;
	int rc;

	memset(&j, 0, sizeof(j));
	if (!copy_str(j.xui, sizeof(j.xui), xui) || !copy_str(j.request_id, sizeof(j.request_id), request_id) ||
	    !copy_str(j.hash, sizeof(j.hash), hash) || strlen(hash) != STORE_JOB_HASH_MAX - 1 || !xui[0] ||
	    !request_id[0] || kind < STORE_JOB_IMPORT || kind > STORE_JOB_SUBSCRIBE)
		return XDMS_ERR_INVAL;
	err = req_get(st, txn->txn, xui, request_id, &prev, NULL);
	if (!err) {
		err = job_end(st, txn->txn, prev, STORE_JOB_CANCELLED, 0, "replaced by a changed request",
			      &was_active);
		if (err && err != XDMS_ERR_NOTFOUND)
			return err;
	} else if (err != XDMS_ERR_NOTFOUND) {
		return err;
	}
	rc = mdb_get(txn->txn, st->dbi_jobs, &k, &v);
	if (!rc && v.mv_size == 8)
		last = store_get_be(v.mv_data, 8);
	else if (rc && rc != MDB_NOTFOUND)
		return store_err_from_mdb(rc);
	j.id = last + 1;
	store_put_be(nb, j.id, 8);
	v.mv_size = sizeof(nb);
	v.mv_data = nb;
	rc = store_kv_put(st, txn->txn, st->dbi_jobs, &k, &v, 0);
	if (rc)
		return store_err_from_mdb(rc);
	j.state = STORE_JOB_QUEUED;
	j.kind = kind;
	j.created_ms = j.updated_ms = j.next_run_ms = store_now_ms();
	err = job_write(st, txn->txn, &j);
	if (!err)
		err = req_put(st, txn->txn, xui, request_id, j.id, hash);
	if (!err && job_id)
		*job_id = j.id;
	if (!err)
		atomic_fetch_add_explicit(&st->job_generation, 1, memory_order_relaxed);
	return err;
}

enum xdms_err store_job_rehash_txn(struct store_txn *txn, const char *xui, const char *request_id,
				   const char *hash)
{
	uint64_t id;
	enum xdms_err err = req_get(txn->st, txn->txn, xui, request_id, &id, NULL);

	return err ? err : req_put(txn->st, txn->txn, xui, request_id, id, hash);
}

/* ---- secrets ------------------------------------------------------------------------ */

static size_t secret_key(const struct store *st, char *kb, const char *owner, const char *name)
{
	return pair_key(st, kb, '\0', owner, name);
}

/* The secret a request's credentials were sealed into goes with the request. */
static enum xdms_err request_secret_del(struct store *st, MDB_txn *txn, const char *xui, const char *request_id)
{
	char kb[STORE_SELECTOR_MAX + 1], name[STORE_JOB_ID_MAX + 8];
	MDB_val k = { 0, kb };
	int rc;

	snprintf(name, sizeof(name), "request:%s", request_id);
	k.mv_size = secret_key(st, kb, xui, name);
	if (!k.mv_size)
		return XDMS_ERR_OK;
	rc = store_kv_del(st, txn, st->dbi_secrets, &k);
	return rc == MDB_NOTFOUND ? XDMS_ERR_OK : store_err_from_mdb(rc);
}

struct secret_op {
	const char *owner, *name;
	const void *data;
	size_t len;
};

static enum xdms_err secret_put_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct secret_op *op = arg;
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb }, v = { op->len, (void *)op->data };
	int rc;

	k.mv_size = secret_key(st, kb, op->owner, op->name);
	if (!k.mv_size)
		return XDMS_ERR_INVAL;
	if (!op->data) {
		rc = store_kv_del(st, txn, st->dbi_secrets, &k);
		return store_err_from_mdb(rc);
	}
	return store_err_from_mdb(store_kv_put(st, txn, st->dbi_secrets, &k, &v, 0));
}

enum xdms_err store_secret_put(struct store *st, const char *owner, const char *name, const void *data, size_t len,
			       bool is_durable)
{
	struct secret_op op = { owner, name, data, len };

	if (!st || !owner || !name || !data)
		return XDMS_ERR_INVAL;
	if (len > STORE_SECRET_MAX)
		return XDMS_ERR_TOOBIG;
	return is_durable ? store_txn_run(st, secret_put_txn, &op) : store_txn_group(st, secret_put_txn, &op);
}

enum xdms_err store_secret_del(struct store *st, const char *owner, const char *name)
{
	struct secret_op op = { owner, name, NULL, 0 };

	if (!st || !owner || !name)
		return XDMS_ERR_INVAL;
	return store_txn_run(st, secret_put_txn, &op);
}

enum xdms_err store_secret_get(struct store_read *rd, const char *owner, const char *name, void *out, size_t cap,
			       size_t *len)
{
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb }, v;
	struct store *st;
	int rc;

	if (!rd || !owner || !name || !out || !len || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	k.mv_size = secret_key(st, kb, owner, name);
	if (!k.mv_size)
		return XDMS_ERR_INVAL;
	rc = mdb_get(rd->txn, st->dbi_secrets, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size > cap)
		return XDMS_ERR_TOOBIG;
	memcpy(out, v.mv_data, v.mv_size);
	*len = v.mv_size;
	return XDMS_ERR_OK;
}

enum xdms_err store_job_drop_txn(struct store_txn *txn, const char *xui, const char *request_id)
{
	struct store *st = txn->st;
	char kb[STORE_SELECTOR_MAX + 1];
	MDB_val k = { 0, kb };
	uint64_t id;
	bool was_active;
	enum xdms_err err = req_get(st, txn->txn, xui, request_id, &id, NULL);

	if (err)
		return err;
	err = job_end(st, txn->txn, id, STORE_JOB_CANCELLED, 0, "the request was deleted", &was_active);
	if (err && err != XDMS_ERR_NOTFOUND)
		return err;
	err = request_secret_del(st, txn->txn, xui, request_id);
	if (err)
		return err;
	k.mv_size = req_key(st, kb, xui, request_id);
	return store_err_from_mdb(store_kv_del(st, txn->txn, st->dbi_jobs, &k));
}

enum xdms_err store_job_end_txn(struct store_txn *txn, uint64_t job_id, enum store_job_state state,
				unsigned code, const char *reason)
{
	bool was_active;

	if (state != STORE_JOB_DONE && state != STORE_JOB_FAILED)
		return XDMS_ERR_INVAL;
	return job_end(txn->st, txn->txn, job_id, state, code, reason ? reason : "", &was_active);
}

/* ---- the worker pool --------------------------------------------------------------- */

struct claim_op {
	uint64_t now_ms, lease_ms;
	struct store_job *out;
	uint64_t next_due_ms;
};

static enum xdms_err claim_txn(struct store *st, MDB_txn *txn, void *arg)
{
	struct claim_op *op = arg;
	unsigned char first = 'D';
	MDB_cursor *cur = NULL;
	MDB_val k = { 1, &first }, v;
	enum xdms_err err = XDMS_ERR_NOTFOUND;
	int rc;

	op->next_due_ms = UINT64_MAX;
	rc = mdb_cursor_open(txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	/* The first 'D' key is the job due first. A key that does not match
	 * its record (none is written so; see the file comment) is dropped and
	 * the next one looked at. */
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)) {
		const unsigned char *kd = k.mv_data;
		uint64_t due, id;
		struct store_job j;
		enum xdms_err e;

		if (k.mv_size != DUE_KEY_LEN || kd[0] != 'D')
			break;
		due = store_get_be(kd + 1, 8);
		id = store_get_be(kd + 9, 8);
		if (due > op->now_ms) {
			op->next_due_ms = due;
			break;
		}
		e = job_read(st, txn, id, &j);
		if (e && e != XDMS_ERR_NOTFOUND) {
			err = e;
			break;
		}
		if (e || !is_active(j.state) || job_due(&j) != due) {
			rc = store_kv_cursor_del(st, cur, st->dbi_jobs);
			if (rc)
				break;
			first = 'D';
			k.mv_size = 1;
			k.mv_data = &first;
			continue;
		}
		mdb_cursor_close(cur);
		cur = NULL;
		j.state = STORE_JOB_RUNNING;
		j.attempts++;
		j.updated_ms = op->now_ms;
		j.lease_until_ms = op->now_ms + op->lease_ms;
		err = job_write(st, txn, &j);
		if (!err)
			*op->out = j;
		return err;
	}
	if (rc && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
	mdb_cursor_close(cur);
	return err;
}

enum xdms_err store_job_claim(struct store *st, uint64_t now_ms, uint64_t lease_ms, struct store_job *out,
			      uint64_t *next_due_ms)
{
	struct claim_op op = { now_ms, lease_ms, out, UINT64_MAX };
	enum xdms_err err;

	if (!st || !out)
		return XDMS_ERR_INVAL;
	/* Nothing ready aborts the transaction: claiming nothing writes nothing.
	 * A claim a crash loses only makes the job run again. */
	err = store_txn_group(st, claim_txn, &op);
	if (next_due_ms)
		*next_due_ms = op.next_due_ms;
	return err;
}

struct update_op {
	uint64_t id;
	enum store_job_state state; /* QUEUED for a retry */
	unsigned code;
	uint64_t next_run_ms;
	const char *reason;
	bool is_attempt;
};

static enum xdms_err update_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct update_op *op = arg;
	struct store_job j;
	enum xdms_err err = job_read(st, txn, op->id, &j);

	if (err)
		return err;
	if (op->state == STORE_JOB_QUEUED ? j.state != STORE_JOB_RUNNING : !is_active(j.state))
		return XDMS_ERR_CONFLICT;
	j.state = op->state;
	j.code = op->code;
	j.updated_ms = store_now_ms();
	j.lease_until_ms = 0;
	if (op->state == STORE_JOB_QUEUED) {
		j.next_run_ms = op->next_run_ms;
		if (!op->is_attempt && j.attempts > 0)
			j.attempts--;
	}
	if (op->reason && !copy_str(j.reason, sizeof(j.reason), op->reason)) {
		/* Keep what fits: the reason is for people, not for matching. */
		memcpy(j.reason, op->reason, sizeof(j.reason) - 1);
		j.reason[sizeof(j.reason) - 1] = '\0';
	}
	return job_write(st, txn, &j);
}

enum xdms_err store_job_retry(struct store *st, uint64_t job_id, uint64_t next_run_ms, bool is_attempt,
			      const char *reason)
{
	struct update_op op = { job_id, STORE_JOB_QUEUED, 0, next_run_ms, reason, is_attempt };

	return st ? store_txn_group(st, update_txn, &op) : XDMS_ERR_INVAL;
}

enum xdms_err store_job_end(struct store *st, uint64_t job_id, enum store_job_state state, unsigned code,
			    const char *reason)
{
	struct update_op op = { job_id, state, code, 0, reason, true };

	if (!st || is_active(state) || (unsigned)state >= STORE_JOB__STATES)
		return XDMS_ERR_INVAL;
	return store_txn_group(st, update_txn, &op);
}

static enum xdms_err release_txn(struct store *st, MDB_txn *txn, void *arg)
{
	unsigned *count = arg;
	unsigned char first = 'A';
	MDB_cursor *cur = NULL;
	MDB_val k = { 1, &first }, v;
	uint64_t ids[256];
	size_t n = 0;
	enum xdms_err err = XDMS_ERR_OK;
	int rc;

	/* Collect, then write: a cursor walk must not see its own puts. Over 256
	 * running jobs the caller loops (each call frees at least the first). */
	rc = mdb_cursor_open(txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc && n < 256;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_job j;

		if (k.mv_size != JOB_KEY_LEN || ((const unsigned char *)k.mv_data)[0] != 'A')
			break;
		err = job_read(st, txn, store_get_be((const unsigned char *)k.mv_data + 1, 8), &j);
		if (err)
			break;
		if (j.state == STORE_JOB_RUNNING)
			ids[n++] = j.id;
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n && !err; i++) {
		struct store_job j;

		err = job_read(st, txn, ids[i], &j);
		if (!err) {
			j.state = STORE_JOB_QUEUED;
			j.lease_until_ms = 0;
			j.next_run_ms = store_now_ms();
			err = job_write(st, txn, &j);
		}
	}
	*count = (unsigned)n;
	return err;
}

struct reindex_op {
	uint64_t from_id; /* the next 'A' key to look at */
	bool is_more;
};

/* Gives up to 256 queued jobs from op->from_id on their 'D' key when they
 * lack it (a store written before the index existed). */
static enum xdms_err reindex_txn(struct store *st, MDB_txn *txn, void *arg)
{
	struct reindex_op *op = arg;
	unsigned char kb[JOB_KEY_LEN];
	MDB_cursor *cur = NULL;
	MDB_val k = { sizeof(kb), kb }, v;
	struct store_job todo[64];
	size_t n = 0, seen = 0;
	enum xdms_err err = XDMS_ERR_OK;
	int rc;

	op->is_more = false;
	job_key(kb, 'A', op->from_id);
	rc = mdb_cursor_open(txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		unsigned char dk[DUE_KEY_LEN];
		MDB_val d = { sizeof(dk), dk }, dv;
		struct store_job j;

		if (k.mv_size != JOB_KEY_LEN || ((const unsigned char *)k.mv_data)[0] != 'A')
			break;
		if (n == sizeof(todo) / sizeof(todo[0]) || seen == 4096) {
			op->from_id = store_get_be((const unsigned char *)k.mv_data + 1, 8);
			op->is_more = true;
			break;
		}
		seen++;
		err = job_read(st, txn, store_get_be((const unsigned char *)k.mv_data + 1, 8), &j);
		if (err)
			break;
		due_key(dk, job_due(&j), j.id);
		if (is_active(j.state) && mdb_get(txn, st->dbi_jobs, &d, &dv) == MDB_NOTFOUND)
			todo[n++] = j;
	}
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n && !err; i++)
		err = due_set(st, txn, job_due(&todo[i]), todo[i].id, true);
	return err;
}

enum xdms_err store_job_release_all(struct store *st, unsigned *count)
{
	struct reindex_op ri = { 0, false };
	unsigned n = 0, total = 0;
	enum xdms_err err;

	if (!st)
		return XDMS_ERR_INVAL;
	do {
		err = store_txn_group(st, reindex_txn, &ri);
	} while (!err && ri.is_more);
	if (err)
		return err;
	do {
		err = store_txn_group(st, release_txn, &n);
		total += n;
	} while (!err && n == 256);
	if (count)
		*count = total;
	return err;
}

#define PRUNE_BATCH 512 /* jobs deleted per transaction, so a prune never holds the writer long */

struct prune_op {
	uint64_t before_ms;
	unsigned deleted;
	bool is_more; /* the batch filled up: call again */
};

/*
 * Ids grow with creation time, so the walk over 'J' keys stops at the first
 * job created after the cut-off: no later one can have ended before it. Jobs
 * still queued or running are stepped over. The 'R' key of a request stays:
 * it holds the hash its next write is compared with, and a missing job record
 * behind it reads as "ended long ago" everywhere.
 */
static enum xdms_err prune_txn(struct store *st, MDB_txn *txn, void *arg)
{
	struct prune_op *op = arg;
	unsigned char first[JOB_KEY_LEN];
	MDB_cursor *cur = NULL;
	MDB_val k = { sizeof(first), first }, v;
	uint64_t ids[PRUNE_BATCH];
	size_t n = 0;
	enum xdms_err err = XDMS_ERR_OK;
	int rc;

	op->deleted = 0;
	op->is_more = false;
	job_key(first, 'J', 0);
	rc = mdb_cursor_open(txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_job j;

		if (k.mv_size != JOB_KEY_LEN || ((const unsigned char *)k.mv_data)[0] != 'J')
			break;
		if (job_decode(&k, &v, &j))
			continue; /* one unreadable record must not stop pruning for good */
		if (j.created_ms >= op->before_ms)
			break;
		if (is_active(j.state) || j.updated_ms >= op->before_ms)
			continue;
		if (n == PRUNE_BATCH) {
			op->is_more = true;
			break;
		}
		ids[n++] = j.id;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND && !err)
		err = store_err_from_mdb(rc);
	/* Collected first: a cursor walk must not see its own deletions. */
	for (size_t i = 0; i < n && !err; i++) {
		unsigned char kb[JOB_KEY_LEN];
		MDB_val dk = { sizeof(kb), kb };

		job_key(kb, 'J', ids[i]);
		rc = store_kv_del(st, txn, st->dbi_jobs, &dk);
		if (rc && rc != MDB_NOTFOUND)
			err = store_err_from_mdb(rc);
	}
	if (!err)
		op->deleted = (unsigned)n;
	return err;
}

enum xdms_err store_job_prune(struct store *st, uint64_t before_ms, unsigned *count)
{
	struct prune_op op = { before_ms, 0, false };
	unsigned total = 0;
	enum xdms_err err;

	if (!st)
		return XDMS_ERR_INVAL;
	do {
		err = store_txn_group(st, prune_txn, &op);
		if (!err)
			total += op.deleted;
	} while (!err && op.is_more);
	if (count)
		*count = total;
	return err;
}

enum xdms_err store_job_count_active(struct store_read *rd, uint64_t *queued, uint64_t *running)
{
	struct store *st;
	unsigned char first = 'A';
	MDB_cursor *cur = NULL;
	MDB_val k = { 1, &first }, v;
	enum xdms_err err = XDMS_ERR_OK;
	int rc;

	*queued = *running = 0;
	if (!rd || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	rc = mdb_cursor_open(rd->txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_job j;

		if (k.mv_size != JOB_KEY_LEN || ((const unsigned char *)k.mv_data)[0] != 'A')
			break;
		if (job_read(st, rd->txn, store_get_be((const unsigned char *)k.mv_data + 1, 8), &j))
			continue; /* an index entry without its record: not counted */
		if (j.state == STORE_JOB_RUNNING)
			(*running)++;
		else if (j.state == STORE_JOB_QUEUED)
			(*queued)++;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		err = store_err_from_mdb(rc);
	return err;
}

uint64_t store_job_generation(struct store *st)
{
	return atomic_load_explicit(&st->job_generation, memory_order_relaxed);
}

/* ---- reading ------------------------------------------------------------------------ */

static struct store *read_store(struct store_read *rd)
{
	return atomic_load_explicit(&rd->st, memory_order_relaxed);
}

enum xdms_err store_job_get(struct store_read *rd, uint64_t job_id, struct store_job *out)
{
	if (!rd || !out || !rd->txn)
		return XDMS_ERR_INVAL;
	return job_read(read_store(rd), rd->txn, job_id, out);
}

enum xdms_err store_job_current(struct store_read *rd, const char *xui, const char *request_id, uint64_t *job_id)
{
	if (!rd || !xui || !request_id || !job_id || !rd->txn)
		return XDMS_ERR_INVAL;
	return req_get(read_store(rd), rd->txn, xui, request_id, job_id, NULL);
}

enum xdms_err store_job_list(struct store_read *rd, store_job_visit_fn visit, void *arg)
{
	unsigned char first = 'J';
	MDB_cursor *cur = NULL;
	MDB_val k = { 1, &first }, v;
	enum xdms_err err = XDMS_ERR_OK;
	struct store *st;
	int rc;

	if (!rd || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	st = read_store(rd);
	rc = mdb_cursor_open(rd->txn, st->dbi_jobs, &cur);
	if (rc)
		return store_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct store_job j;

		if (k.mv_size < 1 || ((const unsigned char *)k.mv_data)[0] != 'J')
			break;
		err = job_decode(&k, &v, &j);
		if (err || visit(arg, &j))
			break;
	}
	if (rc && rc != MDB_NOTFOUND && !err)
		err = store_err_from_mdb(rc);
	mdb_cursor_close(cur);
	return err;
}
