/* kolabfs: the live snapshot sets, their record in state_dir, reaping. */
#ifndef KFS_SETS_H
#define KFS_SETS_H

#include <stdbool.h>
#include <glib.h>

#include "../src/config.h"
#include "set.h"

struct kfs_sets;

/*
 * Open (create 0700) state_dir, take its lock (a second kolabfs on the
 * same state_dir is refused), and reap whatever a dead predecessor left:
 * every snapshot it recorded is destroyed and its spool removed.  What was
 * reaped is logged and becomes a warning in the next set's MANIFEST.
 */
struct kfs_sets *kfs_sets_create(const struct kfs_config *cfg, GError **error);

/* After fuse_daemonize(): the lock file names the daemon's pid, and with
 * LVM volumes the health monitor starts (a thread must not precede the fork). */
void kfs_sets_daemonized(struct kfs_sets *sets);

/* Tear down every live set, release the lock, free. */
bool kfs_sets_destroy(struct kfs_sets *sets);

/*
 * Take a new set.  NAME NULL: from name_format and the current UTC time.
 * On success the set is live and listed; on failure nothing is left.
 * -EEXIST if the name is taken, -EINVAL if it is not a safe name.
 */
int kfs_sets_take(struct kfs_sets *sets, const char *name,
		  struct kfs_set **out, GError **error);

/* Tear one set down.  -ENOENT if there is no such set. */
int kfs_sets_drop(struct kfs_sets *sets, const char *name, GError **error);

/*
 * Call FN(DATA) after each set taken or dropped (NULL: no longer), so the
 * file system can tell the kernel that `latest` and the listing of
 * /snapshots moved.  FN runs on the thread that changed the sets.
 */
void kfs_sets_on_change(struct kfs_sets *sets, void (*fn)(void *data), void *data);

/* A reference to the named set, or NULL. */
struct kfs_set *kfs_sets_get(struct kfs_sets *sets, const char *name);

/* The newest set's name (newly allocated), or NULL if there is none. */
char *kfs_sets_latest_name(struct kfs_sets *sets);

/* References to every live set, oldest first; free with kfs_sets_list_free. */
GPtrArray *kfs_sets_list(struct kfs_sets *sets);

/* /status: live health of every set, as JSON text (newly allocated). */
char *kfs_sets_status_json(struct kfs_sets *sets);

#endif
