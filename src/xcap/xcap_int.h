/* SPDX-License-Identifier: MIT */
/* Private to src/xcap. */
#ifndef XDMS_XCAP_INT_H
#define XDMS_XCAP_INT_H

#include "xcap/xcap.h"

/* Builds the xcap-caps document (RFC 4825 §12) for @reg into @out. */
enum xdms_err xcap_caps_build(const struct xcap_registry *reg, struct buf *out) XDMS_WUR;

#endif
