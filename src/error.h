/* kolabfs: the error domain of messages meant for the administrator.
 * The code of a KFS_ERROR is a positive errno value. */
#ifndef KFS_ERROR_H
#define KFS_ERROR_H

#include <glib.h>

#define KFS_ERROR (kfs_error_quark())
GQuark kfs_error_quark(void);

#endif
