/* SPDX-License-Identifier: MIT */
/* Socket addresses as text (see net.c). Pure; any thread. */
#ifndef XDMS_BASE_NET_H
#define XDMS_BASE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Parses "ADDR:PORT" or "[ADDR6]:PORT" (numeric address, port 0-65535)
 * into *ss and its length. False for anything else. */
bool net_addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/* Writes "ADDR:PORT" (or "[ADDR6]:PORT") of @ss into @out, and the bare
 * address into @ip_out when it is not NULL. "?" for other families. */
void net_addr_format(const struct sockaddr_storage *ss, char *out, size_t len, char *ip_out, size_t ip_len);

#endif
