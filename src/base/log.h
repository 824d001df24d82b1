/* SPDX-License-Identifier: MIT */
/*
 * Levelled logging for the edges of the program (http, sip, iwf, mains).
 * Pure modules never log: they return codes. The macros test the level
 * before evaluating their arguments. Output goes to one stream (stderr by
 * default), one line per call, written with a single write so lines from
 * different threads never interleave.
 */
#ifndef XDMS_BASE_LOG_H
#define XDMS_BASE_LOG_H

#include <stdio.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

extern enum log_level log_current_level;

/* Parses "error", "warn", "info" or "debug". Returns 0 on success, -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);
/* Sets the stream the error log goes to. @f stays owned by the caller. */
void log_set_stream(FILE *f);
void log_write(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define LOG_AT(level, ...)                                      \
	do {                                                    \
		if ((level) <= log_current_level)               \
			log_write((level), __VA_ARGS__);        \
	} while (0)
#define log_error(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
