/* SPDX-License-Identifier: MIT */
/*
 * Users and their name index.
 *
 *   users  XUI bytes -> format byte (1) + struct store_user
 *   names  realm bytes, NUL, name bytes -> XUI bytes
 *
 * Every realm of a user gets two names entries, one for the XUI's user part
 * and one for the full XUI, because a Digest client may send either as its
 * username (store.h). The user record is a fixed-size POD; it is copied
 * field by field into a zeroed struct before it is written, so padding and
 * the unused tails of the string arrays are stored as zeros, never as
 * whatever the caller's memory held. A change of the struct's layout must
 * bump the format byte.
 *
 * A name that already points at another user is a CONFLICT: overwriting it
 * would silently take away the other user's login. Names are unique within a
 * realm only: sip:alice@a.example and sip:alice@b.example each own "alice"
 * in their own domain's realm.
 *
 * The store's default realm (the realm of global documents and tel: users
 * when auth.realm is not set) is one meta record, "default_realm" -> realm
 * bytes, written with the first user that asks for it (the domain of the
 * first user provisioned) and never changed by a later put. Stores from
 * before it have no such record and keep the old default, "xdms"; the users
 * and names layouts are unchanged, so no migration is needed.
 *
 * Writes run their own top-level write transaction on the calling thread
 * (xdmsctl, provisioning); LMDB serializes them with the writer thread and
 * with other processes. They take map_lock shared like every transaction and
 * grow the map the same way the writer does.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "store/store.h"
#include "store/store_int.h"

#define USER_FORMAT 1u
#define USER_VALUE_LEN (1 + sizeof(struct store_user))
#define NAME_KEY_MAX (STORE_REALM_MAX + STORE_XUI_MAX)
#define META_DEFAULT_REALM "default_realm"

static bool str_fits(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool user_valid(const struct store_user *u)
{
	if (!str_fits(u->xui, sizeof(u->xui)) || !u->xui[0] ||
	    !str_fits(u->username, sizeof(u->username)) || !u->username[0] ||
	    u->realm_count > STORE_USER_REALMS_MAX)
		return false;
	for (unsigned i = 0; i < u->realm_count; i++)
		if (!str_fits(u->realms[i].realm, sizeof(u->realms[i].realm)) || !u->realms[i].realm[0])
			return false;
	return true;
}

/* Copies the meaningful bytes of @u into a zeroed record. */
static void user_normalize(const struct store_user *u, struct store_user *n)
{
	memset(n, 0, sizeof(*n));
	memcpy(n->xui, u->xui, strlen(u->xui));
	memcpy(n->username, u->username, strlen(u->username));
	n->created_ms = u->created_ms;
	n->realm_count = u->realm_count;
	for (unsigned i = 0; i < u->realm_count; i++) {
		const struct store_user_realm *r = &u->realms[i];
		struct store_user_realm *nr = &n->realms[i];

		unsigned char flag;

		memcpy(nr->realm, r->realm, strlen(r->realm));
		/* Read as a byte: a caller's garbage must not become an invalid bool. */
		memcpy(&flag, &r->is_xui_only, 1);
		nr->is_xui_only = flag != 0;
		memcpy(nr->ha1_md5_user, r->ha1_md5_user, sizeof(nr->ha1_md5_user));
		memcpy(nr->ha1_sha256_user, r->ha1_sha256_user, sizeof(nr->ha1_sha256_user));
		memcpy(nr->ha1_md5_xui, r->ha1_md5_xui, sizeof(nr->ha1_md5_xui));
		memcpy(nr->ha1_sha256_xui, r->ha1_sha256_xui, sizeof(nr->ha1_sha256_xui));
	}
}

static enum xdms_err user_decode(const MDB_val *v, struct store_user *out)
{
	const unsigned char *p = v->mv_data;

	if (v->mv_size != USER_VALUE_LEN || p[0] != USER_FORMAT)
		return XDMS_ERR_CORRUPT;
	memcpy(out, p + 1, sizeof(*out));
	if (!user_valid(out))
		return XDMS_ERR_CORRUPT;
	return XDMS_ERR_OK;
}

/* Builds "realm\0name"; 0 when it cannot be a key. */
static size_t name_key(struct store *st, char *buf, const char *realm, const char *name)
{
	size_t rl = strlen(realm), nl = strlen(name);

	if (rl >= STORE_REALM_MAX || nl >= STORE_XUI_MAX || rl + 1 + nl > st->max_key)
		return 0;
	memcpy(buf, realm, rl);
	buf[rl] = '\0';
	memcpy(buf + rl + 1, name, nl);
	return rl + 1 + nl;
}

static enum xdms_err user_txn_get(struct store *st, MDB_txn *txn, const char *xui, struct store_user *out)
{
	size_t len = strlen(xui);
	MDB_val k = { len, (void *)xui };
	MDB_val v;
	int rc;

	if (len == 0 || len >= STORE_XUI_MAX)
		return XDMS_ERR_NOTFOUND;
	rc = mdb_get(txn, st->dbi_users, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	return user_decode(&v, out);
}

/*
 * For each names key of @u: with @is_check, CONFLICT if it names another
 * user; otherwise removes the entries that name @u.
 */
static enum xdms_err names_walk(struct store *st, MDB_txn *txn, const struct store_user *u, bool is_check)
{
	size_t xui_len = strlen(u->xui);
	char key[NAME_KEY_MAX];
	MDB_val k, v;
	int rc;

	for (unsigned i = 0; i < u->realm_count; i++) {
		const char *names[2] = { u->username, u->xui };

		/* A realm marked xui-only indexes the full XUI alone. */
		for (size_t j = u->realms[i].is_xui_only ? 1 : 0; j < 2; j++) {
			k.mv_size = name_key(st, key, u->realms[i].realm, names[j]);
			k.mv_data = key;
			if (!k.mv_size)
				return XDMS_ERR_TOOBIG;
			rc = mdb_get(txn, st->dbi_names, &k, &v);
			if (rc == MDB_NOTFOUND)
				continue;
			if (rc)
				return store_err_from_mdb(rc);
			if (v.mv_size == xui_len && memcmp(v.mv_data, u->xui, xui_len) == 0) {
				if (!is_check) {
					rc = store_kv_del(st, txn, st->dbi_names, &k);
					if (rc)
						return store_err_from_mdb(rc);
				}
			} else if (is_check) {
				return XDMS_ERR_CONFLICT;
			}
		}
	}
	return XDMS_ERR_OK;
}

static enum xdms_err names_put(struct store *st, MDB_txn *txn, const struct store_user *u)
{
	char key[NAME_KEY_MAX];
	MDB_val k, v;
	int rc;

	for (unsigned i = 0; i < u->realm_count; i++) {
		const char *names[2] = { u->username, u->xui };

		/* A realm marked xui-only indexes the full XUI alone. */
		for (size_t j = u->realms[i].is_xui_only ? 1 : 0; j < 2; j++) {
			k.mv_size = name_key(st, key, u->realms[i].realm, names[j]);
			k.mv_data = key;
			v.mv_size = strlen(u->xui);
			v.mv_data = (void *)u->xui;
			rc = store_kv_put(st, txn, st->dbi_names, &k, &v, 0);
			if (rc)
				return store_err_from_mdb(rc);
		}
	}
	return XDMS_ERR_OK;
}

struct user_op {
	const struct store_user *u; /* put: the normalized record */
	bool is_create;
	const char *default_realm; /* put: record it when the store has none */
	const char *xui; /* del */
	char *yielded;   /* put: the XUI that gave up its alias to u (STORE_XUI_MAX bytes), or "" */
};

/*
 * A user's first realm is its own (its domain, or the default realm for tel:
 * users); its other realm is an alias (the default realm, for global
 * documents). In its own realm a user's user part is its own: when another
 * domain's user holds that name there only as an alias (sip:alice@b.example
 * in realm a.example, provisioned before sip:alice@a.example), the alias
 * becomes xui-only in the same transaction, so the order users are added in
 * never locks a user out of its own domain.
 */
static enum xdms_err alias_yield(struct store *st, MDB_txn *txn, const struct store_user *u, char *yielded)
{
	const struct store_user_realm *own = &u->realms[0];
	char key[NAME_KEY_MAX];
	char holder_xui[STORE_XUI_MAX];
	struct store_user h;
	unsigned char val[USER_VALUE_LEN];
	MDB_val k, v, hk, hv = { sizeof(val), val };
	enum xdms_err err;
	int rc;

	if (u->realm_count == 0 || own->is_xui_only)
		return XDMS_ERR_OK;
	k.mv_size = name_key(st, key, own->realm, u->username);
	k.mv_data = key;
	if (!k.mv_size)
		return XDMS_ERR_OK; /* names_walk reports it */
	rc = mdb_get(txn, st->dbi_names, &k, &v);
	if (rc == MDB_NOTFOUND)
		return XDMS_ERR_OK;
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size >= sizeof(holder_xui) ||
	    (v.mv_size == strlen(u->xui) && memcmp(v.mv_data, u->xui, v.mv_size) == 0))
		return XDMS_ERR_OK;
	memcpy(holder_xui, v.mv_data, v.mv_size);
	holder_xui[v.mv_size] = '\0';
	err = user_txn_get(st, txn, holder_xui, &h);
	if (err)
		return err == XDMS_ERR_NOTFOUND ? XDMS_ERR_OK : err;
	/* Only an alias (a realm after the holder's own) gives way; a name
	 * really taken in its own realm stays a conflict. */
	for (unsigned i = 1; i < h.realm_count; i++) {
		if (strcmp(h.realms[i].realm, own->realm) != 0 || h.realms[i].is_xui_only)
			continue;
		h.realms[i].is_xui_only = true;
		rc = store_kv_del(st, txn, st->dbi_names, &k);
		if (!rc) {
			hk.mv_size = strlen(h.xui);
			hk.mv_data = h.xui;
			val[0] = USER_FORMAT;
			memcpy(val + 1, &h, sizeof(h));
			rc = store_kv_put(st, txn, st->dbi_users, &hk, &hv, 0);
		}
		if (!rc && yielded)
			snprintf(yielded, STORE_XUI_MAX, "%s", h.xui);
		explicit_bzero(&h, sizeof(h));
		explicit_bzero(val, sizeof(val));
		return store_err_from_mdb(rc);
	}
	explicit_bzero(&h, sizeof(h));
	return XDMS_ERR_OK;
}

/* Records @realm as the default realm unless one is recorded: CONFLICT when
 * another one is (a concurrent first provisioning chose differently). */
static enum xdms_err default_realm_record(struct store *st, MDB_txn *txn, const char *realm)
{
	MDB_val k = { sizeof(META_DEFAULT_REALM) - 1, (void *)META_DEFAULT_REALM };
	MDB_val v;
	size_t len = strlen(realm);
	int rc = mdb_get(txn, st->dbi_meta, &k, &v);

	if (rc == MDB_SUCCESS)
		return v.mv_size == len && memcmp(v.mv_data, realm, len) == 0 ? XDMS_ERR_OK : XDMS_ERR_CONFLICT;
	if (rc != MDB_NOTFOUND)
		return store_err_from_mdb(rc);
	v.mv_size = len;
	v.mv_data = (void *)realm;
	return store_err_from_mdb(store_kv_put(st, txn, st->dbi_meta, &k, &v, 0));
}

static enum xdms_err user_put_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct user_op *op = arg;
	const struct store_user *u = op->u;
	unsigned char val[USER_VALUE_LEN];
	struct store_user old;
	enum xdms_err err;
	MDB_val k = { strlen(u->xui), (void *)u->xui };
	MDB_val v = { sizeof(val), val };
	int rc;

	err = user_txn_get(st, txn, u->xui, &old);
	if (!err) {
		if (op->is_create)
			return XDMS_ERR_EXISTS;
		/* Replacing: the previous record's names go first (its realms may differ). */
		err = names_walk(st, txn, &old, false);
		if (err)
			return err;
	} else if (err != XDMS_ERR_NOTFOUND) {
		return err;
	}
	if (op->yielded)
		op->yielded[0] = '\0';
	err = alias_yield(st, txn, u, op->yielded);
	if (!err)
		err = names_walk(st, txn, u, true);
	if (!err)
		err = names_put(st, txn, u);
	if (!err && op->default_realm)
		err = default_realm_record(st, txn, op->default_realm);
	if (err)
		return err;
	val[0] = USER_FORMAT;
	memcpy(val + 1, u, sizeof(*u));
	rc = store_kv_put(st, txn, st->dbi_users, &k, &v, 0);
	return store_err_from_mdb(rc);
}

static enum xdms_err user_del_txn(struct store *st, MDB_txn *txn, void *arg)
{
	const struct user_op *op = arg;
	struct store_user old;
	enum xdms_err err;
	MDB_val k = { strlen(op->xui), (void *)op->xui };
	int rc;

	err = user_txn_get(st, txn, op->xui, &old);
	if (err)
		return err;
	err = names_walk(st, txn, &old, false);
	if (err)
		return err;
	rc = store_kv_del(st, txn, st->dbi_users, &k);
	return store_err_from_mdb(rc);
}

enum xdms_err store_user_put_realm(struct store *st, const struct store_user *u, bool is_create,
				   const char *default_realm, char *yielded)
{
	struct store_user n;
	struct user_op op = { .u = &n, .is_create = is_create, .default_realm = default_realm, .yielded = yielded };
	enum xdms_err err;

	if (!st || !u || !user_valid(u) ||
	    (default_realm && (!default_realm[0] || strlen(default_realm) >= STORE_REALM_MAX)))
		return XDMS_ERR_INVAL;
	user_normalize(u, &n);
	err = store_txn_run(st, user_put_txn, &op);
	explicit_bzero(&n, sizeof(n));
	return err;
}

enum xdms_err store_user_put(struct store *st, const struct store_user *u, bool is_create)
{
	return store_user_put_realm(st, u, is_create, NULL, NULL);
}

enum xdms_err store_default_realm_get(struct store_read *rd, char *out, size_t out_len)
{
	MDB_val k = { sizeof(META_DEFAULT_REALM) - 1, (void *)META_DEFAULT_REALM };
	MDB_val v;
	int rc;

	if (!rd || !out || !out_len || !rd->txn)
		return XDMS_ERR_INVAL;
	rc = mdb_get(rd->txn, atomic_load_explicit(&rd->st, memory_order_relaxed)->dbi_meta, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size == 0 || v.mv_size >= STORE_REALM_MAX)
		return XDMS_ERR_CORRUPT;
	if (v.mv_size >= out_len)
		return XDMS_ERR_TOOBIG;
	memcpy(out, v.mv_data, v.mv_size);
	out[v.mv_size] = '\0';
	return XDMS_ERR_OK;
}

enum xdms_err store_user_del(struct store *st, const char *xui)
{
	struct user_op op = { .xui = xui };

	if (!st || !xui)
		return XDMS_ERR_INVAL;
	return store_txn_run(st, user_del_txn, &op);
}

enum xdms_err store_user_get(struct store_read *rd, const char *xui, struct store_user *out)
{
	if (!rd || !xui || !out || !rd->txn)
		return XDMS_ERR_INVAL;
	return user_txn_get(atomic_load_explicit(&rd->st, memory_order_relaxed), rd->txn, xui, out);
}

enum xdms_err store_user_find(struct store_read *rd, const char *realm, const char *username,
			      struct store_user *out)
{
	char key[NAME_KEY_MAX];
	char xui[STORE_XUI_MAX];
	enum xdms_err err;
	struct store *st;
	MDB_val k, v;
	int rc;

	if (!rd || !realm || !username || !out || !rd->txn)
		return XDMS_ERR_INVAL;
	st = atomic_load_explicit(&rd->st, memory_order_relaxed);
	k.mv_size = name_key(st, key, realm, username);
	k.mv_data = key;
	if (!k.mv_size)
		return XDMS_ERR_NOTFOUND;
	rc = mdb_get(rd->txn, st->dbi_names, &k, &v);
	if (rc)
		return store_err_from_mdb(rc);
	if (v.mv_size == 0 || v.mv_size >= sizeof(xui))
		return XDMS_ERR_CORRUPT;
	memcpy(xui, v.mv_data, v.mv_size);
	xui[v.mv_size] = '\0';
	err = user_txn_get(st, rd->txn, xui, out);
	/* A name without its user means the index and the records disagree. */
	return err == XDMS_ERR_NOTFOUND ? XDMS_ERR_CORRUPT : err;
}

struct user_walk {
	store_user_visit_fn visit;
	void *arg;
};

static int user_walk_one(void *arg, const MDB_val *k, const MDB_val *v, enum xdms_err *err)
{
	struct user_walk *w = arg;
	struct store_user u;

	(void)k;
	*err = user_decode(v, &u);
	if (*err)
		return -1;
	return w->visit(w->arg, &u) ? 1 : 0;
}

enum xdms_err store_user_list(struct store_read *rd, store_user_visit_fn visit, void *arg)
{
	struct user_walk w = { visit, arg };

	if (!rd || !visit || !rd->txn)
		return XDMS_ERR_INVAL;
	return store_walk(rd, atomic_load_explicit(&rd->st, memory_order_relaxed)->dbi_users, NULL,
			  user_walk_one, &w);
}
