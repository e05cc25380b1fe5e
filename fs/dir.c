/* kolabfs: directories: kolabfs's own, and those of a source.
 *
 * Source directories are read with readdirplus, so a backup tool's walk
 * costs one request per directory chunk instead of one per entry.
 *
 * Where the kernel allows it (FUSE_CAP_NO_OPENDIR_SUPPORT), opendir answers
 * ENOSYS once and the kernel stops sending OPENDIR and RELEASEDIR: a warm
 * walk then costs no request at all, since the kernel caches listings
 * (FOPEN_CACHE_DIR is its default then) and attributes.  Without a handle,
 * each PASS node keeps the directory stream its last READDIRPLUS left off
 * at, so a walker's next chunk continues it instead of reopening. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../src/annotate.h"
#include "fs-int.h"
#include "ino.h"
#include "path.h"
#include "walkahead.h"

struct kfs_dirh {
	DIR *dp;                /* PASS */
	off_t offset;
	struct dirent *entry;
	GPtrArray *names;       /* virtual: a listing taken at opendir */
};

static GPtrArray *virtual_names(struct kfs_fs *fs, struct kfs_node *node)
{
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	g_autoptr(GPtrArray) sets = NULL;
	g_autofree char *latest = NULL;
	size_t i;

	if (node->kind == KFS_NODE_ROOT) {
		g_ptr_array_add(names, g_strdup("snapshots"));
		g_ptr_array_add(names, g_strdup("status"));
	} else if (node->kind == KFS_NODE_SNAPSHOTS) {
		sets = kfs_sets_list(fs->sets);
		for (i = 0; i < sets->len; i++)
			g_ptr_array_add(names, g_strdup(((struct kfs_set *)
						g_ptr_array_index(sets, i))->name));
		latest = kfs_sets_latest_name(fs->sets);
		if (latest)
			g_ptr_array_add(names, g_strdup("latest"));
	} else {
		g_ptr_array_add(names, g_strdup("MANIFEST.json"));
		for (i = 0; i < node->set->n_sources; i++)
			g_ptr_array_add(names, g_strdup(node->set->sources[i].name));
	}
	return names;
}

/* A directory of SRC (PATH: "" for its root) as a stream, its descriptor
 * known to the source (so that dropping the set can revoke it): 0 or
 * -errno. */
int kfs_fs_source_opendir(struct kfs_source *src, const char *path, DIR **out)
{
	const char *rest;
	int at, fd, err;
	DIR *dp;

	at = kfs_path_at(src->root_fd, path, &rest);
	if (at < 0)
		return at;
	fd = openat(at, *rest ? rest : ".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	err = errno;
	kfs_path_at_put(src->root_fd, at);
	if (fd < 0)
		return -err;
	dp = fdopendir(fd);
	if (!dp) {
		err = errno;
		close(fd);
		return -err;
	}
	kfs_source_fd_add(src, fd);
	*out = dp;
	return 0;
}

void kfs_fs_source_closedir(struct kfs_source *src, DIR *dp)
{
	kfs_source_fd_remove(src, dirfd(dp));
	closedir(dp);
}

static void dirh_free(struct kfs_node *node, struct kfs_dirh *d)
{
	if (!d)
		return;
	if (d->dp)
		kfs_fs_source_closedir(node->src, d->dp);
	if (d->names)
		g_ptr_array_unref(d->names);
	g_free(d);
}

/* The stream a node kept, taken out of it (the thread that left it there
 * is done with it). */
static struct kfs_dirh *dir_stream_take(struct kfs_node *node)
{
	struct kfs_dirh *d = g_atomic_pointer_exchange(&node->dir_stream, NULL);

	if (d)
		KFS_HAPPENS_AFTER(d);
	return d;
}

void kfs_fs_dir_stream_free(struct kfs_node *node)
{
	dirh_free(node, dir_stream_take(node));
}

/* A handle's end: idle_timeout and max_age count open directories. */
static void release_dirh(struct kfs_fs *fs, struct kfs_node *node, struct kfs_dirh *d)
{
	dirh_free(node, d);
	kfs_sets_handle_close(fs->sets, node->set);
}

void kfs_fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	struct kfs_node *node = kfs_node_of(req, ino);
	struct kfs_dirh *d;
	int err;

	if (fs->no_opendir) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	err = kfs_node_unusable(node);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	d = g_new0(struct kfs_dirh, 1);
	if (node->kind != KFS_NODE_PASS) {
		d->names = virtual_names(fs, node);
		goto out;
	}
	err = kfs_fs_source_opendir(node->src, node->path, &d->dp);
	if (err) {
		g_free(d);
		fuse_reply_err(req, -err);
		return;
	}
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
out:
	fi->fh = (uintptr_t)d;
	/* Counted for idle_timeout and max_age; an interrupted open gets no
	 * releasedir. */
	kfs_sets_handle_open(fs->sets, node->set);
	/* The handle goes through the kernel to the threads that answer
	 * READDIR and RELEASEDIR for it (one at a time: the kernel orders a
	 * handle's requests). */
	KFS_HAPPENS_BEFORE(d);
	if (fuse_reply_open(req, fi) != 0)
		release_dirh(fs, node, d);
}

void kfs_fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	KFS_HAPPENS_AFTER((struct kfs_dirh *)(uintptr_t)fi->fh);
	release_dirh(kfs_fs_of(req), kfs_node_of(req, ino),
		     (struct kfs_dirh *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Add one entry; returns its size, or 0 when the buffer is full (a
 * reference counted for it by the lookup is given back then). */
static size_t add_entry(struct kfs_fs *fs, fuse_req_t req, struct kfs_node *parent,
			int dirfd, char *buf, size_t rem, const char *name,
			mode_t type, uint64_t ino, off_t next, bool plus)
{
	struct fuse_entry_param e;
	size_t size;

	memset(&e, 0, sizeof(e));
	e.attr.st_mode = type;
	e.attr.st_ino = ino;
	if (!plus) {
		size = fuse_add_direntry(req, buf, rem, name, &e.attr, next);
		return size > rem ? 0 : size;
	}
	/* "." and "..": the kernel takes no reference for them. */
	if (!kfs_is_dot(name) && kfs_fs_lookup_node(fs, parent, dirfd, name, &e) < 0) {
		memset(&e, 0, sizeof(e));
		e.attr.st_mode = type;
		e.attr.st_ino = ino;
	}
	size = fuse_add_direntry_plus(req, buf, rem, name, &e, next);
	if (size > rem) {
		if (e.ino)
			kfs_inodes_forget(fs->inodes, kfs_inodes_get(fs->inodes, e.ino), 1);
		return 0;
	}
	return size;
}

static mode_t virtual_type(const struct kfs_node *parent, const char *name)
{
	if (parent->kind == KFS_NODE_ROOT && !strcmp(name, "status"))
		return S_IFREG;
	if (parent->kind == KFS_NODE_SNAPSHOTS && !strcmp(name, "latest"))
		return S_IFLNK;
	if (parent->kind == KFS_NODE_SET && !strcmp(name, "MANIFEST.json"))
		return S_IFREG;
	return S_IFDIR;
}

static size_t read_virtual(struct kfs_fs *fs, fuse_req_t req, struct kfs_node *node,
			   struct kfs_dirh *d, char *buf, size_t size, off_t off, bool plus)
{
	static const char *const dots[] = { ".", ".." };
	size_t used = 0, n;
	off_t i;

	/* offsets: 1 and 2 for the dots, 3.. for the names */
	for (i = off; i < (off_t)d->names->len + 2; i++) {
		const char *name = i < 2 ? dots[i] : g_ptr_array_index(d->names, i - 2);

		n = add_entry(fs, req, node, -1, buf + used, size - used, name,
			      i < 2 ? S_IFDIR : virtual_type(node, name),
			      node->ino, i + 1, plus);
		if (!n)
			break;
		used += n;
	}
	return used;
}

/* Should the entry the directory stream is on be left out? */
static bool pass_hidden(struct kfs_fs *fs, struct kfs_node *node, struct kfs_dirh *d)
{
	const struct kfs_filter *f = kfs_fs_filter_of(fs, node);
	const struct dirent *de = d->entry;
	mode_t mode = DTTOIF(de->d_type);
	struct stat st;

	if (!f || kfs_is_dot(de->d_name))
		return false;
	if (de->d_type == DT_UNKNOWN && kfs_filter_needs_type(f)) {
		if (fstatat(dirfd(d->dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return false;
		mode = st.st_mode & S_IFMT;
	}
	return kfs_filter_hides(f, node->path, de->d_name, mode);
}

/* The reader was given N entries of NODE, SUBDIRS among them (NULL: no
 * walk-ahead for this listing): the walk goes on below them
 * (fs/walkahead.c). */
static void walk_on(struct kfs_fs *fs, struct kfs_node *node, GPtrArray *subdirs,
		    unsigned int n)
{
	if (!subdirs)
		return;
	if (n)
		kfs_walkahead_listed(fs->walkahead, node->set, node->src,
				     kfs_fs_filter_of(fs, node), node->path, subdirs, n);
	g_ptr_array_unref(subdirs);
}

static ssize_t read_pass(struct kfs_fs *fs, fuse_req_t req, struct kfs_node *node,
			 struct kfs_dirh *d, char *buf, size_t size, off_t off, bool plus)
{
	/* only READDIRPLUS feeds the walk: the kernel's cold listing */
	GPtrArray *subdirs = plus && fs->walkahead ? g_ptr_array_new_with_free_func(g_free) : NULL;
	unsigned int n_entries = 0;
	size_t used = 0, n;
	ssize_t ret;
	off_t next;

	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				ret = errno && !used ? -errno : (ssize_t)used;
				break;
			}
		}
		next = d->entry->d_off;
		if (!pass_hidden(fs, node, d)) {
			n = add_entry(fs, req, node, dirfd(d->dp), buf + used, size - used,
				      d->entry->d_name, DTTOIF(d->entry->d_type),
				      kfs_ino_make(node->src->ino_space, d->entry->d_ino),
				      next, plus);
			if (!n) {
				ret = used;
				break;
			}
			used += n;
			n_entries++;
			if (subdirs && d->entry->d_type == DT_DIR && !kfs_is_dot(d->entry->d_name))
				g_ptr_array_add(subdirs, kfs_fs_child_path(node, d->entry->d_name));
		}
		d->entry = NULL;
		d->offset = next;
	}
	walk_on(fs, node, subdirs, n_entries);
	return ret;
}

/*
 * The stream to continue at OFF without a handle: the one the node kept,
 * if a reader left it there, else a new one.  NULL and *ERR on failure.
 */
static struct kfs_dirh *pass_stream_take(struct kfs_node *node, off_t off, int *err)
{
	struct kfs_dirh *d = dir_stream_take(node);

	if (d && d->offset == off)
		return d;
	dirh_free(node, d);
	d = g_new0(struct kfs_dirh, 1);
	*err = kfs_fs_source_opendir(node->src, node->path, &d->dp);
	if (*err) {
		g_free(d);
		return NULL;
	}
	return d;
}

/* Keep D for the next chunk; the kernel's last, empty READDIRPLUS at the
 * end closes it. */
static void pass_stream_give_back(struct kfs_node *node, struct kfs_dirh *d, bool done)
{
	if (done) {
		dirh_free(node, d);
		return;
	}
	KFS_HAPPENS_BEFORE(d);
	d = g_atomic_pointer_exchange(&node->dir_stream, d);
	if (d)
		KFS_HAPPENS_AFTER(d);
	dirh_free(node, d);
}

static ssize_t read_handleless(struct kfs_fs *fs, fuse_req_t req, struct kfs_node *node,
			       char *buf, size_t size, off_t off, bool plus)
{
	struct kfs_dirh *d;
	ssize_t used;
	int err = 0;

	if (node->kind != KFS_NODE_PASS) {
		/* kolabfs's own listings are a few names: make them anew */
		struct kfs_dirh v = { .names = virtual_names(fs, node) };

		used = read_virtual(fs, req, node, &v, buf, size, off, plus);
		g_ptr_array_unref(v.names);
		return used;
	}
	d = pass_stream_take(node, off, &err);
	if (!d)
		return err;
	used = read_pass(fs, req, node, d, buf, size, off, plus);
	pass_stream_give_back(node, d, used <= 0);
	return used;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	struct kfs_node *node = kfs_node_of(req, ino);
	struct kfs_dirh *d = (struct kfs_dirh *)(uintptr_t)fi->fh;
	g_autofree char *buf = g_malloc(size);
	ssize_t used;
	int err;

	if (d)
		KFS_HAPPENS_AFTER(d);   /* see kfs_fs_opendir */
	err = kfs_node_unusable(node);
	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (!d)
		used = read_handleless(fs, req, node, buf, size, off, plus);
	else if (d->names)
		used = read_virtual(fs, req, node, d, buf, size, off, plus);
	else
		used = read_pass(fs, req, node, d, buf, size, off, plus);
	if (d)
		KFS_HAPPENS_BEFORE(d);
	if (used < 0)
		fuse_reply_err(req, -used);
	else
		fuse_reply_buf(req, buf, used);
}

void kfs_fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void kfs_fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}
