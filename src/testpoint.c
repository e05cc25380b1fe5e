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

/*
 * Only once: a test that continues the process (SIGCONT) wants it to go
 * on, not to stop at the next volume.  "STAGE@N" stops the Nth time STAGE
 * is reached instead of the first, so that a set taken by mkdir can be
 * stopped after the one taken at mount went through (test_faults.py).
 */
void kfs_test_point(const char *stage)
{
	static gint stopped, hits;
	const char *want = getenv(KFS_TEST_STOP_ENV);
	size_t len = strlen(stage);
	long nth = 1;

	if (!want || strncmp(want, stage, len) != 0)
		return;
	if (want[len] == '@')
		nth = strtol(want + len + 1, NULL, 10);
	else if (want[len] != '\0')
		return;
	if (g_atomic_int_add(&hits, 1) + 1 != nth ||
	    !g_atomic_int_compare_and_exchange(&stopped, 0, 1))
		return;
	kfs_warn("test point %s reached (%s=%s): stopping", stage, KFS_TEST_STOP_ENV, want);
	raise(SIGSTOP);
}
