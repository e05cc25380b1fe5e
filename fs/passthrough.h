/* kolabfs: FUSE passthrough of big files (libfuse >= 3.17, kernel >= 6.9). */
#ifndef KFS_PASSTHROUGH_H
#define KFS_PASSTHROUGH_H

#include <stdbool.h>

#include "fs.h"

struct kfs_node;
struct kfs_passthrough;

/* Without fuse_passthrough_open at build time every call is a no-op:
 * create returns NULL and files are read through READ requests. */
bool kfs_passthrough_built(void);
struct kfs_passthrough *kfs_passthrough_create(void);
void kfs_passthrough_destroy(struct kfs_passthrough *pt);
/* From FUSE_INIT: ask for passthrough if the kernel offers it; false if
 * it will not be used. */
bool kfs_passthrough_init(struct kfs_passthrough *pt, struct fuse_conn_info *conn);
/*
 * Have the OPEN reply FI of NODE, open on FD, pass the file through:
 * true if it does, false if the file is to be read through READ
 * requests.  Every open of one node gets the same backing file (the
 * kernel refuses two for one inode): the first registers FD, the last
 * kfs_passthrough_put drops it.
 */
bool kfs_passthrough_get(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node,
			 int fd, struct fuse_file_info *fi);
void kfs_passthrough_put(struct kfs_passthrough *pt, fuse_req_t req, struct kfs_node *node);

#endif
