# SPDX-License-Identifier: MIT
# Shared by scripts/run and scripts/test: install what is missing, then build.
# Sourced, not run. Builds out of tree (default ./build) so that several
# configurations (a sanitizer build, say) can live side by side.

XDMS_TOP=$(cd "$(dirname "$0")/.." && pwd)
XDMS_BUILD_DIR=${XDMS_BUILD_DIR:-build}
case $XDMS_BUILD_DIR in /*) ;; *) XDMS_BUILD_DIR="$XDMS_TOP/$XDMS_BUILD_DIR" ;; esac

# Debian packages needed to build and run.
XDMS_BUILD_PACKAGES="build-essential autoconf automake libtool pkg-config libmicrohttpd-dev
 libxml2-dev libxslt1-dev libosip2-dev liblmdb-dev libcurl4-openssl-dev libinih-dev nettle-dev
 libjansson-dev libgnutls28-dev
 check curl"

# Installs the Debian packages named in "$@" that are not installed yet.
xdms_install() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "xdmsd: missing Debian packages:$missing" >&2
		echo "xdmsd: run this script as root, or: sudo apt-get install$missing" >&2
		exit 1
	fi
	echo "xdmsd: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2
}

# Configures (once per set of flags) and builds into $XDMS_BUILD_DIR.
xdms_build() {
	flags="${XDMS_CONFIGURE_FLAGS:-}"
	cd "$XDMS_TOP"
	if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt configure ]; then
		autoreconf -fi >/dev/null 2>&1 || autoreconf -fi
	fi
	mkdir -p "$XDMS_BUILD_DIR"
	cd "$XDMS_BUILD_DIR"
	if [ ! -f Makefile ] || [ "$(cat .xdms-flags 2>/dev/null)" != "$flags" ] || [ "$XDMS_TOP/configure" -nt Makefile ]; then
		# shellcheck disable=SC2086
		"$XDMS_TOP/configure" $flags >configure.out 2>&1 || { cat configure.out; exit 1; }
		echo "$flags" > .xdms-flags
	fi
	make -j"$(nproc)" >make.out 2>&1 || { tail -50 make.out; exit 1; }
	cd "$XDMS_TOP"
}
