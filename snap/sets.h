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

/*
 * Open file and directory handles of the mount, for idle_timeout and
 * max_age.  SET is the set the handle is in, NULL for kolabfs's own files
 * and directories (/, /snapshots, /status).  Each open is paired with one
 * close.
 */
void kfs_sets_handle_open(struct kfs_sets *sets, struct kfs_set *set);
void kfs_sets_handle_close(struct kfs_sets *sets, struct kfs_set *set);

/* When (g_get_monotonic_time()) the last open handle was closed, or when
 * the sets were created if none ever was; -1 while a handle is open. */
gint64 kfs_sets_idle_since(struct kfs_sets *sets);

/*
 * max_age: drop the set like kfs_sets_drop, unless a file or directory in
 * it is open.  Then it is marked expired and -EBUSY returned; closing its
 * last handle counts as a change (kfs_sets_wait), so the caller can try
 * again.  Both outcomes are logged.  -ENOENT if there is no such set.
 */
int kfs_sets_expire(struct kfs_sets *sets, const char *name);

/*
 * Changes for a thread that acts on them: a set taken, the last handle of
 * the mount or of an expired set closed, kfs_sets_poke.  kfs_sets_wait
 * returns once the count differs from SEEN or the monotonic time UNTIL
 * (G_MAXINT64: none) has come, with the count then.
 */
guint64 kfs_sets_changes(struct kfs_sets *sets);
guint64 kfs_sets_wait(struct kfs_sets *sets, guint64 seen, gint64 until);
void kfs_sets_poke(struct kfs_sets *sets);

/* /status: live health of every set, as JSON text (newly allocated).
 * MORE, if given, adds members of its own to the top object B builds. */
struct _JsonBuilder;
char *kfs_sets_status_json(struct kfs_sets *sets,
			   void (*more)(struct _JsonBuilder *b, void *data), void *data);

#endif
