/* kolabfs: lookup and attributes of every kind of node. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "fs-int.h"
#include "ino.h"
#include "path.h"

static void virtual_dir(struct stat *st, const struct timespec *t)
{
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_atim = st->st_mtim = st->st_ctim = *t;
	st->st_blksize = 4096;
}

static void set_time(struct timespec *ts, gint64 usec)
{
	ts->tv_sec = usec / G_USEC_PER_SEC;
	ts->tv_nsec = (usec % G_USEC_PER_SEC) * 1000;
}

static int getattr_virtual(struct kfs_fs *fs, struct kfs_node *node, struct stat *st)
{
	g_autofree char *text = NULL;
	struct timespec t;

	switch (node->kind) {
	case KFS_NODE_ROOT:
	case KFS_NODE_SNAPSHOTS:
		virtual_dir(st, &fs->mounted);
		return 0;
	case KFS_NODE_SET:
		set_time(&t, node->set->created);
		virtual_dir(st, &t);
		return 0;
	case KFS_NODE_STATUS:
		text = kfs_fs_status_text(fs);
		st->st_mode = S_IFREG | 0444;
		st->st_size = strlen(text);
		break;
	case KFS_NODE_LATEST:
		text = kfs_sets_latest_name(fs->sets);
		if (!text)
			return -ENOENT;
		st->st_mode = S_IFLNK | 0777;
		st->st_size = strlen(text);
		break;
	default:
		return -EINVAL;
	}
	st->st_nlink = 1;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_atim = st->st_ctim = st->st_mtim;
	st->st_blksize = 4096;
	return 0;
}

int kfs_fs_getattr_node(struct kfs_fs *fs, struct kfs_node *node, struct stat *st)
{
	int err = kfs_node_unusable(node);

	memset(st, 0, sizeof(*st));
	if (err)
		return -err;
	switch (node->kind) {
	case KFS_NODE_MANIFEST:
		if (fstatat(node->set->manifest_fd, "", st, AT_EMPTY_PATH) < 0)
			return -errno;
		break;
	case KFS_NODE_PASS:
		err = kfs_fs_stat_path(node->src, node->path, st);
		if (err < 0)
			return err;
		break;
	default:
		if (getattr_virtual(fs, node, st) < 0)
			return -ENOENT;
	}
	st->st_ino = node->ino;
	return 0;
}

int kfs_fs_stat_path(const struct kfs_source *src, const char *path, struct stat *st)
{
	const char *rest;
	int fd, ret;

	fd = kfs_path_at(src->root_fd, path, &rest);
	if (fd < 0)
		return fd;
	ret = fstatat(fd, rest, st, AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH) < 0 ? -errno : 0;
	kfs_path_at_put(src->root_fd, fd);
	return ret;
}

const struct kfs_filter *kfs_fs_filter_of(struct kfs_fs *fs, const struct kfs_node *node)
{
	if (node->kind != KFS_NODE_PASS || node->src->kind != KFS_SOURCE_VOLUME)
		return NULL;
	return fs->filters[node->src->volume_index];
}

char *kfs_fs_child_path(const struct kfs_node *parent, const char *name)
{
	if (!*parent->path)
		return g_strdup(name);
	return g_strconcat(parent->path, "/", name, NULL);
}

static int lookup_pass(struct kfs_fs *fs, struct kfs_node *parent, int dirfd,
		       const char *name, struct fuse_entry_param *e)
{
	g_autofree char *path = kfs_fs_child_path(parent, name);
	struct kfs_node *node;
	int ret;

	if (dirfd >= 0)
		ret = fstatat(dirfd, name, &e->attr, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
	else
		ret = kfs_fs_stat_path(parent->src, path, &e->attr);
	if (ret < 0)
		return ret;
	if (kfs_filter_hides(kfs_fs_filter_of(fs, parent), parent->path, name,
			     e->attr.st_mode))
		return -ENOENT;
	node = kfs_inodes_ref_pass(fs->inodes, parent->set, parent->src,
				   e->attr.st_ino, path);
	e->attr.st_ino = node->ino;
	e->ino = kfs_inodes_nodeid(node);
	e->attr_timeout = e->entry_timeout = KFS_PASS_TIMEOUT;
	return 0;
}

static int lookup_source_root(struct kfs_fs *fs, struct kfs_set *set,
			      struct kfs_source *src, struct fuse_entry_param *e)
{
	struct kfs_node *node;

	if (kfs_source_is_invalid(src))
		return -EIO;
	if (fstatat(src->root_fd, "", &e->attr, AT_EMPTY_PATH) < 0)
		return -errno;
	node = kfs_inodes_ref_pass(fs->inodes, set, src, e->attr.st_ino, "");
	e->attr.st_ino = node->ino;
	e->ino = kfs_inodes_nodeid(node);
	e->attr_timeout = e->entry_timeout = KFS_PASS_TIMEOUT;
	return 0;
}

static struct kfs_node *lookup_in_set(struct kfs_fs *fs, struct kfs_node *parent,
				      const char *name, struct fuse_entry_param *e, int *ret)
{
	struct kfs_set *set = parent->set;
	size_t i;

	if (!strcmp(name, "MANIFEST.json"))
		return kfs_inodes_ref_set(fs->inodes, set, KFS_NODE_MANIFEST);
	for (i = 0; i < set->n_sources; i++) {
		if (strcmp(set->sources[i].name, name))
			continue;
		/* 1: e is filled in already */
		*ret = lookup_source_root(fs, set, &set->sources[i], e) ?: 1;
		return NULL;
	}
	*ret = -ENOENT;
	return NULL;
}

static struct kfs_node *lookup_virtual(struct kfs_fs *fs, struct kfs_node *parent,
				       const char *name, struct fuse_entry_param *e,
				       int *ret)
{
	g_autofree char *latest = NULL;
	struct kfs_node *node = NULL;
	struct kfs_set *set;

	*ret = 0;
	if (parent->kind == KFS_NODE_ROOT) {
		if (!strcmp(name, "snapshots"))
			return kfs_inodes_fixed(fs->inodes, KFS_NODE_SNAPSHOTS);
		if (!strcmp(name, "status"))
			return kfs_inodes_fixed(fs->inodes, KFS_NODE_STATUS);
	} else if (parent->kind == KFS_NODE_SNAPSHOTS) {
		if (!strcmp(name, "latest")) {
			latest = kfs_sets_latest_name(fs->sets);
			return latest ? kfs_inodes_fixed(fs->inodes, KFS_NODE_LATEST) : NULL;
		}
		set = kfs_sets_get(fs->sets, name);
		if (set) {
			node = kfs_inodes_ref_set(fs->inodes, set, KFS_NODE_SET);
			kfs_set_unref(set);
		}
		return node;
	} else if (parent->kind == KFS_NODE_SET) {
		return lookup_in_set(fs, parent, name, e, ret);
	}
	*ret = -ENOENT;
	return NULL;
}

int kfs_fs_lookup_node(struct kfs_fs *fs, struct kfs_node *parent, int dirfd,
		       const char *name, struct fuse_entry_param *e)
{
	struct kfs_node *node;
	int ret;

	memset(e, 0, sizeof(*e));
	ret = kfs_node_unusable(parent);
	if (ret)
		return -ret;
	/* The kernel passes names up to 1024 bytes; no directory here, of
	 * kolabfs's own or on a snapshot, holds one longer than NAME_MAX. */
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	if (parent->kind == KFS_NODE_PASS)
		return lookup_pass(fs, parent, dirfd, name, e);
	node = lookup_virtual(fs, parent, name, e, &ret);
	if (!node)
		return ret == 1 ? 0 : ret ? ret : -ENOENT;
	ret = kfs_fs_getattr_node(fs, node, &e->attr);
	if (ret < 0) {
		kfs_inodes_forget(fs->inodes, node, 1);
		return ret;
	}
	e->ino = kfs_inodes_nodeid(node);
	/*
	 * latest moves with every mkdir/rmdir, but its node stays: what moves
	 * is the target, and sets_changed has the kernel forget that and the
	 * attributes each time.  So its entry is kept like the others: a tool
	 * that reaches every file through latest/ (restic names files by
	 * their full path) would otherwise cost a LOOKUP per file.
	 */
	e->attr_timeout = e->entry_timeout = KFS_VIRTUAL_TIMEOUT;
	if (node->kind == KFS_NODE_MANIFEST)
		e->attr_timeout = e->entry_timeout = KFS_PASS_TIMEOUT;
	return 0;
}
