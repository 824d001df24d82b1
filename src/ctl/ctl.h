/* SPDX-License-Identifier: MIT */
/* xdmsctl's commands that live outside xdmsctl.c (see each file). */
#ifndef XDMS_CTL_H
#define XDMS_CTL_H

#include "conf/conf.h"

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

#endif
