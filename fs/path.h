/* kolabfs: paths below a source root, however deep. */
#ifndef KFS_PATH_H
#define KFS_PATH_H

#include <stddef.h>

/*
 * The length of the first piece of the relative PATH that is followed on
 * its own: all of PATH if it is shorter than MAX bytes, else its longest
 * prefix shorter than MAX that ends just before a '/' (the rest then starts
 * after that '/').  0 if there is none: a component of MAX bytes or more,
 * or a '/' at the start.
 */
size_t kfs_path_piece(const char *path, size_t max);

/*
 * Where *at() calls find PATH (relative, no empty or "." components, every
 * component but the last a directory) below the directory ROOT_FD: returns
 * a descriptor and sets *REST to the part of PATH to give with it.  A path
 * shorter than PATH_MAX is ROOT_FD itself and PATH; a longer one (a deep
 * tree: the kernel refuses it with ENAMETOOLONG) is followed piece by
 * piece (kfs_path_piece), and gives a new O_PATH
 * descriptor of a directory on the way, with *REST shorter than PATH_MAX.
 * -errno on failure.  Give the descriptor back with kfs_path_at_put().
 */
int kfs_path_at(int root_fd, const char *path, const char **rest);
void kfs_path_at_put(int root_fd, int fd);

#endif
