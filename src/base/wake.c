/* SPDX-License-Identifier: MIT */
/* Eventfd wake-ups (wake.h). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.h"
#include "base/wake.h"

int wake_open(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void wake_signal(int fd, const char *who)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot wake it: %s", who, strerror(errno));
}

void wake_drain(int fd, const char *who)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot read its wake-ups: %s", who, strerror(errno));
}
