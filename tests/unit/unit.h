/* SPDX-License-Identifier: MIT */
/* Shared by the Check unit-test programs: runs a suite and reports failures. */
#ifndef XDMS_TESTS_UNIT_H
#define XDMS_TESTS_UNIT_H

#include <check.h>

/*
 * Runs every test of @s, in a child process each (CK_FORK) unless the
 * program needs its tests to share state (CK_NOFORK); CK_FORK=no in the
 * environment overrides either (for valgrind). Returns the number of failed
 * tests.
 */
static inline int unit_run(Suite *s, enum fork_status mode)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, mode == CK_FORK ? CK_FORK_GETENV : mode);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed;
}

#endif
