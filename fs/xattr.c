/* kolabfs: extended attributes (and so POSIX ACLs) of source files.
 *
 * There are no *at() xattr calls in this libc, and a node keeps no
 * descriptor; the entry is named through its parent directory's
 * descriptor in /proc/self/fd, which also works for symlinks, FIFOs and
 * devices (opening those to use f*xattr would have side effects). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/xattr.h>

#include "fs-int.h"
#include "path.h"

/* Attribute NAME of NODE, or the list of its names when NAME is NULL. */
static ssize_t node_xattr(struct kfs_node *node, const char *name, char *buf, size_t size)
{
	g_autofree char *dir = NULL, *base = NULL;
	char proc[64 + 256];
	const char *rest;
	ssize_t ret;
	int at, dfd;

	if (!*node->path) {
		/* the source root: follow the magic link to the directory */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", node->src->root_fd);
		ret = name ? getxattr(proc, name, buf, size) : listxattr(proc, buf, size);
		return ret < 0 ? -errno : ret;
	}
	dir = g_path_get_dirname(node->path);
	base = g_path_get_basename(node->path);
	at = kfs_path_at(node->src->root_fd, dir, &rest);
	if (at < 0)
		return at;
	dfd = openat(at, rest, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ret = -errno;
	kfs_path_at_put(node->src->root_fd, at);
	if (dfd < 0)
		return ret;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d/%s", dfd, base);
	ret = name ? lgetxattr(proc, name, buf, size) : llistxattr(proc, buf, size);
	if (ret < 0)
		ret = -errno;
	close(dfd);
	return ret;
}

static void reply_xattr(fuse_req_t req, struct kfs_node *node, const char *name,
			size_t size)
{
	g_autofree char *buf = size ? g_malloc(size) : NULL;
	ssize_t ret;

	if (node->kind != KFS_NODE_PASS) {
		/* kolabfs's own entries have none */
		if (name)
			fuse_reply_err(req, ENODATA);
		else if (size)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	if (kfs_node_unusable(node)) {
		fuse_reply_err(req, kfs_node_unusable(node));
		return;
	}
	ret = node_xattr(node, name, buf, size);
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else if (size)
		fuse_reply_buf(req, buf, ret);
	else
		fuse_reply_xattr(req, ret);
}

void kfs_fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	reply_xattr(req, kfs_node_of(req, ino), name, size);
}

void kfs_fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	reply_xattr(req, kfs_node_of(req, ino), NULL, size);
}
