/* kolabfs: the read-ahead of the mount's backing device. */
#ifndef KFS_BDI_H
#define KFS_BDI_H

/* What btrfs sets for itself (4 MiB): 8 READs of KFS_MAX_READ in flight. */
#define KFS_READ_AHEAD_KB 4096

struct kfs_bdi;

/*
 * Once the session loop runs, set read_ahead_kb of the FUSE mount on
 * MOUNTPOINT to KIB, from a thread of its own (start it after
 * daemonizing); a failure is logged as a warning.  Stop it after the
 * session is destroyed: a request it waits for fails then.  NULL-safe.
 */
struct kfs_bdi *kfs_bdi_tune_start(const char *mountpoint, unsigned int kib);
void kfs_bdi_tune_stop(struct kfs_bdi *b);

#endif
