/* kolabfs: [copy:NAME] trees, copied into state_dir when a set is taken. */
#ifndef KFS_COPY_H
#define KFS_COPY_H

#include <glib.h>

/*
 * Copy the file or tree at SRC (absolute) to DEST_ROOT/SRC, so that
 * "/etc/dirsrv" lands at DEST_ROOT/etc/dirsrv.  Missing ancestors under
 * DEST_ROOT are created with the owner, mode and times of the original
 * ancestors.  Regular files, directories, symlinks, FIFOs, sockets and
 * device nodes are copied with owner, group, mode, xattrs (including ACLs)
 * and atime/mtime to the nanosecond; hard links inside SRC stay hard links.
 * Returns 0, or -errno with *error naming the path that failed.
 */
int kfs_copy_tree(const char *src, const char *dest_root, GError **error);

#endif
