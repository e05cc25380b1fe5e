/* kolabfs: the health monitor of the live sets. */
#ifndef KFS_MONITOR_H
#define KFS_MONITOR_H

struct kfs_sets;
struct kfs_monitor;

/* Check the health of every live set's volumes every SECONDS (backends
 * log what they find: LVM warns at high copy-on-write usage and marks a
 * full snapshot invalid), in a thread of its own. */
struct kfs_monitor *kfs_monitor_start(struct kfs_sets *sets, unsigned int seconds);
/* Stop and join the thread, free. */
void kfs_monitor_stop(struct kfs_monitor *m);

#endif
