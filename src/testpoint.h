/* kolabfs: test points for the crash tests (doc/design.md, "Test points"). */
#ifndef KFS_TESTPOINT_H
#define KFS_TESTPOINT_H

/*
 * Stop the whole process (SIGSTOP) here if the environment variable
 * KOLABFS_TEST_STOP_AT names STAGE and it has not stopped before, so that
 * a test can SIGKILL it at exactly this point (or SIGCONT it, and it goes
 * on).  "STAGE@N" stops the Nth time STAGE is reached instead (counted
 * across sets).  Without the variable it does nothing.  Stages:
 * "locked", "snapshot", "ldap", "ldap-page", "teardown" (see where they
 * are called, and doc/design.md).
 */
void kfs_test_point(const char *stage);

#endif
