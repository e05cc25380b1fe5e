/* kolabfs: btrfs snapshots, in-process through the btrfs ioctls. */
#ifndef KFS_BTRFS_H
#define KFS_BTRFS_H

#include <stdbool.h>

/* 0 if PATH is the root of a btrfs subvolume; -ENOTTY if not on btrfs,
 * -EINVAL if on btrfs but not a subvolume root; other -errno from stat. */
int kfs_btrfs_is_subvolume(const char *path);

/*
 * Where snapshots of the subvolume ORIGIN are kept: the directory
 * ".kolabfs-snapshots" beside ORIGIN when ORIGIN's parent is on the same
 * btrfs filesystem, else inside ORIGIN itself.  Returns a newly allocated
 * path (not created), or NULL with errno set.
 */
char *kfs_btrfs_snapshot_dir(const char *origin);

/*
 * Create a read-only snapshot of ORIGIN at DEST (DEST's parent is created
 * 0700 if missing, DEST must not exist).  0 or -errno.
 */
int kfs_btrfs_snapshot_create(const char *origin, const char *dest);

/* Delete the snapshot subvolume at PATH.  -ENOENT if it is gone already,
 * -EINVAL if PATH is not a subvolume (nothing is touched then). */
int kfs_btrfs_snapshot_destroy(const char *path);

#endif
