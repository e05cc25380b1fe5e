/* kolabfs: remove a spooled tree in state_dir.
 *
 * Only ever pointed at state_dir/sets/<set>; still, it refuses to cross a
 * mount point or follow a symlink, so a mistake cannot reach user data. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rmtree.h"

static int rmtree_at(int parent, const char *name, dev_t dev);

static int rmtree_contents(int dfd, dev_t dev)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int ret = 0;

	if (!d) {
		close(dfd);
		return -1;
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rmtree_at(dirfd(d), de->d_name, dev) < 0)
			ret = -1;
	}
	closedir(d);
	return ret;
}

static int rmtree_at(int parent, const char *name, dev_t dev)
{
	struct stat st;
	int dfd;

	if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(parent, name, 0);
	if (st.st_dev != dev) {
		errno = EXDEV;
		return -1;
	}
	dfd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -1;
	if (rmtree_contents(dfd, dev) < 0)
		return -1;
	return unlinkat(parent, name, AT_REMOVEDIR);
}

int kfs_rmtree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	return rmtree_at(AT_FDCWD, path, st.st_dev);
}
