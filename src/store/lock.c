/* SPDX-License-Identifier: MIT */
/*
 * The data directory: making sure it is one, and the server's lock on it.
 *
 * One xdmsd per data directory. Two servers on one environment would both
 * serve (LMDB lets them), and both would run the IWF's jobs: a 3rd party
 * would get every export twice. The server therefore takes an exclusive
 * fcntl() lock on the file "xdmsd.lock" in the directory and keeps it for
 * its life; the kernel drops it when the process ends however it ends, so a
 * crash never leaves a stale lock behind. The holder's PID is both written
 * into the file (for people) and reported by F_GETLK (for the message).
 * xdmsctl does not take the lock: it works beside a running server, as LMDB
 * allows.
 *
 * fcntl() locks belong to the process and fall when it closes any
 * descriptor of the file, so only this file opens it, once.
 *
 * Threads: called by the main thread at start-up and exit.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"
#include "store/store.h"

#define STORE_LOCK_FILE "xdmsd.lock"

struct store_lock {
	int fd;
};

enum xdms_err store_dir_prepare(const char *path, char **why)
{
	char *p;
	struct stat sb;
	enum xdms_err err = XDMS_ERR_OK;

	if (!path || !path[0]) {
		*why = xasprintf("no data directory given (store.path)");
		return XDMS_ERR_INVAL;
	}
	p = xstrdup(path);
	/* mkdir -p, mode 0700: the store holds credentials. */
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			*why = xasprintf("data directory %s: cannot create %s: %s", path, p, strerror(errno));
			err = XDMS_ERR_IO;
			goto out;
		}
		*s = '/';
	}
	if (mkdir(p, 0700) && errno != EEXIST) {
		*why = xasprintf("data directory %s: cannot create it: %s", path, strerror(errno));
		err = XDMS_ERR_IO;
		goto out;
	}
	if (stat(p, &sb)) {
		*why = xasprintf("data directory %s: %s", path, strerror(errno));
		err = XDMS_ERR_IO;
	} else if (!S_ISDIR(sb.st_mode)) {
		*why = xasprintf("data directory %s: not a directory", path);
		err = XDMS_ERR_INVAL;
	}
out:
	free(p);
	return err;
}

enum xdms_err store_lock_take(const char *path, struct store_lock **out, char **why)
{
	struct flock fl;
	char *file = NULL;
	char pid[32];
	enum xdms_err err;
	int fd = -1, n;

	*out = NULL;
	err = store_dir_prepare(path, why);
	if (err)
		return err;
	file = xasprintf("%s/%s", path, STORE_LOCK_FILE);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*why = xasprintf("data directory %s: cannot open %s: %s", path, file, strerror(errno));
		err = XDMS_ERR_IO;
		goto out;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl)) {
		int e = errno;

		if (e != EAGAIN && e != EACCES) {
			*why = xasprintf("data directory %s: cannot lock %s: %s", path, file, strerror(e));
			err = XDMS_ERR_IO;
			goto out;
		}
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
			*why = xasprintf("data directory %s is in use by another xdmsd (pid %ld); "
					 "one server per data directory", path, (long)fl.l_pid);
		else
			*why = xasprintf("data directory %s is in use by another xdmsd; one server per data directory",
					 path);
		err = XDMS_ERR_BUSY;
		goto out;
	}
	/* For people and scripts; the lock, not this number, is what counts. */
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, pid, (size_t)n, 0) != n) {
		*why = xasprintf("data directory %s: cannot write %s: %s", path, file, strerror(errno));
		err = XDMS_ERR_IO;
		goto out;
	}
	*out = xcalloc(1, sizeof(**out));
	(*out)->fd = fd;
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(file);
	return err;
}

void store_lock_release(struct store_lock *lk)
{
	if (!lk)
		return;
	/* Closing drops the lock; the file stays, empty of meaning. */
	close(lk->fd);
	free(lk);
}
