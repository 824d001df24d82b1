/* SPDX-License-Identifier: MIT */
/*
 * Millisecond clocks (see clock.c). Each caller chooses on purpose:
 *   wall_ms()       CLOCK_REALTIME: times that are stored, compared across
 *                   restarts or shown (job times, change times, the expiry
 *                   of a persisted subscription). It can jump.
 *   monotonic_ms()  CLOCK_MONOTONIC: intervals and timers inside one process
 *                   (the SIP loop's timers, idle connections). Never jumps;
 *                   meaningless outside the process.
 * Any thread.
 */
#ifndef XDMS_BASE_CLOCK_H
#define XDMS_BASE_CLOCK_H

#include <stdint.h>

/* Milliseconds since the Unix epoch. */
uint64_t wall_ms(void);

/* Milliseconds since an arbitrary, fixed point (boot, usually). */
uint64_t monotonic_ms(void);

#endif
