/* kolabfs: the FUSE low-level operations table, lookup, and everything
 * that is read-only.  Sets as directories (mkdir/rmdir): fs/setdir.c. */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <json-glib/json-glib.h>

#include "../snap/manifest.h"
#include "../src/log.h"
#include "fs-int.h"
#include "passthrough.h"
#include "walkahead.h"

static void kfs_fs_init(void *userdata, struct fuse_conn_info *conn)
{
	struct kfs_fs *fs = userdata;

	/* The kernel enforces ACLs as well as modes (default_permissions),
	 * so a user reads through the mount only what they could on disk. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	/* File data goes from the snapshot's page cache to the kernel by
	 * splice, one copy.  Not SPLICE_MOVE: stealing the pages cost more
	 * CPU than copying them, measured (tests/bench/fs_paths.py dd). */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	conn->want &= ~FUSE_CAP_SPLICE_MOVE;
	/* READs of at most 512 KiB (max_pages follows max_write): one READ
	 * and its header must fit the 1 MiB pipe (pipe-max-size), or libfuse
	 * falls back to reading into a fresh buffer, ten times the CPU. */
	conn->max_write = KFS_MAX_READ;
	/* Requests are read with one read(2), not spliced through a pipe
	 * (two calls): libfuse asks for that because of erofs_write_buf,
	 * but no WRITE ever comes with its data. */
	conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* Backup tools stat every entry they list: always readdirplus. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	/* Symlinks in a snapshot never change: keep their targets; `latest`
	 * is invalidated whenever it moves (sets_changed). */
	if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Opening a directory costs a round trip each time a walker enters
	 * it, even when the listing is cached: let the kernel do without.
	 * Not with idle_timeout or max_age, which count open directories:
	 * a set must not expire under a walker between two files. */
	if ((conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) && !getenv("KOLABFS_OPENDIR") &&
	    !fs->cfg->idle_timeout && !fs->cfg->max_age)
		fs->no_opendir = true;
	conn->time_gran = 1;
	/* Big files: the kernel reads the snapshot's file itself. */
	if (kfs_passthrough_init(fs->passthrough, conn))
		kfs_debug("FUSE passthrough on: files of %u KiB and more are read by the kernel",
			  KFS_STORE_MAX >> 10);
}

static void kfs_fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kfs_node *p = kfs_node_of(req, parent);
	struct fuse_entry_param e;
	int ret;

	ret = kfs_fs_lookup_node(kfs_fs_of(req), p, -1, name, &e);
	if (ret == -ENOENT && p->kind == KFS_NODE_PASS) {
		/* a snapshot never gains entries: cache the miss */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = KFS_PASS_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	if (ret < 0)
		fuse_reply_err(req, -ret);
	else
		fuse_reply_entry(req, &e);
}

static void kfs_fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct kfs_fs *fs = kfs_fs_of(req);

	kfs_inodes_forget(fs->inodes, kfs_inodes_get(fs->inodes, ino), nlookup);
	fuse_reply_none(req);
}

static void kfs_fs_forget_multi(fuse_req_t req, size_t count,
				struct fuse_forget_data *forgets)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	size_t i;

	for (i = 0; i < count; i++)
		kfs_inodes_forget(fs->inodes, kfs_inodes_get(fs->inodes, forgets[i].ino),
				  forgets[i].nlookup);
	fuse_reply_none(req);
}

static void kfs_fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs_node *node = kfs_node_of(req, ino);
	struct stat st;
	int ret;

	ret = kfs_fs_getattr_node(kfs_fs_of(req), node, &st);
	if (ret < 0) {
		fuse_reply_err(req, -ret);
		return;
	}
	if (node->kind == KFS_NODE_PASS || node->kind == KFS_NODE_MANIFEST)
		fuse_reply_attr(req, &st, KFS_PASS_TIMEOUT);
	else if (node->kind == KFS_NODE_STATUS || node->kind == KFS_NODE_LATEST)
		fuse_reply_attr(req, &st, 0);
	else
		fuse_reply_attr(req, &st, KFS_VIRTUAL_TIMEOUT);
}

static void kfs_fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (statvfs(kfs_fs_of(req)->cfg->state_dir, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = 255;
	fuse_reply_statfs(req, &sv);
}

/* Everything that would change a snapshot. */
static void erofs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
			mode_t mode, dev_t rdev)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			  const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		       const char *newname)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
			 mode_t mode, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *bufv,
			    off_t off, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			   const char *value, size_t size, int flags)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, EROFS);
}

static void erofs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
			    off_t length, struct fuse_file_info *fi)
{
	fuse_reply_err(req, EROFS);
}

static const struct fuse_lowlevel_ops kfs_ops = {
	.init = kfs_fs_init,
	.lookup = kfs_fs_lookup,
	.forget = kfs_fs_forget,
	.forget_multi = kfs_fs_forget_multi,
	.getattr = kfs_fs_getattr,
	.readlink = kfs_fs_readlink,
	.mkdir = kfs_fs_mkdir,
	.rmdir = kfs_fs_rmdir,
	.open = kfs_fs_open,
	.read = kfs_fs_read,
	.release = kfs_fs_release,
	.opendir = kfs_fs_opendir,
	.readdir = kfs_fs_readdir,
	.readdirplus = kfs_fs_readdirplus,
	.releasedir = kfs_fs_releasedir,
	.statfs = kfs_fs_statfs,
	.getxattr = kfs_fs_getxattr,
	.listxattr = kfs_fs_listxattr,
	.setattr = erofs_setattr,
	.mknod = erofs_mknod,
	.symlink = erofs_symlink,
	.link = erofs_link,
	.unlink = erofs_unlink,
	.rename = erofs_rename,
	.create = erofs_create,
	.write_buf = erofs_write_buf,
	.setxattr = erofs_setxattr,
	.removexattr = erofs_removexattr,
	.fallocate = erofs_fallocate,
};

const struct fuse_lowlevel_ops *kfs_fs_ops(void)
{
	return &kfs_ops;
}

struct kfs_fs *kfs_fs_create(const struct kfs_config *cfg, struct kfs_sets *sets)
{
	struct kfs_fs *fs = g_new0(struct kfs_fs, 1);
	size_t i;

	fs->cfg = cfg;
	fs->sets = sets;
	fs->inodes = kfs_inodes_create();
	fs->passthrough = kfs_passthrough_create();
	fs->setdir = kfs_setdir_create();
	fs->walkahead = kfs_walkahead_create();
	fs->filters = g_new0(struct kfs_filter *, cfg->n_volumes + 1);
	for (i = 0; i < cfg->n_volumes; i++) {
		fs->filters[i] = kfs_filter_create(cfg->volumes[i].preset,
						   cfg->volumes[i].exclude);
		if (!fs->filters[i]) {
			/* the config was validated: this is a bug, not input */
			kfs_err("[volume:%s]: invalid preset or exclude", cfg->volumes[i].name);
			kfs_fs_destroy(fs);
			return NULL;
		}
	}
	clock_gettime(CLOCK_REALTIME, &fs->mounted);
	return fs;
}

void kfs_fs_destroy(struct kfs_fs *fs)
{
	size_t i;

	if (!fs)
		return;
	if (fs->se)
		kfs_fs_set_session(fs, NULL);
	for (i = 0; fs->filters && i < fs->cfg->n_volumes; i++)
		kfs_filter_destroy(fs->filters[i]);
	g_free(fs->filters);
	kfs_inodes_destroy(fs->inodes);
	kfs_passthrough_destroy(fs->passthrough);
	kfs_setdir_destroy(fs->setdir);
	kfs_walkahead_destroy(fs->walkahead);
	g_free(fs);
}

/* What /status says of the file-system side: the walk-ahead. */
static void status_more(JsonBuilder *b, void *data)
{
	struct kfs_walkahead_counts c;
	struct kfs_fs *fs = data;

	kfs_walkahead_counts(fs->walkahead, &c);
	json_builder_set_member_name(b, "walk_ahead");
	json_builder_begin_object(b);
	kfs_json_add_int(b, "ahead", c.ahead);
	kfs_json_add_int(b, "in_front", c.in_front);
	kfs_json_add_int(b, "queued", c.queued);
	kfs_json_add_int(b, "directories", c.dirs);
	kfs_json_add_int(b, "entries", c.entries);
	json_builder_end_object(b);
}

char *kfs_fs_status_text(struct kfs_fs *fs)
{
	return kfs_sets_status_json(fs->sets, status_more, fs);
}

static bool cached_and_dropped(const struct kfs_node *n)
{
	return n->kind == KFS_NODE_PASS && __atomic_load_n(&n->cached, __ATOMIC_RELAXED) &&
	       kfs_set_is_dead(n->set);
}

/*
 * A set came or went: `latest` points elsewhere and /snapshots lists other
 * names.  The kernel caches both (symlink bodies and listings are kept in
 * its page cache); mkdir and rmdir through the mount refresh the listing
 * by themselves, sets dropped by kolabfs itself do not.  And a file of a
 * dropped set that is still open must read ESTALE, not the pages the
 * kernel kept (keep_cache; fs/file.c stores small files at open).
 */
static void sets_changed(void *data)
{
	struct kfs_fs *fs = data;
	struct kfs_node *n;
	GArray *ids;
	guint i;

	ids = kfs_inodes_select(fs->inodes, cached_and_dropped);
	for (i = 0; i < ids->len; i++)
		fuse_lowlevel_notify_inval_inode(fs->se, g_array_index(ids, uint64_t, i), 0, 0);
	g_array_free(ids, true);
	/* before a dropped set's snapshots are destroyed */
	kfs_walkahead_forget_dead(fs->walkahead);

	n = kfs_inodes_fixed(fs->inodes, KFS_NODE_LATEST);
	fuse_lowlevel_notify_inval_inode(fs->se, kfs_inodes_nodeid(n), 0, 0);
	n = kfs_inodes_fixed(fs->inodes, KFS_NODE_SNAPSHOTS);
	fuse_lowlevel_notify_inval_inode(fs->se, kfs_inodes_nodeid(n), 0, 0);
}

void kfs_fs_set_session(struct kfs_fs *fs, struct fuse_session *se)
{
	/* mkdir/rmdir still running answer first, through the session */
	if (!se) {
		kfs_setdir_drain(fs->setdir);
		kfs_walkahead_stop(fs->walkahead);
	}
	fs->se = se;
	kfs_sets_on_change(fs->sets, se ? sets_changed : NULL, fs);
}
