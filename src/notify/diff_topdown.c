/* SPDX-License-Identifier: MIT */
/*
 * The top-down diff (see diff.c's opening for the design): children are
 * compared as units, operations are emitted right to left, positions are
 * counted over "old children [0, x) followed by new children [y, end)" from
 * per-group sorted index lists, and the middle between the common head and
 * tail is anchored on a weighted LCS of units (or, when too large, on the
 * patience anchors).
 *
 * Invariants: recursion follows element depth, which the scanner caps at
 * XML_SCAN_MAX_DEPTH; the LCS table is freed before recursing.
 *
 * Threads: pure functions; any thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "notify/notify_int.h"

/* ==== the top-down diff ==================================================================== */

enum { GROUP_ELEM, GROUP_TEXT, GROUP_COMMENT, GROUP_PI, GROUP_NAMED };

/* A non-text child with the text node before it (text = DIFF_NONE when absent). */
struct unit {
	size_t text, node;
	uint64_t hash;     /* of both nodes' bytes: a cheap "probably identical" */
	uint64_t tag_hash; /* of an element's start tag: "probably the same entry" */
};

/* The children of one element on one side, with their counting groups. */
struct side {
	const struct xml_scan *s;
	uint32_t elem;
	struct children ch;
	uint32_t *grp;       /* the group a child's position is counted in */
	uint32_t *off, *idx; /* per group, its children in ascending order */
	struct unit *u;
	size_t un;
	size_t tail;         /* trailing text child, DIFF_NONE when absent */
};

static void side_cleanup(struct side *sd)
{
	children_cleanup(&sd->ch);
	free(sd->grp);
	free(sd->off);
	free(sd->idx);
	free(sd->u);
}

struct named {
	const char *ns, *local;
	size_t local_len;
	int side;
	size_t child;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->ns, y->ns);
	size_t n = x->local_len < y->local_len ? x->local_len : y->local_len;

	if (c)
		return c;
	c = memcmp(x->local, y->local, n);
	if (c)
		return c;
	return x->local_len < y->local_len ? -1 : x->local_len > y->local_len;
}

static size_t lower_bound(const uint32_t *v, size_t n, size_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Children of group @g among @sd's children [lo, hi). */
static size_t count_in(const struct side *sd, uint32_t g, size_t lo, size_t hi)
{
	const uint32_t *v = sd->idx + sd->off[g];
	size_t n = sd->off[g + 1] - sd->off[g];

	return lower_bound(v, n, hi) - lower_bound(v, n, lo);
}

/* FNV-1a over bytes [from, to) of @s, continuing @h, then a separator that
 * no byte can be (0x100), so that two runs do not hash as their
 * concatenation would. */
static uint64_t fnv(uint64_t h, const char *s, size_t from, size_t to)
{
	return (fnv1a_add(h, s + from, to - from) ^ 0x100u) * FNV1A_PRIME;
}

/* A unit with its hashes. */
static struct unit unit_make(const struct side *sd, size_t text, size_t node)
{
	const struct child *c = &sd->ch.v[node];
	struct unit u = { text, node, FNV1A_BASIS, 0 };

	if (text != DIFF_NONE)
		u.hash = fnv(u.hash, sd->s->data, sd->ch.v[text].start, sd->ch.v[text].end);
	u.hash = fnv(u.hash, sd->s->data, c->start, c->end);
	if (c->kind == CHILD_ELEM)
		u.tag_hash = fnv(FNV1A_BASIS, sd->s->data, c->start, sd->s->elems[c->elem].start_end);
	return u;
}

/* Builds both sides' children, units and shared groups. */
static enum xdms_err sides_build(struct side *sd /* [2] */)
{
	struct named *nm = NULL;
	size_t nm_n = 0, nm_cap = 0;
	uint32_t groups = GROUP_NAMED;
	enum xdms_err err;

	for (int k = 0; k < 2; k++) {
		err = children_collect(sd[k].s, sd[k].elem, &sd[k].ch);
		if (err)
			goto out;
		sd[k].grp = xcalloc(sd[k].ch.n + 1, sizeof(*sd[k].grp));
		sd[k].u = xcalloc(sd[k].ch.n + 1, sizeof(*sd[k].u));
		sd[k].tail = DIFF_NONE;
		for (size_t i = 0, text = DIFF_NONE; i < sd[k].ch.n; i++) {
			const struct child *c = &sd[k].ch.v[i];

			if (c->kind == CHILD_TEXT) {
				text = i;
				sd[k].grp[i] = GROUP_TEXT;
				if (i + 1 == sd[k].ch.n)
					sd[k].tail = i;
				continue;
			}
			sd[k].u[sd[k].un++] = unit_make(&sd[k], text, i);
			text = DIFF_NONE;
			if (c->kind == CHILD_COMMENT) {
				sd[k].grp[i] = GROUP_COMMENT;
			} else if (c->kind == CHILD_PI) {
				sd[k].grp[i] = GROUP_PI;
			} else {
				const struct xml_scan_elem *el = &sd[k].s->elems[c->elem];

				if (!el->ns) {
					err = XDMS_ERR_UNSUPPORTED;
					goto out;
				}
				sd[k].grp[i] = GROUP_ELEM;
				if (!el->ns[0])
					continue;
				if (nm_n == nm_cap) {
					nm_cap = nm_cap ? nm_cap * 2 : 16;
					nm = xrealloc(nm, nm_cap * sizeof(*nm));
				}
				nm[nm_n].ns = el->ns;
				nm[nm_n].local = xml_scan_elem_local(sd[k].s, c->elem, &nm[nm_n].local_len);
				nm[nm_n].side = k;
				nm[nm_n].child = i;
				nm_n++;
			}
		}
	}
	if (nm_n)
		qsort(nm, nm_n, sizeof(*nm), named_cmp);
	for (size_t i = 0; i < nm_n; i++) {
		if (i && named_cmp(&nm[i - 1], &nm[i]) != 0)
			groups++;
		sd[nm[i].side].grp[nm[i].child] = groups;
	}
	if (nm_n)
		groups++;
	/* Every element also counts in GROUP_ELEM (for "*" steps). */
	for (int k = 0; k < 2; k++) {
		uint32_t *fill;

		sd[k].off = xcalloc(groups + 1, sizeof(*sd[k].off));
		for (size_t i = 0; i < sd[k].ch.n; i++) {
			sd[k].off[sd[k].grp[i] + 1]++;
			if (sd[k].grp[i] >= GROUP_NAMED)
				sd[k].off[GROUP_ELEM + 1]++;
		}
		for (uint32_t g = 0; g < groups; g++)
			sd[k].off[g + 1] += sd[k].off[g];
		sd[k].idx = xcalloc(sd[k].off[groups] + 1, sizeof(*sd[k].idx));
		fill = xcalloc(groups + 1, sizeof(*fill));
		for (size_t i = 0; i < sd[k].ch.n; i++) {
			uint32_t g = sd[k].grp[i];

			sd[k].idx[sd[k].off[g] + fill[g]++] = (uint32_t)i;
			if (g >= GROUP_NAMED)
				sd[k].idx[sd[k].off[GROUP_ELEM] + fill[GROUP_ELEM]++] = (uint32_t)i;
		}
		free(fill);
	}
	err = XDMS_ERR_OK;
out:
	free(nm);
	return err;
}

/* The current children are old [0, x) followed by new [y, end). */
struct state {
	size_t x, y;
};

/* Appends the step of old child @q (is_new false) or new child @q to @p. */
static enum xdms_err path_add_child(struct differ *d, struct path *p, const struct side *sd /* [2] */, struct state st,
				    bool is_new, size_t q)
{
	const struct side *own = &sd[is_new ? 1 : 0];
	uint32_t g = own->grp[q];
	size_t left = count_in(&sd[0], g, 0, st.x), total = left + count_in(&sd[1], g, st.y, sd[1].ch.n);
	size_t pos = is_new ? left + count_in(&sd[1], g, st.y, q) + 1 : count_in(&sd[0], g, 0, q) + 1;
	const struct child *c = &own->ch.v[q];
	static const char *const tests[] = { NULL, "text()", "comment()", "processing-instruction()" };

	if (c->kind == CHILD_ELEM)
		return path_add_step(d, p, own->s, c->elem, pos, total);
	path_addf(p, "/%s", tests[c->kind]);
	if (total > 1)
		path_addf(p, "[%zu]", pos);
	return XDMS_ERR_OK;
}

/* One operation on a child: @name with @extra at old child @q (or new child
 * @q when @is_new), with content new children [from, to) or none. */
static enum xdms_err child_op(struct differ *d, const struct path *parent, const struct side *sd, struct state st,
			      bool is_new, size_t q, const char *name, const char *extra, size_t from, size_t to,
			      bool has_content)
{
	struct path p;
	enum xdms_err err;

	path_copy(&p, parent);
	err = path_add_child(d, &p, sd, st, is_new, q);
	if (!err)
		err = has_content ? op_nodes(d, name, &p, extra, sd[1].s, &sd[1].ch, from, to)
				  : op_open(d, name, &p, extra, false);
	path_cleanup(&p);
	return err;
}

static bool child_equal(const struct side *sd, size_t a, size_t b)
{
	const struct child *x, *y;

	if (a == DIFF_NONE || b == DIFF_NONE)
		return a == DIFF_NONE && b == DIFF_NONE;
	x = &sd[0].ch.v[a];
	y = &sd[1].ch.v[b];
	return x->kind == y->kind && x->end - x->start == y->end - y->start &&
	       memcmp(sd[0].s->data + x->start, sd[1].s->data + y->start, x->end - x->start) == 0;
}

static bool unit_equal(const struct side *sd, const struct unit *a, const struct unit *b)
{
	return child_equal(sd, a->text, b->text) && child_equal(sd, a->node, b->node);
}

static size_t unit_start(const struct unit *u)
{
	return u->text != DIFF_NONE ? u->text : u->node;
}

/* Same expanded name and the same namespace declarations: then the children
 * are in the same namespace context and can be compared byte for byte. */
static bool elem_compatible(const struct xml_scan *o, uint32_t oe, const struct xml_scan *n, uint32_t ne)
{
	const struct xml_scan_elem *a = &o->elems[oe], *b = &n->elems[ne];
	size_t al, bl, ad = 0, bd = 0;
	const char *an = xml_scan_elem_local(o, oe, &al), *bn = xml_scan_elem_local(n, ne, &bl);

	if (!a->ns || !b->ns || strcmp(a->ns, b->ns) != 0 || al != bl || memcmp(an, bn, al) != 0)
		return false;
	for (uint32_t i = 0; i < b->attr_count; i++)
		bd += n->attrs[b->attr_first + i].is_xmlns;
	for (uint32_t i = 0; i < a->attr_count; i++) {
		const struct xml_scan_attr *x = &o->attrs[a->attr_first + i];
		bool is_found = false;

		if (!x->is_xmlns)
			continue;
		ad++;
		for (uint32_t j = 0; j < b->attr_count && !is_found; j++) {
			const struct xml_scan_attr *y = &n->attrs[b->attr_first + j];

			is_found = y->is_xmlns && x->name_len == y->name_len &&
				   memcmp(o->data + x->name_off, n->data + y->name_off, x->name_len) == 0 &&
				   strcmp(x->ns, y->ns) == 0;
		}
		if (!is_found)
			return false;
	}
	return ad == bd;
}

/* The attribute values are equal once decoded. */
static bool value_equal(const struct xml_scan *o, uint32_t a, const struct xml_scan *n, uint32_t b)
{
	const struct xml_scan_attr *x = &o->attrs[a], *y = &n->attrs[b];
	struct buf v;
	bool is_equal;

	if (x->value_len == y->value_len && memcmp(o->data + x->value_off, n->data + y->value_off, x->value_len) == 0)
		return true;
	buf_init(&v, y->value_len + 1);
	is_equal = xml_attvalue_decode(n->data + y->value_off, y->value_len, &v) == XDMS_ERR_OK &&
		   xml_attvalue_equal(o->data + x->value_off, x->value_len, v.data ? v.data : "", v.len);
	buf_cleanup(&v);
	return is_equal;
}

static enum xdms_err diff_children(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
				   const struct xml_scan *n, uint32_t ne);

/* Attributes of @oe -> @ne (compatible elements at @path), then children. */
static enum xdms_err diff_elem(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
			       const struct xml_scan *n, uint32_t ne)
{
	const struct xml_scan_elem *a = &o->elems[oe], *b = &n->elems[ne];
	enum xdms_err err = XDMS_ERR_OK;

	for (uint32_t i = 0; i < a->attr_count && !err; i++) {
		uint32_t k = a->attr_first + i, m;
		const struct xml_scan_attr *at = &o->attrs[k];
		size_t skip = at->prefix_len ? at->prefix_len + 1 : 0;
		struct path p;

		if (at->is_xmlns)
			continue;
		if (!at->ns)
			return XDMS_ERR_UNSUPPORTED;
		m = xml_scan_attr_find(n, ne, at->ns, o->data + at->name_off + skip, at->name_len - skip);
		if (m != XML_SCAN_NONE && value_equal(o, k, n, m))
			continue;
		path_copy(&p, path);
		path_add_attr(d, &p, o, k);
		if (m == XML_SCAN_NONE) {
			err = op_open(d, "remove", &p, NULL, false);
		} else {
			err = op_open(d, "replace", &p, NULL, true);
			if (!err)
				err = append_value_text(d->out, n->data + n->attrs[m].value_off, n->attrs[m].value_len);
			if (!err)
				err = op_close(d, "replace");
		}
		path_cleanup(&p);
	}
	for (uint32_t i = 0; i < b->attr_count && !err; i++) {
		uint32_t k = b->attr_first + i;
		const struct xml_scan_attr *at = &n->attrs[k];
		size_t skip = at->prefix_len ? at->prefix_len + 1 : 0;
		struct path p;
		char *type;

		if (at->is_xmlns)
			continue;
		if (!at->ns)
			return XDMS_ERR_UNSUPPORTED;
		if (xml_scan_attr_find(o, oe, at->ns, n->data + at->name_off + skip, at->name_len - skip) !=
		    XML_SCAN_NONE)
			continue;
		path_copy(&p, path);
		type = type_attr(d, &p, n, k);
		err = op_open(d, "add", &p, type, true);
		free(type);
		if (!err)
			err = append_value_text(d->out, n->data + at->value_off, at->value_len);
		if (!err)
			err = op_close(d, "add");
		path_cleanup(&p);
	}
	if (!err)
		err = diff_children(d, path, o, oe, n, ne);
	return err;
}

/* One pair of units, old unit @uo becoming new unit @un, at state *st
 * (old [0, uo's node] and new [un's node + 1, end) are current). */
static enum xdms_err unit_pair(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
			       const struct unit *uo, const struct unit *un)
{
	const struct xml_scan *o = sd[0].s, *n = sd[1].s;
	const struct child *co = &sd[0].ch.v[uo->node], *cn = &sd[1].ch.v[un->node];
	enum xdms_err err = XDMS_ERR_OK;

	if (!child_equal(sd, uo->node, un->node)) {
		if (co->kind == CHILD_ELEM && cn->kind == CHILD_ELEM && elem_compatible(o, co->elem, n, cn->elem)) {
			struct path p;

			path_copy(&p, path);
			err = path_add_child(d, &p, sd, *st, false, uo->node);
			if (!err)
				err = diff_elem(d, &p, o, co->elem, n, cn->elem);
			path_cleanup(&p);
		} else if (co->kind == cn->kind) {
			err = child_op(d, path, sd, *st, false, uo->node, "replace", NULL, un->node, un->node + 1,
				       true);
		} else {
			/* RFC 5261 §4.4 replaces a node only by one of its kind: add
			 * the new one before, remove the old one. Kinds differ, so
			 * the old one keeps its position. */
			err = child_op(d, path, sd, *st, false, uo->node, "add", " pos=\"before\"", un->node,
				       un->node + 1, true);
			if (!err)
				err = child_op(d, path, sd, *st, false, uo->node, "remove", NULL, 0, 0, false);
		}
		if (err)
			return err;
	}
	st->x = uo->node;
	st->y = un->node;
	if (!child_equal(sd, uo->text, un->text)) {
		if (uo->text != DIFF_NONE && un->text != DIFF_NONE)
			err = child_op(d, path, sd, *st, false, uo->text, "replace", NULL, un->text, un->text + 1,
				       true);
		else if (uo->text != DIFF_NONE)
			err = child_op(d, path, sd, *st, false, uo->text, "remove", NULL, 0, 0, false);
		else
			err = child_op(d, path, sd, *st, true, un->node, "add", " pos=\"before\"", un->text,
				       un->text + 1, true);
	}
	st->x = unit_start(uo);
	st->y = unit_start(un);
	return err;
}

/* Old units [oa, ob) becoming new units [na, nb), in order and pairwise;
 * the surplus on either side is removed or added. */
static enum xdms_err unit_gap(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
			      size_t oa, size_t ob, size_t na, size_t nb)
{
	size_t a = ob - oa, b = nb - na, pairs = a < b ? a : b;
	enum xdms_err err = XDMS_ERR_OK;

	if (b > a) {
		size_t from = unit_start(&sd[1].u[na + a]), to = st->y;

		if (st->x > 0)
			err = child_op(d, path, sd, *st, false, st->x - 1, "add", " pos=\"after\"", from, to, true);
		else if (st->y == sd[1].ch.n)
			err = op_nodes(d, "add", path, NULL, sd[1].s, &sd[1].ch, from, to);
		else
			err = op_nodes(d, "add", path, " pos=\"prepend\"", sd[1].s, &sd[1].ch, from, to);
		if (err)
			return err;
		st->y = from;
	}
	for (size_t u = oa + a; u-- > oa + b;) {
		const struct unit *uo = &sd[0].u[u];

		if (uo->text != DIFF_NONE && sd[0].ch.v[uo->text].is_ws && sd[0].ch.v[uo->node].kind == CHILD_ELEM) {
			/* RFC 5261 §4.5: ws="before" takes the white space with it. */
			err = child_op(d, path, sd, *st, false, uo->node, "remove", " ws=\"before\"", 0, 0, false);
		} else {
			if (uo->text != DIFF_NONE)
				err = child_op(d, path, sd, *st, false, uo->text, "remove", NULL, 0, 0, false);
			if (!err)
				err = child_op(d, path, sd, *st, false, uo->node, "remove", NULL, 0, 0, false);
		}
		if (err)
			return err;
		st->x = unit_start(uo);
	}
	for (size_t t = pairs; t-- > 0 && !err;)
		err = unit_pair(d, path, sd, st, &sd[0].u[oa + t], &sd[1].u[na + t]);
	return err;
}

/* Units whose nodes are of one kind and, for elements, one expanded name:
 * the candidates for being the same child in both versions. */
static bool unit_same_key(const struct side *sd, const struct unit *uo, const struct unit *un)
{
	const struct child *co = &sd[0].ch.v[uo->node], *cn = &sd[1].ch.v[un->node];
	const struct xml_scan_elem *a, *b;
	size_t al, bl;
	const char *an, *bn;

	if (co->kind != cn->kind)
		return false;
	if (co->kind != CHILD_ELEM)
		return true;
	a = &sd[0].s->elems[co->elem];
	b = &sd[1].s->elems[cn->elem];
	an = xml_scan_elem_local(sd[0].s, co->elem, &al);
	bn = xml_scan_elem_local(sd[1].s, cn->elem, &bl);
	return a->ns && b->ns && strcmp(a->ns, b->ns) == 0 && al == bl && memcmp(an, bn, al) == 0;
}

/* How good a match two units of the same key are: identical, the same start
 * tag (the same entry, changed inside), or only the same name. */
static uint32_t unit_weight(const struct unit *uo, const struct unit *un)
{
	if (uo->hash == un->hash)
		return 4;
	return uo->tag_hash && uo->tag_hash == un->tag_hash ? 2 : 1;
}

/* Above this many cells the LCS table is not built. */
#define LCS_MAX_CELLS (1u << 20)

struct anchor_key {
	uint64_t hash;
	int side;
	size_t unit;
};

static int anchor_key_cmp(const void *a, const void *b)
{
	const struct anchor_key *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->side != y->side)
		return x->side - y->side;
	return x->unit < y->unit ? -1 : x->unit > y->unit;
}

struct anchor {
	size_t o, n;
};

static int anchor_cmp(const void *a, const void *b)
{
	const struct anchor *x = a, *y = b;

	return x->o < y->o ? -1 : x->o > y->o;
}

/*
 * For a middle too large for the LCS table: anchors are the units that
 * occur exactly once on each side, identical, and in the same order
 * (patience diff: the longest increasing run of their new positions, by
 * patience sorting). O(n log n). Fills match_o/match_n (capacity min(a, b))
 * in ascending order; returns how many.
 */
static size_t patience_anchors(const struct side *sd, size_t io, size_t a, size_t in, size_t b, size_t *match_o,
			       size_t *match_n)
{
	struct anchor_key *k = xcalloc(a + b, sizeof(*k));
	struct anchor *p = xcalloc(a < b ? a : b, sizeof(*p));
	size_t *tails, *prev, np = 0, len = 0;

	for (size_t i = 0; i < a; i++)
		k[i] = (struct anchor_key){ sd[0].u[io + i].hash, 0, io + i };
	for (size_t i = 0; i < b; i++)
		k[a + i] = (struct anchor_key){ sd[1].u[in + i].hash, 1, in + i };
	qsort(k, a + b, sizeof(*k), anchor_key_cmp);
	/* Runs of one hash made of exactly one old and one new unit. */
	for (size_t i = 0, j; i < a + b; i = j) {
		for (j = i; j < a + b && k[j].hash == k[i].hash;)
			j++;
		if (j - i == 2 && k[i].side == 0 && k[i + 1].side == 1 &&
		    unit_equal(sd, &sd[0].u[k[i].unit], &sd[1].u[k[i + 1].unit]))
			p[np++] = (struct anchor){ k[i].unit, k[i + 1].unit };
	}
	free(k);
	qsort(p, np, sizeof(*p), anchor_cmp);
	/* The longest increasing subsequence of the new positions. */
	tails = xcalloc(np + 1, sizeof(*tails));
	prev = xcalloc(np + 1, sizeof(*prev));
	for (size_t i = 0; i < np; i++) {
		size_t lo = 0, hi = len;

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (p[tails[mid]].n < p[i].n)
				lo = mid + 1;
			else
				hi = mid;
		}
		prev[i] = lo ? tails[lo - 1] : DIFF_NONE;
		tails[lo] = i;
		if (lo == len)
			len++;
	}
	for (size_t i = len ? tails[len - 1] : DIFF_NONE, at = len; i != DIFF_NONE; i = prev[i]) {
		at--;
		match_o[at] = p[i].o;
		match_n[at] = p[i].n;
	}
	free(tails);
	free(prev);
	free(p);
	return len;
}

/*
 * Old units [io, io + a) and new units [in, in + b) (the part between the
 * common head and tail). Anchors: the longest common subsequence of units
 * with the same key, weighted by unit_weight(), so that a child
 * removed here and another added there do not turn every child in between
 * into a replacement; for a middle too large for that table, the units that
 * are unique and identical on both sides (patience diff), and the gaps
 * between them are middles again (without a second patience pass). Between
 * anchors, unit_gap(). Right to left, like all else.
 */
static enum xdms_err diff_middle(struct differ *d, const struct path *path, const struct side *sd, struct state *st,
				 size_t io, size_t a, size_t in, size_t b, bool is_patience_allowed)
{
	uint32_t *lcs = NULL;
	size_t *match_o = NULL, *match_n = NULL, m = 0, oi, ni;
	enum xdms_err err = XDMS_ERR_OK;

	if (!a || !b)
		return unit_gap(d, path, sd, st, io, io + a, in, in + b);
	if ((a + 1) > LCS_MAX_CELLS / (b + 1)) {
		if (!is_patience_allowed)
			return unit_gap(d, path, sd, st, io, io + a, in, in + b);
		match_o = xcalloc(a < b ? a : b, sizeof(*match_o));
		match_n = xcalloc(a < b ? a : b, sizeof(*match_n));
		m = patience_anchors(sd, io, a, in, b, match_o, match_n);
		oi = io + a;
		ni = in + b;
		for (size_t k = m; k-- > 0 && !err;) {
			err = diff_middle(d, path, sd, st, match_o[k] + 1, oi - match_o[k] - 1, match_n[k] + 1,
					  ni - match_n[k] - 1, false);
			if (!err)
				err = unit_pair(d, path, sd, st, &sd[0].u[match_o[k]], &sd[1].u[match_n[k]]);
			oi = match_o[k];
			ni = match_n[k];
		}
		if (!err)
			err = diff_middle(d, path, sd, st, io, oi - io, in, ni - in, false);
		free(match_o);
		free(match_n);
		return err;
	}
	/* lcs[r * (b + 1) + c]: best weight of old [r, a) against new [c, b). */
	lcs = xcalloc((a + 1) * (b + 1), sizeof(*lcs));
	for (size_t r = a; r-- > 0;)
		for (size_t c = b; c-- > 0;) {
			uint32_t best = lcs[(r + 1) * (b + 1) + c], right = lcs[r * (b + 1) + c + 1];
			const struct unit *uo = &sd[0].u[io + r], *un = &sd[1].u[in + c];

			if (right > best)
				best = right;
			if (unit_same_key(sd, uo, un)) {
				uint32_t diag = lcs[(r + 1) * (b + 1) + c + 1] + unit_weight(uo, un);

				if (diag > best)
					best = diag;
			}
			lcs[r * (b + 1) + c] = best;
		}
	match_o = xcalloc(a < b ? a : b, sizeof(*match_o));
	match_n = xcalloc(a < b ? a : b, sizeof(*match_n));
	for (size_t r = 0, c = 0; r < a && c < b;) {
		const struct unit *uo = &sd[0].u[io + r], *un = &sd[1].u[in + c];
		uint32_t here = lcs[r * (b + 1) + c], w = unit_weight(uo, un);

		if (unit_same_key(sd, uo, un) && here == lcs[(r + 1) * (b + 1) + c + 1] + w) {
			match_o[m] = io + r++;
			match_n[m++] = in + c++;
		} else if (here == lcs[(r + 1) * (b + 1) + c]) {
			r++;
		} else {
			c++;
		}
	}
	/* Free the table before recursing: it must not pile up level by level. */
	free(lcs);
	lcs = NULL;
	oi = io + a;
	ni = in + b;
	for (size_t k = m; k-- > 0 && !err;) {
		err = unit_gap(d, path, sd, st, match_o[k] + 1, oi, match_n[k] + 1, ni);
		if (!err)
			err = unit_pair(d, path, sd, st, &sd[0].u[match_o[k]], &sd[1].u[match_n[k]]);
		oi = match_o[k];
		ni = match_n[k];
	}
	if (!err)
		err = unit_gap(d, path, sd, st, io, oi, in, ni);
	free(lcs);
	free(match_o);
	free(match_n);
	return err;
}

static enum xdms_err diff_children(struct differ *d, const struct path *path, const struct xml_scan *o, uint32_t oe,
				   const struct xml_scan *n, uint32_t ne)
{
	struct side sd[2];
	struct state st;
	size_t i = 0, j = 0;
	enum xdms_err err;

	memset(sd, 0, sizeof(sd));
	sd[0].s = o;
	sd[0].elem = oe;
	sd[1].s = n;
	sd[1].elem = ne;
	err = sides_build(sd);
	if (err)
		goto out;
	st.x = sd[0].ch.n;
	st.y = sd[1].ch.n;

	/* The trailing text first: it is the rightmost child. */
	if (!child_equal(sd, sd[0].tail, sd[1].tail)) {
		if (sd[0].tail != DIFF_NONE && sd[1].tail != DIFF_NONE) {
			err = child_op(d, path, sd, st, false, sd[0].tail, "replace", NULL, sd[1].tail, sd[1].tail + 1,
				       true);
			st.x--;
			st.y--;
		} else if (sd[0].tail != DIFF_NONE) {
			err = child_op(d, path, sd, st, false, sd[0].tail, "remove", NULL, 0, 0, false);
			st.x--;
		} else {
			/* Appended as the last child (RFC 5261 §4.3, no pos). */
			err = op_nodes(d, "add", path, NULL, n, &sd[1].ch, sd[1].tail, sd[1].tail + 1);
			st.y--;
		}
		if (err)
			goto out;
	} else if (sd[0].tail != DIFF_NONE) {
		st.x--;
		st.y--;
	}
	while (j < sd[0].un && j < sd[1].un && unit_equal(sd, &sd[0].u[sd[0].un - 1 - j], &sd[1].u[sd[1].un - 1 - j]))
		j++;
	if (j) {
		st.x = unit_start(&sd[0].u[sd[0].un - j]);
		st.y = unit_start(&sd[1].u[sd[1].un - j]);
	}
	while (i < sd[0].un - j && i < sd[1].un - j && unit_equal(sd, &sd[0].u[i], &sd[1].u[i]))
		i++;
	err = diff_middle(d, path, sd, &st, i, sd[0].un - j - i, i, sd[1].un - j - i, true);
out:
	side_cleanup(&sd[0]);
	side_cleanup(&sd[1]);
	return err;
}

enum xdms_err topdown_patch(struct differ *d, const struct xml_scan *o, const struct xml_scan *n)
{
	struct path p;
	enum xdms_err err;

	/* Comments and PIs outside the root, a renamed root or changed
	 * declarations on it: no operation sequence short of replacing the
	 * document expresses these. */
	if (!misc_equal(o, n) || !elem_compatible(o, 0, n, 0))
		return XDMS_ERR_UNSUPPORTED;
	path_init(&p, d->path_max);
	err = path_add_step(d, &p, o, 0, 1, 1);
	if (!err)
		err = diff_elem(d, &p, o, 0, n, 0);
	path_cleanup(&p);
	return err;
}
