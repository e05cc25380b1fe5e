/* kolabfs: read-only mounts that belong to no mount namespace. */
#ifndef KFS_MOUNT_H
#define KFS_MOUNT_H

#include <glib.h>

/*
 * Mount the filesystem on DEV (its type found by libblkid: ext2/3/4 or
 * xfs) read-only as a detached mount: it is in no mount table, and goes
 * away with the last descriptor on it -- when kolabfs closes it, or
 * dies.  *MOUNT_FD is the mount's root, *ROOT_FD an O_PATH directory
 * descriptor on SUBDIR in it (NULL: the root), reached without following
 * symbolic links or leaving the mount.  *FSTYPE is the type found.
 * 0 or -errno with *error set.
 */
int kfs_mount_detached(const char *dev, const char *subdir, int *mount_fd,
		       int *root_fd, char **fstype, GError **error);

#endif
