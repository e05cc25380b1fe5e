/* kolabfs: the error domain of messages meant for the administrator.
 * The code of a KFS_ERROR is a positive errno value. */
#ifndef KFS_ERROR_H
#define KFS_ERROR_H

#include <glib.h>

#define KFS_ERROR (kfs_error_quark())
GQuark kfs_error_quark(void);

/*
 * Set *ERROR (unless NULL or already set) to a G_FILE_ERROR for the errno
 * value ERR with a printf-style message; returns -ERR, so that a caller can
 * `return kfs_error_errno(error, ENOENT, "...")`.
 */
int kfs_error_errno(GError **error, int err, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#endif
