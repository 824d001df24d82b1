/* SPDX-License-Identifier: MIT */
/*
 * Error log. Each line is "<ISO time> <level> <message>\n", formatted into a
 * stack buffer and written with one fwrite under the stream lock so that
 * lines from the HTTP pool, the store writer and other threads stay whole.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "base/log.h"

enum log_level log_current_level = LOG_LEVEL_INFO;
static FILE *log_stream;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *name, enum log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

void log_set_stream(FILE *f)
{
	log_stream = f;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	char line[2048];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int m;
	va_list ap;
	FILE *f = log_stream ? log_stream : stderr;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	m = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s ", (long)(tv.tv_usec / 1000),
		     level_names[level]);
	if (m > 0)
		n += (size_t)m;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (m > 0)
		n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	flockfile(f);
	fwrite(line, 1, n, f);
	fflush(f);
	funlockfile(f);
}
