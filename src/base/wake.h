/* SPDX-License-Identifier: MIT */
/*
 * An eventfd as a thread's wake-up (see wake.c): other threads add to its
 * counter, the woken thread drains it and then looks at what it was woken
 * for (a queue under its own lock). Any thread.
 */
#ifndef XDMS_BASE_WAKE_H
#define XDMS_BASE_WAKE_H

/* A non-blocking, close-on-exec eventfd at 0; -1 with errno. */
int wake_open(void);
/* Adds 1 to @fd's counter: the thread polling it wakes. A failure is logged
 * with @who ("http: a daemon's loop"). EAGAIN is not one: the counter is
 * only full after 2^64-2 unread wake-ups, and then the thread is awake. */
void wake_signal(int fd, const char *who);
/* Sets @fd's counter back to 0 (nothing to read is not a failure). */
void wake_drain(int fd, const char *who);

#endif
