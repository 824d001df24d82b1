/* SPDX-License-Identifier: MIT */
/*
 * powercut_shim.c: loaded into xdmsd with LD_PRELOAD by test_powercut.py.
 *
 * It records, in order, every write to data.mdb and data.wal of the data
 * directory named by XDMS_PC_DIR and every flush of them, in the journal
 * file XDMS_PC_JOURNAL, so that the test can build what a disk could hold
 * after a power cut at the moment xdmsd was killed: what was flushed, plus
 * any part of what was not. The writes themselves go through unchanged.
 *
 * Journal records: a 32-byte head (magic "XPCJ", type, file, 0, offset,
 * length or a flush's id) then, for a write, its bytes. Types: 1 write,
 * 2 write on a file opened O_DSYNC (durable when it returns), 3 flush
 * started, 4 flush returned (both with the flush's id: process id and
 * count), 5 size set (ftruncate). Files: 1 data.mdb, 2 data.wal. Several
 * processes (xdmsd, xdmsctl) may share one journal: each record is one
 * append. A write's record follows the write and a flush's start record
 * precedes the flush, so a write recorded before a flush's start is one
 * that flush covers. A record cut short by the kill is dropped by the
 * reader.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_FD 4096

enum { REC_WRITE = 1, REC_WRITE_DSYNC = 2, REC_SYNC_BEGIN = 3, REC_SYNC_END = 4, REC_SIZE = 5 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char fd_file[MAX_FD]; /* 0: not watched, else 1 or 2 */
static unsigned char fd_dsync[MAX_FD];
static int journal = -1;
static uint64_t seq; /* flushes started by this process */
static char dir[4096];
static int is_ready;
static int has_meta_write;   /* a write to data.mdb's first two pages was seen */
static int has_header_write; /* a write to the start of data.wal was seen */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_ftruncate)(int, off_t);

static void init(void)
{
	const char *d, *j;

	if (is_ready)
		return;
	real_write = dlsym(RTLD_NEXT, "write");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite64");
	real_writev = dlsym(RTLD_NEXT, "writev");
	real_pwritev = dlsym(RTLD_NEXT, "pwritev64");
	real_open = dlsym(RTLD_NEXT, "open64");
	real_openat = dlsym(RTLD_NEXT, "openat64");
	real_close = dlsym(RTLD_NEXT, "close");
	real_fsync = dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real_ftruncate = dlsym(RTLD_NEXT, "ftruncate64");
	d = getenv("XDMS_PC_DIR");
	j = getenv("XDMS_PC_JOURNAL");
	if (d && j) {
		strncpy(dir, d, sizeof(dir) - 1);
		journal = real_open(j, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	}
	is_ready = 1;
}

/* Caller holds the lock. One writev, so that the record of one process
 * never interleaves with another's in the shared journal (O_APPEND). */
static void put_rec(unsigned type, unsigned file, uint64_t off, const void *data, size_t len, uint64_t ref)
{
	unsigned char h[32];
	uint32_t t = type, f = file, z = 0;
	uint64_t l = len;
	struct iovec v[2];

	memcpy(h, "XPCJ", 4);
	memcpy(h + 4, &t, 4);
	memcpy(h + 8, &f, 4);
	memcpy(h + 12, &z, 4);
	memcpy(h + 16, &off, 8);
	if (type == REC_SYNC_BEGIN || type == REC_SYNC_END || type == REC_SIZE)
		l = ref;
	memcpy(h + 24, &l, 8);
	v[0].iov_base = h;
	v[0].iov_len = sizeof(h);
	v[1].iov_base = (void *)data;
	v[1].iov_len = data ? len : 0;
	(void)real_writev(journal, v, 2);
}

static unsigned file_of_path(int dirfd, const char *path)
{
	char full[8192];
	const char *base;
	size_t n;

	if (journal < 0 || !path)
		return 0;
	if (path[0] != '/') {
		if (dirfd != AT_FDCWD)
			return 0;
		if (!getcwd(full, sizeof(full) - strlen(path) - 2))
			return 0;
		strcat(full, "/");
		strcat(full, path);
		path = full;
	}
	base = strrchr(path, '/');
	n = (size_t)(base - path);
	if (n != strlen(dir) || strncmp(path, dir, n))
		return 0;
	if (!strcmp(base + 1, "data.mdb"))
		return 1;
	if (!strcmp(base + 1, "data.wal"))
		return 2;
	return 0;
}

static int watch(int fd, unsigned file, int flags)
{
	if (fd >= 0 && fd < MAX_FD) {
		fd_file[fd] = (unsigned char)file;
		fd_dsync[fd] = (flags & (O_DSYNC | O_SYNC)) ? 1 : 0;
	}
	return fd;
}

static int watched(int fd)
{
	return fd >= 0 && fd < MAX_FD && fd_file[fd];
}

/* The mode argument of a variadic open: only there with these flags. */
#define MODE_OF(flags, mode)                                     \
	do {                                                     \
		if ((flags) & (O_CREAT | O_TMPFILE)) {           \
			va_list ap;                              \
			va_start(ap, flags);                     \
			(mode) = (mode_t)va_arg(ap, int);        \
			va_end(ap);                              \
		}                                                \
	} while (0)

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	init();
	MODE_OF(flags, mode);
	return watch(real_open(path, flags, mode), file_of_path(AT_FDCWD, path), flags);
}

int open(const char *path, int flags, ...) __attribute__((alias("open64")));

int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;

	init();
	MODE_OF(flags, mode);
	return watch(real_openat(dirfd, path, flags, mode), file_of_path(dirfd, path), flags);
}

int openat(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat64")));

int close(int fd)
{
	init();
	if (fd >= 0 && fd < MAX_FD)
		fd_file[fd] = 0;
	return real_close(fd);
}

static void note_write(int fd, off_t at, const struct iovec *iov, int n, ssize_t done)
{
	size_t left = (size_t)done;

	if (fd_file[fd] == 1 && at < 8192)
		has_meta_write = 1;
	if (fd_file[fd] == 2 && at == 0)
		has_header_write = 1;
	for (int i = 0; i < n && left; i++) {
		size_t len = iov[i].iov_len < left ? iov[i].iov_len : left;

		put_rec(fd_dsync[fd] ? REC_WRITE_DSYNC : REC_WRITE, fd_file[fd], (uint64_t)at, iov[i].iov_base, len, 0);
		at += (off_t)len;
		left -= len;
	}
}

/* The write of @iov to the watched @fd, at @at or, when @at is -1, at the
 * file's offset, recorded in the order the writes happened. */
static ssize_t recorded(int fd, const struct iovec *iov, int n, off_t at)
{
	ssize_t rc;

	pthread_mutex_lock(&lock);
	if (at < 0) {
		at = lseek(fd, 0, SEEK_CUR);
		rc = real_writev(fd, iov, n);
	} else {
		rc = real_pwritev(fd, iov, n, at);
	}
	if (rc > 0)
		note_write(fd, at, iov, n, rc);
	pthread_mutex_unlock(&lock);
	return rc;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t at)
{
	struct iovec v = { (void *)buf, len };

	init();
	return watched(fd) ? recorded(fd, &v, 1, at) : real_pwrite(fd, buf, len, at);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t at) __attribute__((alias("pwrite64")));

ssize_t pwritev64(int fd, const struct iovec *iov, int n, off_t at)
{
	init();
	return watched(fd) ? recorded(fd, iov, n, at) : real_pwritev(fd, iov, n, at);
}

ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t at) __attribute__((alias("pwritev64")));

ssize_t write(int fd, const void *buf, size_t len)
{
	struct iovec v = { (void *)buf, len };

	init();
	return watched(fd) ? recorded(fd, &v, 1, -1) : real_write(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	init();
	return watched(fd) ? recorded(fd, iov, n, -1) : real_writev(fd, iov, n);
}

/* XDMS_PC_PAUSE=PATH: at the first flush of data.mdb after this process
 * wrote to its first two pages (LMDB's meta pages: a commit, or a
 * recovery's restored checkpoint, has just been written), or with
 * XDMS_PC_PAUSE_ON=header at the first flush of data.wal after a write to
 * its start (a checkpoint's header), create PATH and wait, up to a minute,
 * until somebody removes it. Once per process. */
static void pause_point(int fd)
{
	static int is_done;
	const char *path = getenv("XDMS_PC_PAUSE");
	const char *on = getenv("XDMS_PC_PAUSE_ON");
	int is_header = on && !strcmp(on, "header");
	int fd2;

	if (!path || is_done || fd_file[fd] != (is_header ? 2 : 1) || !(is_header ? has_header_write : has_meta_write))
		return;
	is_done = 1;
	fd2 = real_open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd2 >= 0)
		real_close(fd2);
	for (int i = 0; i < 6000 && access(path, F_OK) == 0; i++)
		usleep(10000);
}

static int flush(int fd, int (*fn)(int))
{
	uint64_t begin;
	int rc;

	init();
	if (!watched(fd))
		return fn(fd);
	pause_point(fd);
	pthread_mutex_lock(&lock);
	begin = ((uint64_t)getpid() << 32) | ++seq;
	put_rec(REC_SYNC_BEGIN, fd_file[fd], 0, NULL, 0, begin);
	pthread_mutex_unlock(&lock);
	rc = fn(fd);
	if (rc == 0) {
		pthread_mutex_lock(&lock);
		put_rec(REC_SYNC_END, fd_file[fd], 0, NULL, 0, begin);
		pthread_mutex_unlock(&lock);
	}
	return rc;
}

int fdatasync(int fd)
{
	init();
	return flush(fd, real_fdatasync);
}

int fsync(int fd)
{
	init();
	return flush(fd, real_fsync);
}

int ftruncate64(int fd, off_t len)
{
	int rc;

	init();
	if (!watched(fd))
		return real_ftruncate(fd, len);
	pthread_mutex_lock(&lock);
	rc = real_ftruncate(fd, len);
	if (rc == 0)
		put_rec(REC_SIZE, fd_file[fd], (uint64_t)len, NULL, 0, 0);
	pthread_mutex_unlock(&lock);
	return rc;
}

int ftruncate(int fd, off_t len) __attribute__((alias("ftruncate64")));
