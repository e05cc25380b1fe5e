/* kolabfs: paths below a source root, however deep.
 *
 * A PASS node remembers its path from the source root.  The kernel takes
 * at most PATH_MAX bytes (with the NUL) in one path argument, but a tree
 * may be deeper than that: its entries are still reachable one directory
 * at a time, which is what a walker through the mount does.  So a path
 * too long for one call is followed in pieces, each short enough, from
 * the root's descriptor through the directories on the way. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "path.h"

size_t kfs_path_piece(const char *path, size_t max)
{
	size_t len = strnlen(path, max);
	size_t i;

	if (path[0] == '/')
		return 0;
	if (len < max)
		return len;
	/* path[i] == '/' leaves the piece path[0..i-1], i bytes. */
	for (i = max - 1; i > 0; i--)
		if (path[i] == '/')
			return i;
	return 0;
}

int kfs_path_at(int root_fd, const char *path, const char **rest)
{
	int fd = root_fd, next, err;
	size_t n;

	while ((n = kfs_path_piece(path, PATH_MAX)) != strnlen(path, PATH_MAX)) {
		g_autofree char *piece = NULL;

		if (n == 0) {
			/* an absolute path would leave the root */
			err = path[0] == '/' ? EINVAL : ENAMETOOLONG;
			goto put_fd;
		}
		piece = g_strndup(path, n);
		/* O_NOFOLLOW: the piece's last component; those before it
		 * are directories a lookup went through (a snapshot does
		 * not change). */
		next = openat(fd, piece, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			err = errno;
			goto put_fd;
		}
		kfs_path_at_put(root_fd, fd);
		fd = next;
		path += n + 1;
	}
	*rest = path;
	return fd;

put_fd:
	kfs_path_at_put(root_fd, fd);
	return -err;
}

void kfs_path_at_put(int root_fd, int fd)
{
	if (fd >= 0 && fd != root_fd)
		close(fd);
}
