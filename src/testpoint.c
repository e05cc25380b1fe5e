/*
 * kolabfs: test points.
 *
 * Crash safety is only as good as its test: a kolabfs killed in the middle
 * of taking or dropping a set must leave nothing the next start does not
 * reap.  A test cannot hit "after the first snapshot" with a timed kill,
 * so kolabfs stops itself there when asked, and the test kills it while it
 * is stopped.  Always compiled in: a production binary is the one worth
 * testing, and without the variable a test point costs one getenv().
 */
#include "autoconf.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "log.h"
#include "testpoint.h"

#define KFS_TEST_STOP_ENV "KOLABFS_TEST_STOP_AT"

/* Only the first time: a test that continues the process (SIGCONT) wants
 * it to go on, not to stop at the next volume. */
void kfs_test_point(const char *stage)
{
	static gint stopped;
	const char *want = getenv(KFS_TEST_STOP_ENV);

	if (!want || strcmp(want, stage) != 0 ||
	    !g_atomic_int_compare_and_exchange(&stopped, 0, 1))
		return;
	kfs_warn("test point %s reached (%s): stopping", stage, KFS_TEST_STOP_ENV);
	raise(SIGSTOP);
}
