/* SPDX-License-Identifier: MIT */
/*
 * The files schemas may import: those compiled into the binary and those an
 * admin registers at start-up (descriptor directory). libxml2's external
 * entity loader is replaced by one that serves only these, by base name, from
 * memory; every other URL or path is refused. The table is written before any
 * other thread starts and only read afterwards.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "base/mem.h"
#include "xml/xml.h"
#include "xml/xml_int.h"

struct registered_file {
	char *name; /* base name */
	char *data;
	size_t len;
};

static struct registered_file *registered;
static size_t registered_count;

const char *xml_file_basename(const char *name)
{
	const char *slash = strrchr(name, '/');

	return slash ? slash + 1 : name;
}

void xml_file_register(const char *name, const char *data, size_t len)
{
	registered = xrealloc(registered, (registered_count + 1) * sizeof(*registered));
	registered[registered_count].name = xstrdup(xml_file_basename(name));
	registered[registered_count].data = xstrndup(data, len);
	registered[registered_count].len = len;
	registered_count++;
}

bool xml_file_find(const char *name, const char **data, size_t *len)
{
	const char *base = xml_file_basename(name);

	/* Later registrations override earlier ones and the embedded files. */
	for (size_t i = registered_count; i-- > 0;) {
		if (strcmp(registered[i].name, base) == 0) {
			*data = registered[i].data;
			*len = registered[i].len;
			return true;
		}
	}
	for (const struct xml_embedded_file *f = xml_embedded_files; f->name; f++) {
		if (strcmp(xml_file_basename(f->name), base) == 0) {
			*data = f->data;
			*len = f->len;
			return true;
		}
	}
	return false;
}

static xmlParserInputPtr restricted_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	const char *data;
	size_t len;
	xmlParserInputBufferPtr buf;
	xmlParserInputPtr in;

	if (!url || !xml_file_find(url, &data, &len))
		return NULL;
	buf = xmlParserInputBufferCreateMem(data, (int)len, XML_CHAR_ENCODING_NONE);
	if (!buf)
		return NULL;
	in = xmlNewIOInputStream(ctxt, buf, XML_CHAR_ENCODING_NONE);
	if (!in) {
		xmlFreeParserInputBuffer(buf);
		return NULL;
	}
	/* Imports inside this file resolve relative to its name; the loader
	 * only ever looks at base names anyway. */
	in->filename = (const char *)xmlStrdup((const xmlChar *)xml_file_basename(url));
	return in;
}

void xml_init(void)
{
	xmlInitParser();
	xmlSetExternalEntityLoader(restricted_loader);
}

void xml_shutdown(void)
{
	for (size_t i = 0; i < registered_count; i++) {
		free(registered[i].name);
		free(registered[i].data);
	}
	free(registered);
	registered = NULL;
	registered_count = 0;
	xmlCleanupParser();
}
