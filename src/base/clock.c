/* SPDX-License-Identifier: MIT */
/*
 * The two millisecond clocks of clock.h, written once (five copies mixed
 * CLOCK_REALTIME and CLOCK_MONOTONIC under the same name). Any thread.
 */
#include "config.h"

#include <time.h>

#include "base/clock.h"

static uint64_t ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t wall_ms(void)
{
	return ms_of(CLOCK_REALTIME);
}

uint64_t monotonic_ms(void)
{
	return ms_of(CLOCK_MONOTONIC);
}
