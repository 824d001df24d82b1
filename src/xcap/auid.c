/* SPDX-License-Identifier: MIT */
/*
 * The registry of application usages. Each usage is a descriptor, an INI file
 * with one [auid] section (see schemas/auids/ and docs/architecture.md):
 * adding a usage that needs no special semantics is a matter of a descriptor
 * and an XSD, no C code. Built-in descriptors are compiled into the binary; an
 * admin's descriptor directory is read at start-up and may add usages or
 * replace built-in ones. Everything is validated and every schema compiled
 * before the server starts; afterwards the registry is immutable and shared
 * by all threads without locks.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "base/file.h"
#include "base/mem.h"
#include "xcap/xcap_int.h"
#include "xml/xml.h"

struct xcap_registry {
	struct xcap_auid **auids;
	size_t count;
};

struct descriptor_parse {
	struct xcap_auid *a;
	const char *source;
	char *why;
	bool has_section;
};

static void auid_free(struct xcap_auid *a)
{
	if (!a)
		return;
	free(a->name);
	free(a->ns);
	free(a->mime);
	free(a->default_document);
	free(a->root);
	free(a->etag_prefix);
	free(a->schema_name);
	xml_schema_free(a->schema);
	free(a);
}

static int parse_size_value(const char *v, size_t *out)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-')
		return -1;
	*out = (size_t)n;
	return 0;
}

static int descriptor_line(void *user, const char *section, const char *key, const char *value)
{
	struct descriptor_parse *dp = user;
	struct xcap_auid *a = dp->a;
	char **field = NULL;

	if (strcmp(section, "auid") != 0) {
		dp->why = xasprintf("unknown section [%s] (only [auid])", section);
		return 0;
	}
	dp->has_section = true;
	if (!strcmp(key, "name"))
		field = &a->name;
	else if (!strcmp(key, "namespace"))
		field = &a->ns;
	else if (!strcmp(key, "mime"))
		field = &a->mime;
	else if (!strcmp(key, "default_document"))
		field = &a->default_document;
	else if (!strcmp(key, "root"))
		field = &a->root;
	else if (!strcmp(key, "etag_prefix"))
		field = &a->etag_prefix;
	else if (!strcmp(key, "schema"))
		field = &a->schema_name;
	if (field) {
		free(*field);
		*field = value[0] ? xstrdup(value) : NULL;
		return 1;
	}
	if (!strcmp(key, "scope")) {
		if (!strcmp(value, "users"))
			a->scope = XCAP_SCOPE_USERS;
		else if (!strcmp(value, "global"))
			a->scope = XCAP_SCOPE_GLOBAL;
		else if (!strcmp(value, "both"))
			a->scope = XCAP_SCOPE_BOTH;
		else
			goto bad_value;
		return 1;
	}
	if (!strcmp(key, "generated")) {
		if (!strcmp(value, "true"))
			a->is_generated = true;
		else if (!strcmp(value, "false"))
			a->is_generated = false;
		else
			goto bad_value;
		return 1;
	}
	if (!strcmp(key, "hook")) {
		a->hook = xcap_hook_find(value);
		if (!a->hook) {
			dp->why = xasprintf("unknown hook '%s'", value);
			return 0;
		}
		return 1;
	}
	if (!strcmp(key, "admin_only")) {
		if (!strcmp(value, "true"))
			a->is_admin_only = true;
		else if (!strcmp(value, "false"))
			a->is_admin_only = false;
		else
			goto bad_value;
		return 1;
	}
	if (!strcmp(key, "max_document")) {
		if (parse_size_value(value, &a->max_document) != 0)
			goto bad_value;
		return 1;
	}
	dp->why = xasprintf("unknown key '%s'", key);
	return 0;
bad_value:
	dp->why = xasprintf("bad value '%s' for %s", value, key);
	return 0;
}

/* Parses one descriptor text into a new usage, compiling its schema. */
static enum xdms_err descriptor_load(const char *source, const char *text, size_t default_max,
				     struct xcap_auid **out, char **why)
{
	struct descriptor_parse dp = { .source = source };
	char *schema_why = NULL;
	char *copy = xstrdup(text);
	enum xdms_err err = XDMS_ERR_INVAL;
	int rc;

	dp.a = xcalloc(1, sizeof(*dp.a));
	dp.a->scope = XCAP_SCOPE_USERS;
	rc = ini_parse_string(copy, descriptor_line, &dp);
	free(copy);
	if (dp.why) {
		*why = xasprintf("%s:%d: %s", source, rc, dp.why);
		free(dp.why);
		goto out;
	}
	if (rc != 0 || !dp.has_section) {
		*why = xasprintf("%s:%d: not a descriptor (expected an [auid] section)", source, rc);
		goto out;
	}
	if (!dp.a->name || !dp.a->ns || !dp.a->mime || !dp.a->root) {
		*why = xasprintf("%s: name, namespace, mime and root are required", source);
		goto out;
	}
	if (strchr(dp.a->name, '/') || strchr(dp.a->name, '~')) {
		*why = xasprintf("%s: an AUID may not contain '/' or '~'", source);
		goto out;
	}
	if (!dp.a->default_document)
		dp.a->default_document = xstrdup("index");
	if (!dp.a->etag_prefix)
		dp.a->etag_prefix = xstrdup(dp.a->root);
	if (strlen(dp.a->etag_prefix) > 32 || strspn(dp.a->etag_prefix, "abcdefghijklmnopqrstuvwxyz"
								    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
						    strlen(dp.a->etag_prefix)) {
		*why = xasprintf("%s: etag_prefix '%s' must be 1 to 32 of A-Z a-z 0-9 . _ -", source,
				 dp.a->etag_prefix);
		goto out;
	}
	if (!dp.a->max_document || dp.a->max_document > default_max)
		dp.a->max_document = default_max;
	if (dp.a->schema_name) {
		err = xml_schema_load(dp.a->schema_name, &dp.a->schema, &schema_why);
		if (err) {
			*why = xasprintf("%s: %s", source, schema_why);
			free(schema_why);
			goto out;
		}
	}
	*out = dp.a;
	dp.a = NULL;
	err = XDMS_ERR_OK;
out:
	auid_free(dp.a);
	return err;
}

static void registry_add(struct xcap_registry *reg, struct xcap_auid *a)
{
	for (size_t i = 0; i < reg->count; i++) {
		if (strcmp(reg->auids[i]->name, a->name) == 0) {
			auid_free(reg->auids[i]);
			reg->auids[i] = a;
			return;
		}
	}
	reg->auids = xrealloc(reg->auids, (reg->count + 1) * sizeof(*reg->auids));
	reg->auids[reg->count++] = a;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists the regular files of @dir ending in @suffix, sorted, as full paths. */
static enum xdms_err list_dir(const char *dir, const char *suffix, char ***out, size_t *count, char **why)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (!d) {
		*why = xasprintf("descriptor directory %s: %s", dir, strerror(errno));
		return XDMS_ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_suffix(de->d_name, suffix))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(char *));
		names[n++] = xasprintf("%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(char *), name_cmp);
	*out = names;
	*count = n;
	return XDMS_ERR_OK;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

enum xdms_err xcap_registry_create(const struct xcap_registry_options *opt, struct xcap_registry **out,
				   char **why)
{
	struct xcap_registry *reg = xcalloc(1, sizeof(*reg));
	size_t default_max = opt->max_document ? opt->max_document : 2 * 1024 * 1024;
	char **names = NULL;
	size_t count = 0;
	enum xdms_err err = XDMS_ERR_OK;

	*out = NULL;
	/* Schemas of the admin's directory first, so descriptors can name them. */
	if (opt->descriptor_dir && opt->descriptor_dir[0]) {
		err = list_dir(opt->descriptor_dir, ".xsd", &names, &count, why);
		for (size_t i = 0; !err && i < count; i++) {
			char *data;
			size_t len;

			err = file_read(names[i], 4 * 1024 * 1024, &data, &len, why);
			if (!err) {
				xml_file_register(names[i], data, len);
				free(data);
			}
		}
		free_names(names, count);
		names = NULL;
		count = 0;
		if (err)
			goto out;
	}
	for (const struct xml_embedded_file *f = xml_embedded_files; f->name; f++) {
		struct xcap_auid *a;

		if (!has_suffix(f->name, ".auid"))
			continue;
		err = descriptor_load(f->name, f->data, default_max, &a, why);
		if (err)
			goto out;
		registry_add(reg, a);
	}
	if (opt->descriptor_dir && opt->descriptor_dir[0]) {
		err = list_dir(opt->descriptor_dir, ".auid", &names, &count, why);
		for (size_t i = 0; !err && i < count; i++) {
			char *data;
			size_t len;
			struct xcap_auid *a;

			err = file_read(names[i], 64 * 1024, &data, &len, why);
			if (err)
				break;
			err = descriptor_load(names[i], data, default_max, &a, why);
			free(data);
			if (!err)
				registry_add(reg, a);
		}
		free_names(names, count);
		if (err)
			goto out;
	}
	*out = reg;
	reg = NULL;
out:
	xcap_registry_destroy(reg);
	return err;
}

void xcap_registry_destroy(struct xcap_registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->count; i++)
		auid_free(reg->auids[i]);
	free(reg->auids);
	free(reg);
}

const struct xcap_auid *xcap_registry_find(const struct xcap_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->count; i++)
		if (strcmp(reg->auids[i]->name, name) == 0)
			return reg->auids[i];
	return NULL;
}

size_t xcap_registry_count(const struct xcap_registry *reg)
{
	return reg->count;
}

const struct xcap_auid *xcap_registry_at(const struct xcap_registry *reg, size_t i)
{
	return i < reg->count ? reg->auids[i] : NULL;
}
