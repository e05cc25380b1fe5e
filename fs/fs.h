/* kolabfs: the FUSE low-level filesystem. */
#ifndef KFS_FS_H
#define KFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "../src/config.h"
#include "../snap/sets.h"

struct kfs_fs;

struct kfs_fs *kfs_fs_create(const struct kfs_config *cfg, struct kfs_sets *sets);
void kfs_fs_destroy(struct kfs_fs *fs);

/* The operations; userdata for fuse_session_new is the kfs_fs. */
const struct fuse_lowlevel_ops *kfs_fs_ops(void);

/* Give the filesystem its session, for invalidation notices. */
void kfs_fs_set_session(struct kfs_fs *fs, struct fuse_session *se);

#endif
