/* kolabfs: passwords, read from files only root can read. */
#ifndef KFS_SECRET_H
#define KFS_SECRET_H

#include <glib.h>

/*
 * Read the password in FILE: a regular file, not group- or world-readable
 * (or writable), not empty; one trailing newline is dropped.  The result
 * is in memory that kfs_secret_free() wipes.  On error NULL, with a
 * message naming FILE and what is wrong (never the content).
 */
char *kfs_secret_read(const char *file, GError **error);
void kfs_secret_free(char *secret);

#endif
