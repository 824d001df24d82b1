/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the shared helpers of src/base: FNV-1a (hash.h), the two
 * millisecond clocks (clock.h), reading a whole file (file.h) and the
 * string map (smap.h).
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/smap.h"
#include "unit.h"

START_TEST(fnv1a_vectors)
{
	/* The published FNV-1a 64-bit test vectors. */
	ck_assert_uint_eq(fnv1a("", 0), 0xcbf29ce484222325ULL);
	ck_assert_uint_eq(fnv1a("a", 1), 0xaf63dc4c8601ec8cULL);
	ck_assert_uint_eq(fnv1a("foobar", 6), 0x85944171f73967e8ULL);
	ck_assert_uint_eq(fnv1a_str("foobar"), 0x85944171f73967e8ULL);
	/* Continuing a hash is hashing the concatenation. */
	ck_assert_uint_eq(fnv1a_add(fnv1a("foo", 3), "bar", 3), fnv1a("foobar", 6));
	ck_assert_uint_eq(fnv1a_add(FNV1A_BASIS, "x", 0), FNV1A_BASIS);
	/* Bytes above 0x7f count as unsigned. */
	ck_assert_uint_ne(fnv1a("\xff", 1), fnv1a("\x7f", 1));
	ck_assert_uint_eq(fnv1a("\xff", 1), (FNV1A_BASIS ^ 0xffu) * FNV1A_PRIME);
}
END_TEST

START_TEST(clocks)
{
	uint64_t wall = wall_ms(), now = (uint64_t)time(NULL) * 1000u;
	uint64_t m1 = monotonic_ms(), m2;
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	/* The wall clock is the epoch's, in milliseconds. */
	ck_assert_msg(wall + 2000 >= now && wall <= now + 2000, "wall_ms %llu, time() %llu",
		      (unsigned long long)wall, (unsigned long long)now);
	nanosleep(&pause, NULL);
	m2 = monotonic_ms();
	ck_assert_msg(m2 >= m1 + 15 && m2 < m1 + 5000, "monotonic %llu then %llu", (unsigned long long)m1,
		      (unsigned long long)m2);
	/* Monotonic time is not the epoch's (it counts from boot on Linux). */
	ck_assert_uint_lt(m2, now / 2);
}
END_TEST

START_TEST(file_reading)
{
	char dir[] = "/tmp/xdms-file-XXXXXX", path[64];
	char *data = NULL, *why = NULL;
	size_t len = 99;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite("hello\0world", 1, 11, f), 11);
	fclose(f);

	ck_assert_int_eq(file_read(path, 11, &data, &len, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(len, 11);
	ck_assert_int_eq(memcmp(data, "hello\0world", 12), 0); /* NUL-terminated */
	ck_assert_ptr_null(why);
	free(data);

	ck_assert_int_eq(file_read(path, 10, &data, &len, &why), XDMS_ERR_TOOBIG);
	ck_assert_ptr_null(data);
	ck_assert_msg(strstr(why, "larger than 10 bytes") && strstr(why, path), "why: %s", why);
	free(why);
	why = NULL;

	/* An open stream, read to its end and left open. */
	f = fopen(path, "rb");
	ck_assert_int_eq(file_read_stream(f, "input", 5, &data, &len, &why), XDMS_ERR_TOOBIG);
	ck_assert_str_eq(why, "input: larger than 5 bytes");
	free(why);
	why = NULL;
	rewind(f);
	ck_assert_int_eq(file_read_stream(f, "input", 11, &data, &len, &why), XDMS_ERR_OK);
	ck_assert_uint_eq(len, 11);
	free(data);
	fclose(f);

	f = fopen(path, "wb");
	fclose(f);
	ck_assert_int_eq(file_read(path, 10, &data, NULL, &why), XDMS_ERR_OK);
	ck_assert_str_eq(data, "");
	free(data);
	unlink(path);

	ck_assert_int_eq(file_read(path, 10, &data, &len, &why), XDMS_ERR_IO);
	ck_assert_ptr_null(data);
	ck_assert_msg(strstr(why, path) && strstr(why, "No such file"), "why: %s", why);
	free(why);
	rmdir(dir);
}
END_TEST

START_TEST(string_map)
{
	struct smap m = { 0 };
	int items[3000], value;
	char key[32];
	struct smap_slot *sl;

	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "key%d", i % 1000);
		smap_add(&m, key, &items[i]);
	}
	smap_add(&m, "key5", &items[5]); /* already there: not twice */
	ck_assert_uint_eq(m.count, 1000);
	ck_assert_uint_eq(smap_get(&m, "key5", false)->n, 3);
	ck_assert_ptr_null(smap_get(&m, "nokey", false));
	for (int i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "key%d", i % 1000);
		smap_remove(&m, key, &items[i]);
	}
	/* Empty slots without a value go away; with a value they stay. */
	ck_assert_uint_eq(m.count, 0);
	sl = smap_get(&m, "v", true);
	sl->val = &value;
	smap_add(&m, "v", &items[0]);
	smap_remove(&m, "v", &items[0]);
	ck_assert_ptr_eq(smap_get(&m, "v", false), sl);
	smap_drop(&m, sl);
	ck_assert_ptr_null(smap_get(&m, "v", false));
	smap_remove(&m, "nokey", &items[0]);
	smap_free(&m);
	ck_assert_uint_eq(m.nb, 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("base_helpers");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, fnv1a_vectors);
	tcase_add_test(tc, clocks);
	tcase_add_test(tc, file_reading);
	tcase_add_test(tc, string_map);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
