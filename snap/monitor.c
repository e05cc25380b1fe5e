/*
 * kolabfs: the health monitor of the live sets.
 *
 * A classic LVM snapshot fills while the backup runs; once full it is
 * invalid and every read of it fails.  Checking only when /status is
 * read would leave the log silent until then: this thread checks every
 * few seconds, so the warning comes while there is still room, and a
 * broken snapshot is marked (its files then read as EIO) as soon as it
 * breaks.
 */
#include "autoconf.h"

#include <glib.h>

#include "backend.h"
#include "monitor.h"
#include "sets.h"

struct kfs_monitor {
	struct kfs_sets *sets;
	GThread *thread;
	GMutex lock;            /* stop */
	GCond cond;
	bool stop;
	gint64 interval;        /* microseconds */
};

static void check_set(struct kfs_set *set)
{
	struct kfs_health health;
	size_t i;

	for (i = 0; i < set->n_sources && !kfs_set_is_dead(set); i++) {
		struct kfs_source *src = &set->sources[i];

		if (src->kind == KFS_SOURCE_VOLUME)
			src->backend->ops->health(src->backend, src, &health);
	}
}

static void check_all(struct kfs_sets *sets)
{
	g_autoptr(GPtrArray) list = kfs_sets_list(sets);
	guint i;

	for (i = 0; i < list->len; i++)
		check_set(g_ptr_array_index(list, i));
}

/* Sleeps are bounded and end at once on stop. */
static gpointer monitor_thread(gpointer data)
{
	struct kfs_monitor *m = data;
	gint64 until;

	g_mutex_lock(&m->lock);
	while (!m->stop) {
		until = g_get_monotonic_time() + m->interval;
		while (!m->stop && g_cond_wait_until(&m->cond, &m->lock, until))
			;
		if (m->stop)
			break;
		g_mutex_unlock(&m->lock);
		check_all(m->sets);
		g_mutex_lock(&m->lock);
	}
	g_mutex_unlock(&m->lock);
	return NULL;
}

struct kfs_monitor *kfs_monitor_start(struct kfs_sets *sets, unsigned int seconds)
{
	struct kfs_monitor *m = g_new0(struct kfs_monitor, 1);

	m->sets = sets;
	m->interval = (gint64)seconds * G_USEC_PER_SEC;
	g_mutex_init(&m->lock);
	g_cond_init(&m->cond);
	m->thread = g_thread_new("kfs-monitor", monitor_thread, m);
	return m;
}

void kfs_monitor_stop(struct kfs_monitor *m)
{
	if (!m)
		return;
	g_mutex_lock(&m->lock);
	m->stop = true;
	g_cond_signal(&m->cond);
	g_mutex_unlock(&m->lock);
	g_thread_join(m->thread);
	g_cond_clear(&m->cond);
	g_mutex_clear(&m->lock);
	g_free(m);
}
