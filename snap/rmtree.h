/* kolabfs: remove a directory tree of kolabfs's own (state_dir spool). */
#ifndef KFS_RMTREE_H
#define KFS_RMTREE_H

/* Remove PATH and everything below it, never crossing into another
 * filesystem or following a symlink.  0, or -1 with errno. */
int kfs_rmtree(const char *path);

#endif
