/* kolabfs: what the FUSE operation files share. */
#ifndef KFS_FS_INT_H
#define KFS_FS_INT_H

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "fs.h"
#include "filter.h"
#include "inode.h"

/* Snapshots never change: let the kernel cache what they contain for a
 * day.  kolabfs's own entries change with mkdir/rmdir: a second. */
#define KFS_PASS_TIMEOUT 86400.0
#define KFS_VIRTUAL_TIMEOUT 1.0
#define KFS_MAX_READ (512u << 10)
/* Files smaller than this are stored in the page cache at open
 * (fs/file.c); bigger ones are passed through where the kernel can. */
#define KFS_STORE_MAX (128u << 10)

struct kfs_fs {
	const struct kfs_config *cfg;
	struct kfs_sets *sets;
	struct kfs_inodes *inodes;
	struct kfs_filter **filters;    /* one per [volume:NAME] */
	struct fuse_session *se;
	struct kfs_passthrough *passthrough;    /* NULL: built without it */
	struct kfs_setdir *setdir;
	struct kfs_walkahead *walkahead;       /* NULL: off */
	struct timespec mounted;
	bool no_opendir;        /* the kernel keeps directory handles itself */
};

static inline struct kfs_fs *kfs_fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static inline struct kfs_node *kfs_node_of(fuse_req_t req, fuse_ino_t ino)
{
	return kfs_inodes_get(kfs_fs_of(req)->inodes, ino);
}

/*
 * Can NODE be used?  ESTALE once its set is torn down; EIO once the
 * snapshot of its source broke (a full LVM snapshot): a backup tool must
 * see an error, not a file.  0 if it can.
 */
static inline int kfs_node_unusable(const struct kfs_node *node)
{
	if (node->set && kfs_set_is_dead(node->set))
		return ESTALE;
	if (node->kind == KFS_NODE_PASS && kfs_source_is_invalid(node->src))
		return EIO;
	return 0;
}

/* fs/attr.c */
int kfs_fs_getattr_node(struct kfs_fs *fs, struct kfs_node *node, struct stat *st);
/* Look NAME up in PARENT and count a kernel reference: 0 or -errno.  For
 * PASS parents, DIRFD (or -1) is an open descriptor on the parent. */
int kfs_fs_lookup_node(struct kfs_fs *fs, struct kfs_node *parent, int dirfd,
		       const char *name, struct fuse_entry_param *e);
const struct kfs_filter *kfs_fs_filter_of(struct kfs_fs *fs, const struct kfs_node *node);
/* lstat of PATH below SRC's root, however long: 0 or -errno. */
int kfs_fs_stat_path(const struct kfs_source *src, const char *path, struct stat *st);
/* The path of NAME below PASS node PARENT (newly allocated). */
char *kfs_fs_child_path(const struct kfs_node *parent, const char *name);

/* "." or ".." */
static inline bool kfs_is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* fs/dir.c */
/* A directory of SRC (PATH: "" for its root) as a stream in *OUT, its
 * descriptor registered with SRC so that dropping the set revokes it:
 * 0 or -errno.  Closed with kfs_fs_source_closedir. */
int kfs_fs_source_opendir(struct kfs_source *src, const char *path, DIR **out);
void kfs_fs_source_closedir(struct kfs_source *src, DIR *dp);
void kfs_fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi);
void kfs_fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi);
void kfs_fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
/* Close the directory stream a node kept between READDIRPLUS requests. */
void kfs_fs_dir_stream_free(struct kfs_node *node);

/* /status, with what fs/ adds to the sets' health (newly allocated). */
char *kfs_fs_status_text(struct kfs_fs *fs);

/* fs/setdir.c */
void kfs_fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void kfs_fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
struct kfs_setdir *kfs_setdir_create(void);
/* Wait until every mkdir/rmdir handed over is answered. */
void kfs_setdir_drain(struct kfs_setdir *sd);
void kfs_setdir_destroy(struct kfs_setdir *sd);

/* fs/file.c */
void kfs_fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		 struct fuse_file_info *fi);
void kfs_fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void kfs_fs_readlink(fuse_req_t req, fuse_ino_t ino);

/* fs/xattr.c */
void kfs_fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void kfs_fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

#endif
