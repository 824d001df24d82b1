/* SPDX-License-Identifier: MIT */
/* Unit tests for src/conf: defaults, --set, INI files and their errors. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "unit.h"

START_TEST(defaults)
{
	struct conf c;

	conf_init(&c);
	ck_assert_str_eq(c.http_listen, "127.0.0.1:8080");
	ck_assert_str_eq(c.http_xcap_root, "/xcap-root");
	ck_assert_str_eq(c.store_path, "./var/xdmsd");
	ck_assert(c.store_sync);
	ck_assert_uint_eq(c.auth_digest_algorithms.count, 2);
	/* MD5 first: clients that read only the first challenge know no SHA-256. */
	ck_assert_str_eq(c.auth_digest_algorithms.items[0], "MD5");
	ck_assert_str_eq(c.auth_digest_algorithms.items[1], "SHA-256");
	ck_assert_str_eq(c.auth_realm, "");
	ck_assert(!c.xcap_lenient_content_type);
	ck_assert_uint_eq(c.auth_trusted_peers.count, 0);
	conf_cleanup(&c);
}
END_TEST

START_TEST(set_values)
{
	struct conf c;
	char *why = NULL;

	conf_init(&c);
	ck_assert_int_eq(conf_set_arg(&c, "http.max_body=64K", &why), XDMS_ERR_OK);
	ck_assert_uint_eq(c.http_max_body, 65536);
	ck_assert_int_eq(conf_set_arg(&c, "store.sync=false", &why), XDMS_ERR_OK);
	ck_assert(!c.store_sync);
	ck_assert_int_eq(conf_set_arg(&c, "auth.trusted_peers= 127.0.0.1 , ::1,,", &why), XDMS_ERR_OK);
	ck_assert_uint_eq(c.auth_trusted_peers.count, 2);
	ck_assert(conf_list_has(&c.auth_trusted_peers, "::1"));
	ck_assert(!conf_list_has(&c.auth_trusted_peers, "127.0.0.2"));
	ck_assert_int_eq(conf_set_arg(&c, "http.xcap_root=/x=y", &why), XDMS_ERR_OK);
	ck_assert_str_eq(c.http_xcap_root, "/x=y");
	conf_cleanup(&c);
}
END_TEST

START_TEST(set_errors_name_the_key)
{
	struct conf c;
	char *why = NULL;

	conf_init(&c);
	ck_assert_int_eq(conf_set_arg(&c, "http.nope=1", &why), XDMS_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(why, "http.nope"));
	free(why);
	why = NULL;
	ck_assert_int_eq(conf_set_arg(&c, "store.sync=maybe", &why), XDMS_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(why, "store.sync"));
	free(why);
	why = NULL;
	ck_assert_int_eq(conf_set_arg(&c, "http.max_body=-5", &why), XDMS_ERR_INVAL);
	free(why);
	why = NULL;
	ck_assert_int_eq(conf_set_arg(&c, "noequals", &why), XDMS_ERR_INVAL);
	free(why);
	/* A refused value leaves the previous one. */
	ck_assert(c.store_sync);
	conf_cleanup(&c);
}
END_TEST

START_TEST(ini_file)
{
	struct conf c;
	char path[] = "/tmp/xdms-conf-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	char *why = NULL;

	fputs("; comment\n[http]\nlisten = 0.0.0.0:9000\n\n[auth]\nrealm = example.com\n"
	      "admin_identities = sip:admin@example.com\n",
	      f);
	fclose(f);
	conf_init(&c);
	ck_assert_int_eq(conf_load_file(&c, path, &why), XDMS_ERR_OK);
	ck_assert_str_eq(c.http_listen, "0.0.0.0:9000");
	ck_assert_str_eq(c.auth_realm, "example.com");
	ck_assert(conf_list_has(&c.auth_admin_identities, "sip:admin@example.com"));
	f = fopen(path, "w");
	fputs("[http]\nlisten = 1.2.3.4:1\n[store]\nsync = perhaps\n", f);
	fclose(f);
	ck_assert_int_eq(conf_load_file(&c, path, &why), XDMS_ERR_INVAL);
	/* The message names the file, the line and the key. */
	ck_assert_ptr_nonnull(strstr(why, ":4:"));
	ck_assert_ptr_nonnull(strstr(why, "store.sync"));
	free(why);
	why = NULL;
	unlink(path);
	ck_assert_int_eq(conf_load_file(&c, path, &why), XDMS_ERR_IO);
	free(why);
	conf_cleanup(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");
	int failed;

	tcase_add_test(tc, defaults);
	tcase_add_test(tc, set_values);
	tcase_add_test(tc, set_errors_name_the_key);
	tcase_add_test(tc, ini_file);
	suite_add_tcase(s, tc);
	failed = unit_run(s, CK_FORK);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
