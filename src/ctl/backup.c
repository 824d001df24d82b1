/* SPDX-License-Identifier: MIT */
/*
 * xdmsctl backup and restore.
 *
 * A backup directory holds `data.mdb`, LMDB's compacted copy of the store
 * taken in one snapshot while the server keeps writing (store_backup()), and
 * `iwf.key` when the IWF's credential key lives in the data directory (the
 * default): without that key the sealed 3rd-party credentials in the copy
 * could not be opened. Files are written with O_EXCL, flushed, and the
 * directory flushed, before "backup complete" is printed.
 *
 * A restore copies those files into an empty data directory and gives the
 * restored store a new ETag instance id (store_instance_renew()), so the
 * restored server never hands out an ETag that was handed out before.
 *
 * Run as root, xdmsctl works as the data directory's owner (the service user),
 * so the files it creates are the server's. The files on the other side (the
 * backup directory, which may be root's) are opened before switching user.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "base/mem.h"
#include "ctl/ctl.h"
#include "store/store.h"

#define KEY_FILE_MAX 4096 /* the IWF key is 32 bytes; anything far larger is not one */

bool ctl_become_store_owner(const char *store_path)
{
	const struct passwd *pw = NULL;
	struct stat sb;

	if (geteuid() != 0 || stat(store_path, &sb) != 0 || sb.st_uid == 0)
		return true;
#ifdef XDMS_SERVICE_USER
	pw = getpwnam(XDMS_SERVICE_USER);
#endif
	/* Only the service account's directory is trusted: root must not hand
	 * the store (users' Digest hashes, the IWF key) to whoever owns some
	 * directory named on the command line. */
	if (!pw || pw->pw_uid != sb.st_uid) {
		fprintf(stderr,
			"xdmsctl: %s belongs to uid %u, which is not the service user%s%s; run xdmsctl as that "
			"user (for example with runuser -u), not as root\n",
			store_path, (unsigned)sb.st_uid, pw ? " " : "", pw ? pw->pw_name : "");
		return false;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		fprintf(stderr, "xdmsctl: cannot act as %s (uid %u), the owner of %s: %s\n", pw->pw_name,
			(unsigned)pw->pw_uid, store_path, strerror(errno));
		return false;
	}
	return true;
}

/* True when @dir holds an LMDB data file. */
static bool is_store_dir(const char *dir)
{
	char *p = xasprintf("%s/data.mdb", dir);
	struct stat sb;
	bool is_store = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);

	free(p);
	return is_store;
}

/*
 * Root restoring into a data directory that does not exist yet: made by root
 * it would be root's, and a server running as the service user could not open
 * it, so it is made for the service user when the build names one; otherwise
 * (a server that runs as root) it stays root's, and a note says so.
 */
static bool make_store_dir(const char *dir)
{
	const struct passwd *pw = NULL;

#ifdef XDMS_SERVICE_USER
	pw = getpwnam(XDMS_SERVICE_USER);
#endif
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "xdmsctl: cannot create %s: %s\n", dir, strerror(errno));
		return false;
	}
	if (pw && chown(dir, pw->pw_uid, pw->pw_gid) != 0) {
		fprintf(stderr, "xdmsctl: cannot give %s to %s: %s\n", dir, pw->pw_name, strerror(errno));
		return false;
	}
	if (!pw)
		fprintf(stderr, "xdmsctl: note: created %s owned by root; if xdmsd runs as another user, give it "
				"to that user before starting it\n",
			dir);
	return true;
}

/* The IWF key's path: iwf.key_file, or iwf.key in the data directory. */
static char *key_path(const struct conf *c)
{
	return c->iwf_key_file[0] ? xstrdup(c->iwf_key_file) : xasprintf("%s/iwf.key", c->store_path);
}

/* True when @dir is missing (it is then created, mode 0700) or an empty directory. */
static bool dir_ready(const char *dir)
{
	struct stat sb;
	struct dirent *de;
	DIR *d;
	bool is_empty = true;

	if (stat(dir, &sb) != 0) {
		if (errno != ENOENT || mkdir(dir, 0700) != 0) {
			fprintf(stderr, "xdmsctl: cannot create %s: %s\n", dir, strerror(errno));
			return false;
		}
		return true;
	}
	if (!S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "xdmsctl: %s is not a directory\n", dir);
		return false;
	}
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "xdmsctl: cannot read %s: %s\n", dir, strerror(errno));
		return false;
	}
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			is_empty = false;
	closedir(d);
	if (!is_empty)
		fprintf(stderr, "xdmsctl: %s is not empty; choose a new directory\n", dir);
	return is_empty;
}

static int open_new(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		fprintf(stderr, "xdmsctl: cannot create %s: %s\n", path, strerror(errno));
	free(path);
	return fd;
}

/* Copies @in to @out (both open); false after printing why. */
static bool copy_fd(int in, int out, const char *what)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "xdmsctl: cannot read %s: %s\n", what, strerror(errno));
			return false;
		}
		for (ssize_t done = 0; done < n;) {
			ssize_t w = write(out, buf + done, (size_t)(n - done));

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fprintf(stderr, "xdmsctl: cannot write %s: %s\n", what, strerror(errno));
				return false;
			}
			done += w;
		}
	}
	return true;
}

static int open_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "xdmsctl: cannot open %s: %s\n", dir, strerror(errno));
	return fd;
}

/* fsync of the files and of their directory @dfd, so the new names survive a crash. */
static bool flush_all(int fd_data, int fd_key, int dfd, const char *dir)
{
	bool is_ok = fsync(fd_data) == 0 && (fd_key < 0 || fsync(fd_key) == 0) && fsync(dfd) == 0;

	if (!is_ok)
		fprintf(stderr, "xdmsctl: cannot flush %s: %s\n", dir, strerror(errno));
	return is_ok;
}

/* The store, opened as every command opens it but always durable: a
 * restore must be on disk before a server starts on it. */
static struct store *open_store_at(const struct conf *c)
{
	struct conf durable = *c; /* a shallow copy: only store_sync differs; nothing is freed */
	struct store *st = NULL;

	durable.store_sync = true;
	return ctl_store_open(&durable, &st) ? NULL : st;
}

int ctl_backup(const struct conf *c, const char *dir)
{
	char *key = key_path(c);
	char *key_dir = xasprintf("%s/iwf.key", c->store_path);
	bool is_key_inside = !strcmp(key, key_dir);
	struct store *st = NULL;
	int fd_data = -1, fd_key = -1, fd_key_in = -1, dfd = -1;
	int rc = CTL_EXIT_FAIL;
	struct stat sb;
	enum xdms_err err;

	if (stat(c->store_path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		fprintf(stderr, "xdmsctl: no store at %s\n", c->store_path);
		goto out;
	}
	/* A mistyped data directory must not be backed up as a new, empty store. */
	if (!is_store_dir(c->store_path)) {
		fprintf(stderr, "xdmsctl: %s holds no store (no data.mdb); check --data-dir or -c\n", c->store_path);
		goto out;
	}
	if (!dir_ready(dir))
		goto out;
	dfd = open_dir(dir);
	if (dfd < 0)
		goto out;
	fd_data = open_new(dir, "data.mdb");
	if (fd_data < 0)
		goto out;
	if (is_key_inside && access(key, F_OK) == 0) {
		fd_key = open_new(dir, "iwf.key");
		if (fd_key < 0)
			goto out;
	}
	if (!ctl_become_store_owner(c->store_path))
		goto out;
	if (fd_key >= 0) {
		fd_key_in = open(key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd_key_in < 0 || fstat(fd_key_in, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > KEY_FILE_MAX) {
			fprintf(stderr, "xdmsctl: cannot read the IWF key %s\n", key);
			goto out;
		}
	}
	st = open_store_at(c);
	if (!st)
		goto out;
	err = store_backup(st, fd_data);
	if (err) {
		fprintf(stderr, "xdmsctl: backup of %s failed: %s\n", c->store_path, xdms_err_str(err));
		goto out;
	}
	if (fd_key >= 0 && !copy_fd(fd_key_in, fd_key, key))
		goto out;
	if (!flush_all(fd_data, fd_key, dfd, dir))
		goto out;
	printf("backup complete: %s (data.mdb%s)\n", dir, fd_key >= 0 ? ", iwf.key" : "");
	if (!is_key_inside)
		printf("note: the IWF key %s is outside the data directory; back it up separately\n", key);
	rc = 0;
out:
	store_close(st);
	if (fd_data >= 0)
		close(fd_data);
	if (fd_key >= 0)
		close(fd_key);
	if (fd_key_in >= 0)
		close(fd_key_in);
	if (dfd >= 0)
		close(dfd);
	free(key);
	free(key_dir);
	return rc;
}

int ctl_restore(const struct conf *c, const char *dir)
{
	char *src_data = xasprintf("%s/data.mdb", dir);
	char *src_key = xasprintf("%s/iwf.key", dir);
	char *key = key_path(c);
	char *key_dir = xasprintf("%s/iwf.key", c->store_path);
	struct store *st = NULL;
	int in_data = -1, in_key = -1, fd_data = -1, fd_key = -1, dfd = -1;
	int rc = CTL_EXIT_FAIL;
	struct stat sb;
	enum xdms_err err;

	/* Not through a symbolic link, and only regular files: a backup
	 * directory someone else can write to must not become a way to copy
	 * any file root can read into the service's data directory. */
	in_data = open(src_data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in_data < 0 || fstat(in_data, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		fprintf(stderr, "xdmsctl: %s is not a backup: %s is not a regular file%s%s\n", dir, src_data,
			in_data < 0 ? ": " : "", in_data < 0 ? strerror(errno) : "");
		goto out;
	}
	in_key = open(src_key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in_key < 0 && errno != ENOENT) {
		fprintf(stderr, "xdmsctl: cannot open %s: %s\n", src_key, strerror(errno));
		goto out;
	}
	if (in_key >= 0 && (fstat(in_key, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size > KEY_FILE_MAX)) {
		fprintf(stderr, "xdmsctl: %s is not an IWF key\n", src_key);
		goto out;
	}
	if (geteuid() == 0 && stat(c->store_path, &sb) != 0 && !make_store_dir(c->store_path))
		goto out;
	if (in_key >= 0 && strcmp(key, key_dir) != 0) {
		fprintf(stderr, "xdmsctl: the backup holds an IWF key but iwf.key_file names %s; "
				"copy %s there yourself\n", key, src_key);
	}
	if (!ctl_become_store_owner(c->store_path))
		goto out;
	if (!dir_ready(c->store_path))
		goto out;
	dfd = open_dir(c->store_path);
	if (dfd < 0)
		goto out;
	fd_data = open_new(c->store_path, "data.mdb");
	if (fd_data < 0 || !copy_fd(in_data, fd_data, src_data))
		goto out;
	if (in_key >= 0 && !strcmp(key, key_dir)) {
		fd_key = open_new(c->store_path, "iwf.key");
		if (fd_key < 0 || !copy_fd(in_key, fd_key, src_key))
			goto out;
	}
	if (!flush_all(fd_data, fd_key, dfd, c->store_path))
		goto out;
	st = open_store_at(c);
	if (!st)
		goto out;
	err = store_instance_renew(st);
	if (err) {
		fprintf(stderr, "xdmsctl: cannot give the restored store a new instance id: %s\n", xdms_err_str(err));
		goto out;
	}
	printf("restore complete: %s from %s, new ETag instance %08x\n", c->store_path, dir,
	       (unsigned)store_instance_id(st));
	rc = 0;
out:
	store_close(st);
	if (rc && fd_data >= 0) {
		/* Half a restore (or one still under the old instance id) must not be served. */
		static const char *const names[] = { "data.mdb", "lock.mdb", "iwf.key" };

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			char *p = xasprintf("%s/%s", c->store_path, names[i]);

			if (i < 2 || fd_key >= 0)
				(void)unlink(p);
			free(p);
		}
		fprintf(stderr, "xdmsctl: the restore was undone; %s is empty again\n", c->store_path);
	}
	if (in_data >= 0)
		close(in_data);
	if (in_key >= 0)
		close(in_key);
	if (fd_data >= 0)
		close(fd_data);
	if (fd_key >= 0)
		close(fd_key);
	if (dfd >= 0)
		close(dfd);
	free(src_data);
	free(src_key);
	free(key);
	free(key_dir);
	return rc;
}
