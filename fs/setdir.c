/* kolabfs: sets as directories: mkdir and rmdir of /snapshots/NAME.
 *
 * Taking a set can take seconds (the MySQL lock, LDIF exports, an LVM
 * snapshot), dropping one too (lvremove).  The request is answered from
 * a thread of its own, not the one that received it: with FUSE over
 * io_uring each CPU's requests are served by one thread, in order, and a
 * backup tool reading on that CPU would wait for the whole take.  (On
 * /dev/fuse libfuse starts more threads; the hand-off costs nothing
 * there that matters beside a take.) */
#include "autoconf.h"

#include <errno.h>
#include <string.h>
#include <glib.h>

#include "../src/log.h"
#include "fs-int.h"

/* Sets are taken one at a time anyway (kfs_sets_take); a second thread
 * lets an rmdir go while a mkdir waits for a lock. */
#define KFS_SETDIR_THREADS 2

/* A queue and two threads of our own, not a GThreadPool: its locks are
 * GLib-internal, where helgrind cannot follow the hand-off of a job
 * (tests/helgrind-glib.c covers the GMutex and GCond calls we make). */
struct kfs_setdir {
	GMutex lock;
	GCond cond;             /* a job queued, one done, or stopping */
	GQueue jobs;
	unsigned int running;
	bool stopping;
	bool started;           /* start_workers ran */
	GThread *threads[KFS_SETDIR_THREADS];
};

struct setdir_job {
	fuse_req_t req;
	fuse_ino_t parent;
	char *name;             /* the request's buffer is reused once we return */
	bool take;              /* mkdir, else rmdir */
};

/* Only root takes and drops sets: a set pins disk space and, with a
 * database lock, briefly production. */
static int sets_dir_access(fuse_req_t req, fuse_ino_t parent)
{
	if (kfs_node_of(req, parent)->kind != KFS_NODE_SNAPSHOTS)
		return -EROFS;
	if (fuse_req_ctx(req)->uid != 0)
		return -EPERM;
	return 0;
}

static void take(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct kfs_fs *fs = kfs_fs_of(req);
	struct fuse_entry_param e;
	GError *error = NULL;
	int ret;

	ret = kfs_sets_take(fs->sets, name, NULL, &error);
	if (ret == 0)
		ret = kfs_fs_lookup_node(fs, kfs_node_of(req, parent), -1, name, &e);
	if (error) {
		kfs_err("mkdir %s: %s", name, error->message);
		g_error_free(error);
	}
	/*
	 * From taking the set, only what the caller can act on passes: a bad,
	 * too long or taken name, and a full disk (state_dir or a volume).  An
	 * EROFS or EPERM from state_dir must not read as "kolabfs refuses
	 * mkdir here"; everything else is EIO, with the reason in the log.
	 */
	if (ret < 0)
		fuse_reply_err(req, ret == -EEXIST || ret == -EINVAL || ret == -ENAMETOOLONG ||
				    ret == -ENOSPC || ret == -EDQUOT ? -ret : EIO);
	else
		fuse_reply_entry(req, &e);
}

static void drop(fuse_req_t req, const char *name)
{
	GError *error = NULL;
	int ret;

	ret = kfs_sets_drop(kfs_fs_of(req)->sets, name, &error);
	if (error) {
		if (ret != -ENOENT)
			kfs_err("rmdir %s: %s", name, error->message);
		g_error_free(error);
	}
	fuse_reply_err(req, -ret);
}

static void run_job(struct setdir_job *job)
{
	if (job->take)
		take(job->req, job->parent, job->name);
	else
		drop(job->req, job->name);
	g_free(job->name);
	g_free(job);
}

static gpointer worker(gpointer data)
{
	struct kfs_setdir *sd = data;
	struct setdir_job *job;

	g_mutex_lock(&sd->lock);
	for (;;) {
		job = g_queue_pop_head(&sd->jobs);
		if (!job) {
			if (sd->stopping)
				break;
			g_cond_wait(&sd->cond, &sd->lock);
			continue;
		}
		sd->running++;
		g_mutex_unlock(&sd->lock);
		run_job(job);
		g_mutex_lock(&sd->lock);
		sd->running--;
		g_cond_broadcast(&sd->cond);
	}
	g_mutex_unlock(&sd->lock);
	return NULL;
}

/* Started with the first job, under sd->lock: kolabfs forks into the
 * background after kfs_fs_create, and threads do not survive a fork.
 * false if none could be started. */
static bool start_workers(struct kfs_setdir *sd)
{
	GError *error = NULL;
	int i;

	if (sd->started)
		return sd->threads[0] != NULL;
	sd->started = true;
	for (i = 0; i < KFS_SETDIR_THREADS; i++) {
		sd->threads[i] = g_thread_try_new("kolabfs-setdir", worker, sd, &error);
		if (!sd->threads[i]) {
			kfs_warn("no thread for mkdir/rmdir (%s): they hold up other requests",
				 error->message);
			g_clear_error(&error);
			break;
		}
	}
	return sd->threads[0] != NULL;
}

/* Checks that need no time are answered at once; the rest is queued.
 * Without a thread (none could be started) the work is done here. */
static void dispatch(fuse_req_t req, fuse_ino_t parent, const char *name, bool is_take)
{
	struct kfs_setdir *sd = kfs_fs_of(req)->setdir;
	struct setdir_job *job;
	int ret;

	ret = sets_dir_access(req, parent);
	if (ret == 0 && !strcmp(name, "latest"))
		ret = is_take ? -EEXIST : -ENOTDIR;
	if (ret < 0) {
		/* EPERM, EROFS: kolabfs's own answer about this directory. */
		fuse_reply_err(req, -ret);
		return;
	}
	job = g_new0(struct setdir_job, 1);
	job->req = req;
	job->parent = parent;
	job->name = g_strdup(name);
	job->take = is_take;
	g_mutex_lock(&sd->lock);
	if (!start_workers(sd)) {
		g_mutex_unlock(&sd->lock);
		run_job(job);
		return;
	}
	g_queue_push_tail(&sd->jobs, job);
	g_cond_broadcast(&sd->cond);
	g_mutex_unlock(&sd->lock);
}

void kfs_fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	dispatch(req, parent, name, true);
}

void kfs_fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	dispatch(req, parent, name, false);
}

struct kfs_setdir *kfs_setdir_create(void)
{
	struct kfs_setdir *sd = g_new0(struct kfs_setdir, 1);

	g_mutex_init(&sd->lock);
	g_cond_init(&sd->cond);
	g_queue_init(&sd->jobs);
	return sd;
}

void kfs_setdir_drain(struct kfs_setdir *sd)
{
	g_mutex_lock(&sd->lock);
	while (sd->running || !g_queue_is_empty(&sd->jobs))
		g_cond_wait(&sd->cond, &sd->lock);
	g_mutex_unlock(&sd->lock);
}

void kfs_setdir_destroy(struct kfs_setdir *sd)
{
	int i;

	if (!sd)
		return;
	g_mutex_lock(&sd->lock);
	sd->stopping = true;
	g_cond_broadcast(&sd->cond);
	g_mutex_unlock(&sd->lock);
	for (i = 0; i < KFS_SETDIR_THREADS && sd->threads[i]; i++)
		g_thread_join(sd->threads[i]);
	g_mutex_clear(&sd->lock);
	g_cond_clear(&sd->cond);
	g_free(sd);
}
