/* kolabfs: device-mapper status, straight from the kernel. */
#ifndef KFS_DM_H
#define KFS_DM_H

#include <stddef.h>

/*
 * The status line of the first target of the device-mapper device NAME:
 * its type in TYPE (e.g. "snapshot"), its parameters in PARAMS (e.g.
 * "1024/65536 16", or "Invalid").  0, -ENXIO if there is no such device,
 * other -errno.
 */
int kfs_dm_status(const char *name, char *type, size_t type_size,
		  char *params, size_t params_size);

#endif
