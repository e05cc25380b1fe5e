/* kolabfs: idle_timeout and max_age of kolabfs.conf(5). */
#ifndef KFS_EXPIRE_H
#define KFS_EXPIRE_H

#include "config.h"
#include "../snap/sets.h"

struct kfs_expire;

/*
 * Start the thread that drops every set older than cfg->max_age (once no
 * file or directory is open in it) and unmounts MOUNTPOINT after
 * cfg->idle_timeout seconds without an open file or directory.  NULL when
 * both are off: there is nothing to wait for.  Start it after daemonizing
 * (a thread must not precede the fork).
 */
struct kfs_expire *kfs_expire_start(const struct kfs_config *cfg, struct kfs_sets *sets,
				    const char *mountpoint);

/* Stop and join the thread (a drop it is doing is finished first), free.
 * NULL is fine. */
void kfs_expire_stop(struct kfs_expire *e);

#endif
