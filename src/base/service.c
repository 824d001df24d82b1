/* SPDX-License-Identifier: MIT */
/*
 * The service manager's readiness protocol (sd_notify(3), systemd's
 * Type=notify): one datagram of "KEY=VALUE" lines to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, a path or, with a leading '@', an abstract name. It is a
 * dozen lines, so xdmsd speaks it itself instead of linking libsystemd.
 * Nothing here keeps state; any thread may call it.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/service.h"

bool service_notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	size_t path_len;
	socklen_t addr_len;
	ssize_t sent;
	int fd;

	if (!path || (path[0] != '/' && path[0] != '@'))
		return false;
	path_len = strlen(path);
	if (path_len >= sizeof(sun.sun_path))
		return false;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, path_len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract namespace: no terminating NUL counts */
	addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + (path[0] == '/'));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sun, addr_len);
	close(fd);
	return sent == (ssize_t)strlen(state);
}
