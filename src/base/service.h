/* SPDX-License-Identifier: MIT */
/* Readiness and status reports to the service manager (see service.c). */
#ifndef XDMS_BASE_SERVICE_H
#define XDMS_BASE_SERVICE_H

#include <stdbool.h>

/*
 * Sends @state (for example "READY=1" or "STOPPING=1", several assignments
 * separated by newlines) to the service manager's notification socket named
 * by $NOTIFY_SOCKET (systemd's Type=notify). Returns true when the message was
 * sent, false when there is no such socket or the send failed; both are normal
 * outside a service manager and need no handling. Any thread.
 */
bool service_notify(const char *state);

#endif
