#!/bin/sh
# Runs one unit test; under valgrind when KFS_VALGRIND=1 (CI), failing on
# any error or leak.
if [ "${KFS_VALGRIND:-0}" = 1 ]; then
	exec env G_SLICE=always-malloc G_DEBUG=gc-friendly \
		valgrind --quiet --error-exitcode=99 --leak-check=full \
		--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		"$@"
fi
exec "$@"
