/* SPDX-License-Identifier: MIT */
/*
 * ctl: xdmsctl's commands that live outside xdmsctl.c: backups and restores
 * (backup.c), and those that reach beyond one data directory (DESIGN.md §6,
 * a deployment with one xdmsd per shard of users: shard.c, move.c).
 *
 * Each command parses its own arguments (the words after its name), prints
 * what it did on stdout and any failure on stderr, and returns xdmsctl's exit
 * code: 0 success, 1 the operation failed (at least partly), 2 bad usage.
 * They run on the main thread of xdmsctl and keep no state between calls.
 */
#ifndef XDMS_CTL_H
#define XDMS_CTL_H

#include "base/err.h"
#include "conf/conf.h"
#include "store/store.h"
#include "xcap/xcap.h"

#define CTL_EXIT_FAIL 1
#define CTL_EXIT_USAGE 2

/*
 * Run as root, xdmsctl acts as the service user (configure
 * --with-service-user) when that user owns the data directory, so that files
 * it creates there stay usable by the server. Does nothing when not root,
 * when the directory does not exist, or when root owns it. Returns false
 * (after printing why) when another account owns the directory (root must not
 * hand the store to it) or switching user failed.
 */
bool ctl_become_store_owner(const char *store_path);

/* `xdmsctl backup DIR`: a consistent compacted copy of the store (and the IWF
 * key, when it lives in the data directory) in the new or empty DIR, taken
 * while the server runs. Returns an exit code. */
int ctl_backup(const struct conf *c, const char *dir);

/* `xdmsctl restore DIR`: a backup made by ctl_backup() into the empty or
 * missing data directory (root makes it for the service user), with a new
 * ETag instance id. Returns an exit code. */
int ctl_restore(const struct conf *c, const char *dir);

/* The XCAP write path over an open store, for xdmsctl's admin writes (admin.c). */
struct ctl_writer {
	struct xcap_registry *reg;
	struct xcap *x; /* NULL when opened without a store (the registry alone) */
};

/* Loads the application usages and, when @st is not NULL, sets up the write
 * path over it. Returns an exit code (0 success; printed why not). Release
 * with ctl_writer_close() in either case. */
int ctl_writer_open(const struct conf *c, struct store *st, struct ctl_writer *wr);
void ctl_writer_close(struct ctl_writer *wr);

/*
 * PUTs @body (@len bytes; with the usage's MIME type) or, when @body is NULL,
 * DELETEs the document @uri names, as an administrator, through the same
 * path as an XCAP request. @keep_etag (PUT only; NULL for a fresh one) and
 * @is_move serve a user's move between shards. The answer is in @resp,
 * initialized by the caller.
 */
void ctl_admin_write(struct ctl_writer *wr, const struct xcap_uri *uri, const char *body, size_t len,
		     const char *keep_etag, bool is_move, struct xcap_response *resp);

/*
 * Opens the store of @c's data directory (store.path and the store.*
 * limits), as xdmsd does; on failure prints why and returns the error.
 * *st is released with store_close().
 */
enum xdms_err ctl_store_open(const struct conf *c, struct store **st) XDMS_WUR;

/*
 * global put SELECTOR FILE | global del SELECTOR | global push [PREFIX],
 * each with one or more --shard URL (an XCAP root: http://host:port/xcap-root)
 * and optionally --identity ID (sent as X-3GPP-Asserted-Identity, for a shard
 * that trusts the caller's address) or --user NAME:PASSWORD (HTTP Digest).
 * Writes a global document (push: every global document under PREFIX in the
 * local data directory) to every shard with an XCAP PUT or DELETE, one
 * request per shard, and reports each shard's answer. Returns 1 when any
 * shard did not take any write; the others keep theirs (the admin runs the
 * command again once the shard is back: the writes are idempotent).
 */
int ctl_global(const struct conf *c, char **av, int n);

/*
 * Moving a user to another shard (ctl/move.c has the procedure).
 * ctl_user_export freezes @xui in this data directory (its documents become
 * read-only: writes get 503) and writes its bundle to @path ("-" = stdout;
 * an existing file is not overwritten); a failed export thaws it again.
 * ctl_user_import stores a bundle: the user, its documents with their
 * ETags, its secrets and unfinished IWF jobs; it is idempotent.
 * ctl_user_purge removes a frozen (exported) user and everything of it from
 * this data directory and ends the freeze; ctl_user_thaw ends the freeze
 * and keeps the user (a move called off).
 */
int ctl_user_export(const struct conf *c, const char *xui, const char *path);
int ctl_user_import(const struct conf *c, const char *path);
int ctl_user_purge(const struct conf *c, const char *xui);
int ctl_user_thaw(const struct conf *c, const char *xui);

#endif
