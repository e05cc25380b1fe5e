/*
 * kolabfs: idle_timeout and max_age, kolabfs.conf(5).
 *
 * One thread sleeps until the nearest deadline (the oldest set's max_age,
 * idle_timeout after the last handle of the mount was closed) or until the
 * sets report a change (a set taken, the last handle of the mount or of an
 * expired set closed), whichever comes first: nothing polls.
 *
 * Idle, it unmounts the way umount(8) does; the FUSE loop then ends as
 * after any unmount and main tears every set down.  So there is one way
 * down, and the kernel has the last word: a mount still in use (a file
 * opened just now, a shell's working directory) is refused with EBUSY, and
 * the thread tries again after another idle_timeout.
 */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>

#include "expire.h"
#include "log.h"

struct kfs_expire {
	const struct kfs_config *cfg;
	struct kfs_sets *sets;
	char *mountpoint;
	GThread *thread;
	gint stop;
	/* The thread's own: */
	gint64 idle_from;       /* idle time counts from here at the earliest */
	bool unmounted;
};

/* Drop every set past max_age that can go; the nearest later deadline. */
static gint64 expire_sets(struct kfs_expire *e, gint64 now)
{
	g_autoptr(GPtrArray) list = kfs_sets_list(e->sets);
	gint64 age = (gint64)e->cfg->max_age * G_USEC_PER_SEC;
	gint64 next = G_MAXINT64;
	guint i;

	for (i = 0; i < list->len && !g_atomic_int_get(&e->stop); i++) {
		const struct kfs_set *set = g_ptr_array_index(list, i);

		if (now < set->taken_at + age)
			next = MIN(next, set->taken_at + age);
		else    /* -EBUSY: its last close is a change that wakes us */
			kfs_sets_expire(e->sets, set->name);
	}
	return next;
}

static bool expire_unmount(struct kfs_expire *e)
{
	kfs_info("no file or directory has been open for %u s (idle_timeout): unmounting %s",
		 e->cfg->idle_timeout, e->mountpoint);
	if (umount2(e->mountpoint, UMOUNT_NOFOLLOW) == 0)
		return true;
	kfs_warn("idle_timeout: cannot unmount %s: %s; trying again in %u s",
		 e->mountpoint, g_strerror(errno), e->cfg->idle_timeout);
	return false;
}

/* Unmount once idle long enough; the idle deadline, G_MAXINT64 if none. */
static gint64 expire_idle(struct kfs_expire *e, gint64 now)
{
	gint64 timeout = (gint64)e->cfg->idle_timeout * G_USEC_PER_SEC;
	gint64 since = kfs_sets_idle_since(e->sets);

	if (since < 0)          /* in use: the last close is a change */
		return G_MAXINT64;
	since = MAX(since, e->idle_from);
	if (now < since + timeout)
		return since + timeout;
	if (expire_unmount(e)) {
		e->unmounted = true;
		return G_MAXINT64;
	}
	e->idle_from = now;
	return now + timeout;
}

static gpointer expire_thread(gpointer data)
{
	struct kfs_expire *e = data;
	guint64 seen = kfs_sets_changes(e->sets);

	while (!g_atomic_int_get(&e->stop)) {
		gint64 now = g_get_monotonic_time();
		gint64 next = G_MAXINT64;

		if (e->cfg->max_age)
			next = expire_sets(e, now);
		if (e->cfg->idle_timeout && !e->unmounted) {
			gint64 idle = expire_idle(e, now);      /* MIN() would call it twice */

			next = MIN(next, idle);
		}
		seen = kfs_sets_wait(e->sets, seen, next);
	}
	return NULL;
}

/*
 * libfuse's handlers of SIGTERM, SIGINT and SIGHUP end the loop only when
 * they interrupt the main thread's wait (its workers block them): a thread
 * of ours must not take them.
 */
static GThread *thread_new_without_signals(const char *name, GThreadFunc fn, gpointer data)
{
	sigset_t all, old;
	GThread *t;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	t = g_thread_new(name, fn, data);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return t;
}

struct kfs_expire *kfs_expire_start(const struct kfs_config *cfg, struct kfs_sets *sets,
				    const char *mountpoint)
{
	struct kfs_expire *e;

	if (!cfg->idle_timeout && !cfg->max_age)
		return NULL;
	e = g_new0(struct kfs_expire, 1);
	e->cfg = cfg;
	e->sets = sets;
	e->mountpoint = g_strdup(mountpoint);
	e->idle_from = g_get_monotonic_time();
	e->thread = thread_new_without_signals("kfs-expire", expire_thread, e);
	return e;
}

void kfs_expire_stop(struct kfs_expire *e)
{
	if (!e)
		return;
	g_atomic_int_set(&e->stop, 1);
	kfs_sets_poke(e->sets);
	g_thread_join(e->thread);
	g_free(e->mountpoint);
	g_free(e);
}
