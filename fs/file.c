/* kolabfs: opening and reading files, and symlinks.
 *
 * Files of a source are read through a descriptor held only while the
 * file is open: small ones are stored in the kernel's page cache at open,
 * big ones passed through to the kernel where it can (fs/passthrough.c),
 * the rest handed over by splice in answer to READ. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "../src/annotate.h"
#include "fs-int.h"
#include "passthrough.h"
#include "path.h"

/* fi->fh of a source's file: its descriptor, and this bit if the kernel
 * reads it by passthrough (release must drop the backing file). */
#define KFS_FH_BACKING (1ull << 32)

static int fh_fd(const struct fuse_file_info *fi)
{
	return (int)(fi->fh & 0xffffffffu);
}

/* /status is generated at open; its handle holds the text. */
struct kfs_genfile {
	char *text;
	size_t len;
};

static int open_fd(struct kfs_node *node)
{
	const char *rest;
	int at, fd;

	if (node->kind == KFS_NODE_MANIFEST) {
		fd = open(node->set->manifest, O_RDONLY | O_CLOEXEC);
		return fd < 0 ? -errno : fd;
	}
	at = kfs_path_at(node->src->root_fd, node->path, &rest);
	if (at < 0)
		return at;
	fd = openat(at, rest, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		fd = -errno;
	kfs_path_at_put(node->src->root_fd, at);
	return fd;
}

static void release_fh(fuse_req_t req, struct kfs_node *node, struct fuse_file_info *fi);

/* Open handles keep kolabfs (idle_timeout) and their set (max_age) alive.
 * An open the kernel gave up on (interrupted) gets no release: undo it. */
static void reply_open(fuse_req_t req, struct kfs_node *node, struct fuse_file_info *fi)
{
	kfs_sets_handle_open(kfs_fs_of(req)->sets, node->set);
	if (fuse_reply_open(req, fi) != 0)
		release_fh(req, node, fi);
}

/*
 * A small file is read whole right after it is opened: tar, rsync and
 * restic do.  Its READ is one more round trip the reader waits for, and
 * in a copy of a mail spool the round trips cost more than the data.  So
 * OPEN reads a file smaller than KFS_STORE_MAX itself and hands it to the
 * kernel's page cache (FUSE_NOTIFY_STORE) before answering; with
 * keep_cache, read(2) finds it there.  Once per node (node->cached: the
 * kernel may hold pages of the file, stored or read): the pages live no
 * longer than the kernel's inode, which holds the node, and if the kernel
 * drops them earlier a READ fetches them as before.  Files in a snapshot
 * do not change, so what is stored stays true until the set is dropped,
 * when fs.c has the kernel forget the pages of every cached node.
 */
static bool read_whole(int fd, char *data, size_t size)
{
	size_t done = 0;
	ssize_t n;

	while (done < size) {
		n = pread(fd, data + done, size - done, done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		done += n;
	}
	return true;
}

static void store_small(struct kfs_fs *fs, fuse_ino_t ino, struct kfs_node *node, int fd,
			size_t size, int flags)
{
	struct fuse_bufvec buf;
	char *data;

	if (!fs->se || (flags & O_DIRECT) || size == 0)
		return;
	data = g_malloc(size);
	if (read_whole(fd, data, size)) {
		buf = (struct fuse_bufvec)FUSE_BUFVEC_INIT(size);
		buf.buf[0].mem = data;
		if (fuse_lowlevel_notify_store(fs->se, ino, 0, &buf, 0) == 0)
			__atomic_store_n(&node->cached, true, __ATOMIC_RELAXED);
	}
	g_free(data);
}

/* How the kernel will read the source's file open on FD: stored now if
 * small, passed through if big and the source allows, else by READ.  The
 * choice depends only on the node (sizes in a snapshot do not change).
 * A cached node (stored, or read by READ: never a passed-through one)
 * has nothing left to prepare: no fstat on the warm open of a tar. */
static void prepare_read(struct kfs_fs *fs, fuse_req_t req, fuse_ino_t ino,
			 struct kfs_node *node, int fd, struct fuse_file_info *fi)
{
	struct stat st;

	if (__atomic_load_n(&node->cached, __ATOMIC_RELAXED) ||
	    fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	if (st.st_size < KFS_STORE_MAX)
		store_small(fs, ino, node, fd, st.st_size, fi->flags);
	else if (kfs_source_pinnable(node->src) &&
		 kfs_passthrough_get(fs->passthrough, req, node, fd, fi)) {
		fi->fh |= KFS_FH_BACKING;
		/* the kernel refuses keep_cache with passthrough (EIO): the
		 * page cache is the snapshot's own */
		fi->keep_cache = 0;
	}
}

void kfs_fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	struct kfs_node *node = kfs_node_of(req, ino);
	struct kfs_genfile *g;
	int fd, err;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = kfs_node_unusable(node);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (node->kind == KFS_NODE_STATUS) {
		g = g_new0(struct kfs_genfile, 1);
		g->text = kfs_fs_status_text(fs);
		g->len = strlen(g->text);
		fi->fh = (uintptr_t)g;
		fi->direct_io = 1;
		/* the handle goes through the kernel to other threads */
		KFS_HAPPENS_BEFORE(g);
		reply_open(req, node, fi);
		return;
	}
	if (node->kind != KFS_NODE_PASS && node->kind != KFS_NODE_MANIFEST) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	fd = open_fd(node);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	fi->fh = fd;
	fi->keep_cache = 1;
	fi->noflush = 1;
	if (node->kind == KFS_NODE_PASS) {
		kfs_source_fd_add(node->src, fd);
		prepare_read(fs, req, ino, node, fd, fi);
	}
	reply_open(req, node, fi);
}

void kfs_fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct kfs_node *node = kfs_node_of(req, ino);
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
	struct kfs_genfile *g;

	if (node->kind == KFS_NODE_STATUS) {
		g = (struct kfs_genfile *)(uintptr_t)fi->fh;
		KFS_HAPPENS_AFTER(g);
		if ((size_t)off >= g->len)
			fuse_reply_buf(req, NULL, 0);
		else
			fuse_reply_buf(req, g->text + off, MIN(size, g->len - off));
		return;
	}
	if (kfs_node_unusable(node)) {
		fuse_reply_err(req, kfs_node_unusable(node));
		return;
	}
	if (!__atomic_load_n(&node->cached, __ATOMIC_RELAXED))
		__atomic_store_n(&node->cached, true, __ATOMIC_RELAXED);
	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fh_fd(fi);
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, 0);
}

static void release_fh(fuse_req_t req, struct kfs_node *node, struct fuse_file_info *fi)
{
	struct kfs_genfile *g;

	if (node->kind == KFS_NODE_STATUS) {
		g = (struct kfs_genfile *)(uintptr_t)fi->fh;
		KFS_HAPPENS_AFTER(g);
		g_free(g->text);
		g_free(g);
	} else {
		if (node->kind == KFS_NODE_PASS)
			kfs_source_fd_remove(node->src, fh_fd(fi));
		if (fi->fh & KFS_FH_BACKING)
			kfs_passthrough_put(kfs_fs_of(req)->passthrough, req, node);
		close(fh_fd(fi));
	}
	kfs_sets_handle_close(kfs_fs_of(req)->sets, node->set);
}

void kfs_fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	release_fh(req, kfs_node_of(req, ino), fi);
	fuse_reply_err(req, 0);
}

void kfs_fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	struct kfs_node *node = kfs_node_of(req, ino);
	g_autofree char *latest = NULL;
	char buf[PATH_MAX + 1];
	const char *rest;
	ssize_t n;
	int at;

	if (node->kind == KFS_NODE_LATEST) {
		latest = kfs_sets_latest_name(fs->sets);
		if (latest)
			fuse_reply_readlink(req, latest);
		else
			fuse_reply_err(req, ENOENT);
		return;
	}
	if (node->kind != KFS_NODE_PASS) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (kfs_node_unusable(node)) {
		fuse_reply_err(req, kfs_node_unusable(node));
		return;
	}
	at = kfs_path_at(node->src->root_fd, node->path, &rest);
	if (at < 0) {
		fuse_reply_err(req, -at);
		return;
	}
	n = readlinkat(at, rest, buf, sizeof(buf) - 1);
	if (n < 0)
		n = -errno;
	kfs_path_at_put(node->src->root_fd, at);
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}
