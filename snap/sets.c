/* kolabfs: the live snapshot sets and their record in state_dir.
 *
 * Every snapshot is written into the set's record before it is created,
 * so whatever a crashed kolabfs leaves behind, the next one finds it and
 * removes it ("reaping").  The reaper only ever destroys what the record
 * names and what looks like a kolabfs snapshot: it must never be able to
 * remove an administrator's data, even from a corrupt record. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "../src/error.h"
#include "../src/log.h"
#include "../src/testpoint.h"
#include "backend.h"
#include "copy.h"
#include "ldap.h"
#include "manifest.h"
#include "monitor.h"
#include "rmtree.h"
#include "sets.h"

struct kfs_sets {
	const struct kfs_config *cfg;
	char *sets_dir;         /* state_dir/sets */
	char *lock_path;
	int lock_fd;
	GMutex lock;            /* live, seq */
	GMutex take_lock;       /* one take or drop at a time */
	GPtrArray *live;        /* struct kfs_set *, oldest first */
	GPtrArray *reaped;      /* warnings for the next set's MANIFEST */
	unsigned long seq;
	struct kfs_backend *backends[2];        /* by enum kfs_backend_kind, made on first use */
	struct kfs_monitor *monitor;    /* with LVM volumes, once daemonized */
	gint handles;           /* open on the mount, see kfs_sets_handle_open */
	gint64 idle_since;      /* under lock: monotonic time handles fell to 0 */
	guint64 changes;        /* under lock, see kfs_sets_wait */
	GCond changed;          /* with lock: changes moved */
	void (*on_change)(void *data);  /* under take_lock */
	void *on_change_data;
};

/* How often the monitor looks at copy-on-write usage. */
#define MONITOR_SECONDS 5

static int state_dir_open(struct kfs_sets *sets, GError **error)
{
	const char *dir = sets->cfg->state_dir;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return kfs_error_errno(error, errno, "state_dir %s: cannot create: %s",
				       dir, g_strerror(errno));
	/* Copies of configuration (and later LDIF) are spooled here. */
	if (chmod(dir, 0700) < 0)
		return kfs_error_errno(error, errno, "state_dir %s: %s", dir, g_strerror(errno));
	if (mkdir(sets->sets_dir, 0700) < 0 && errno != EEXIST)
		return kfs_error_errno(error, errno, "state_dir %s: cannot create: %s",
				       sets->sets_dir, g_strerror(errno));
	return 0;
}

static void lock_write_pid(struct kfs_sets *sets)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());

	if (ftruncate(sets->lock_fd, 0) == 0 && pwrite(sets->lock_fd, buf, n, 0) != n)
		kfs_warn("%s: cannot write pid: %s", sets->lock_path, g_strerror(errno));
}

static int lock_take(struct kfs_sets *sets, GError **error)
{
	char pid[32] = "";
	ssize_t n;

	sets->lock_fd = open(sets->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (sets->lock_fd < 0)
		return kfs_error_errno(error, errno, "%s: %s", sets->lock_path, g_strerror(errno));
	if (flock(sets->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		n = pread(sets->lock_fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		g_strchomp(pid);
		close(sets->lock_fd);
		sets->lock_fd = -1;
		if (err != EWOULDBLOCK)
			return kfs_error_errno(error, err, "%s: %s", sets->lock_path, g_strerror(err));
		return kfs_error_errno(error, EBUSY,
				       "state_dir %s is in use by another kolabfs (pid %s)",
				       sets->cfg->state_dir, *pid ? pid : "unknown");
	}
	lock_write_pid(sets);
	return 0;
}

static bool has_lvm(const struct kfs_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++)
		if (cfg->volumes[i].backend == KFS_BACKEND_LVM)
			return true;
	return false;
}

/* The monitor is a thread: it must start after the fork. */
void kfs_sets_daemonized(struct kfs_sets *sets)
{
	lock_write_pid(sets);
	if (has_lvm(sets->cfg) && !sets->monitor)
		sets->monitor = kfs_monitor_start(sets, MONITOR_SECONDS);
}

/* The backend of KIND, made on first use: LVM's library is only set up
 * when a volume or a record needs it. */
static struct kfs_backend *backend_get(struct kfs_sets *sets, enum kfs_backend_kind kind,
				       GError **error)
{
	if (!sets->backends[kind])
		sets->backends[kind] = kind == KFS_BACKEND_LVM ?
				       kfs_lvm_backend_create(error) :
				       kfs_btrfs_backend_create(error);
	return sets->backends[kind];
}

/* The backend a record's entry belongs to; NULL (and *error) if none. */
static struct kfs_backend *backend_of_entry(struct kfs_sets *sets, const char *entry,
					    GError **error)
{
	enum kfs_backend_kind kinds[] = { KFS_BACKEND_BTRFS, KFS_BACKEND_LVM };
	struct kfs_backend *be;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(kinds); i++) {
		be = backend_get(sets, kinds[i], error);
		if (be && be->ops->owns(entry))
			return be;
		if (!be)
			return NULL;
	}
	g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "unknown kind of snapshot");
	return NULL;
}

/* Reap one entry of a dead kolabfs's record; false if it is still there. */
static bool reap_entry(struct kfs_sets *sets, const char *set, const char *entry,
		       const char *pid, gint64 written)
{
	g_autoptr(GError) err = NULL;
	struct kfs_backend *be = backend_of_entry(sets, entry, &err);
	int ret;

	if (!be) {
		kfs_err("reaper: %s: %s", entry, err->message);
		return err->code == G_FILE_ERROR_INVAL;    /* nothing to retry */
	}
	ret = be->ops->reap(be, entry, written);
	if (ret == -ENOENT)
		return true;
	if (ret == -EPERM) {
		kfs_warn("reaper: %s: not made by kolabfs pid %s for set %s, left alone",
			 entry, pid, set);
		return true;
	}
	if (ret < 0) {
		kfs_err("reaper: cannot destroy snapshot %s left by kolabfs pid %s: %s",
			entry, pid, g_strerror(-ret));
		return false;
	}
	g_ptr_array_add(sets->reaped,
			g_strdup_printf("reaped snapshot %s of set %s, left by kolabfs pid %s",
					entry, set, pid));
	kfs_warn("%s", (char *)g_ptr_array_index(sets->reaped, sets->reaped->len - 1));
	return true;
}

/* Files directory servers wrote for the dead kolabfs, in their own
 * directories (task mode): the set's export directories name them. */
static bool reap_ldap(struct kfs_sets *sets, const char *dir, const char *pid)
{
	g_autofree char *top = g_build_filename(dir, "ldap", NULL);
	g_autoptr(GDir) d = g_dir_open(top, 0, NULL);
	bool complete = true;
	const char *name;

	while (d && (name = g_dir_read_name(d))) {
		g_autofree char *sub = g_build_filename(top, name, NULL);

		complete = kfs_ldap_reap(sub, pid, sets->reaped) && complete;
	}
	return complete;
}

static void reap_one(struct kfs_sets *sets, const char *name)
{
	g_autofree char *dir = g_build_filename(sets->sets_dir, name, NULL);
	g_autofree char *record = g_build_filename(dir, "record", NULL);
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_auto(GStrv) snaps = NULL;
	g_autofree char *pid = NULL;
	gint64 written = 0;
	bool complete = true;
	char **p;

	if (g_key_file_load_from_file(kf, record, G_KEY_FILE_NONE, NULL)) {
		pid = g_key_file_get_string(kf, "set", "pid", NULL);
		snaps = g_key_file_get_string_list(kf, "set", "snapshots", NULL, NULL);
		written = g_key_file_get_int64(kf, "set", "written", NULL);
	}
	for (p = snaps; p && *p; p++)
		complete = reap_entry(sets, name, *p, pid ? pid : "?", written) && complete;
	if (pid)
		complete = reap_ldap(sets, dir, pid) && complete;
	if (complete && kfs_rmtree(dir) < 0)
		kfs_warn("reaper: cannot remove %s: %s", dir, g_strerror(errno));
}

static void reap(struct kfs_sets *sets)
{
	g_autoptr(GDir) d = g_dir_open(sets->sets_dir, 0, NULL);
	const char *name;

	while (d && (name = g_dir_read_name(d)))
		reap_one(sets, name);
}

struct kfs_sets *kfs_sets_create(const struct kfs_config *cfg, GError **error)
{
	struct kfs_sets *sets = g_new0(struct kfs_sets, 1);

	sets->cfg = cfg;
	sets->lock_fd = -1;
	sets->sets_dir = g_build_filename(cfg->state_dir, "sets", NULL);
	sets->lock_path = g_build_filename(cfg->state_dir, "lock", NULL);
	sets->live = g_ptr_array_new();
	sets->reaped = g_ptr_array_new_with_free_func(g_free);
	g_mutex_init(&sets->lock);
	g_mutex_init(&sets->take_lock);
	g_cond_init(&sets->changed);
	sets->idle_since = g_get_monotonic_time();
	if (state_dir_open(sets, error) < 0 || lock_take(sets, error) < 0) {
		kfs_sets_destroy(sets);
		return NULL;
	}
	reap(sets);
	return sets;
}

static char *name_from_format(const char *format)
{
	time_t now = time(NULL);
	struct tm tm;
	char buf[256];

	gmtime_r(&now, &tm);
	if (strftime(buf, sizeof(buf), format, &tm) == 0)
		return NULL;
	return g_strdup(buf);
}

static int record_write(const struct kfs_set *set, GError **error)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *path = g_build_filename(set->dir, "record", NULL);
	g_autofree char *data = NULL;
	g_autoptr(GPtrArray) snaps = g_ptr_array_new();
	struct timespec now;
	GError *err = NULL;
	size_t i;
	int ret;

	/* The coarse clock is the one btrfs stamps a new subvolume with: a
	 * snapshot taken after this line is never stamped earlier. */
	clock_gettime(CLOCK_REALTIME_COARSE, &now);
	for (i = 0; i < set->n_sources; i++)
		if (set->sources[i].record)
			g_ptr_array_add(snaps, set->sources[i].record);
	g_key_file_set_string(kf, "set", "name", set->name);
	g_key_file_set_int64(kf, "set", "pid", getpid());
	g_key_file_set_int64(kf, "set", "written",
			     (gint64)now.tv_sec * G_GINT64_CONSTANT(1000000000) + now.tv_nsec);
	g_key_file_set_string_list(kf, "set", "snapshots",
				   (const char *const *)snaps->pdata, snaps->len);
	data = g_key_file_to_data(kf, NULL, NULL);
	if (!g_file_set_contents_full(path, data, -1, G_FILE_SET_CONTENTS_CONSISTENT,
				      0600, &err)) {
		/* The first write into state_dir: a full one shows here, and
		 * mkdir says ENOSPC rather than EIO. */
		ret = g_error_matches(err, G_FILE_ERROR, G_FILE_ERROR_NOSPC) ? -ENOSPC : -EIO;
		g_propagate_error(error, err);
		return ret;
	}
	return 0;
}

static int plan_volume(struct kfs_sets *sets, struct kfs_set *set, struct kfs_source *src,
		       GError **error)
{
	struct kfs_backend *be = backend_get(sets, src->volume->backend, error);

	if (!be)
		return -EIO;
	src->backend = be;
	return be->ops->plan(be, set, src, error);
}

/* Plan the set's sources; nothing is created yet. */
static int set_plan(struct kfs_sets *sets, struct kfs_set *set, GError **error)
{
	const struct kfs_config *cfg = sets->cfg;
	size_t i, n = 0;
	int ret;

	set->sources = g_new0(struct kfs_source, cfg->n_volumes + cfg->n_copies + cfg->n_ldaps);
	for (i = 0; i < cfg->n_volumes; i++, n++) {
		struct kfs_source *src = &set->sources[n];

		kfs_source_init(src);
		src->name = g_strdup(cfg->volumes[i].name);
		src->kind = KFS_SOURCE_VOLUME;
		src->volume = &cfg->volumes[i];
		src->volume_index = i;
		src->ino_space = cfg->volumes[i].ino_space;
		set->n_sources = n + 1;
		ret = plan_volume(sets, set, src, error);
		if (ret < 0)
			return ret;
	}
	for (i = 0; i < cfg->n_copies; i++, n++) {
		struct kfs_source *src = &set->sources[n];

		kfs_source_init(src);
		src->name = g_strdup(cfg->copies[i].name);
		src->kind = KFS_SOURCE_COPY;
		src->volume_index = i;
		src->ino_space = cfg->copies[i].ino_space;
		src->root = g_build_filename(set->dir, "copy", src->name, NULL);
		set->n_sources = n + 1;
	}
	for (i = 0; i < cfg->n_ldaps; i++, n++) {
		struct kfs_source *src = &set->sources[n];

		kfs_source_init(src);
		src->name = g_strdup(cfg->ldaps[i].name);
		src->kind = KFS_SOURCE_LDAP;
		src->volume_index = i;
		src->ino_space = cfg->ldaps[i].ino_space;
		src->root = g_build_filename(set->dir, "ldap", src->name, NULL);
		set->n_sources = n + 1;
	}
	return 0;
}

static int source_open(struct kfs_source *src, GError **error)
{
	src->root_fd = open(src->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (src->root_fd < 0)
		return kfs_error_errno(error, errno, "%s: %s", src->root, g_strerror(errno));
	return 0;
}

/* Live LDIF exports, each complete before the set appears, so that stat's
 * size is what a backup tool reads. */
static int export_ldaps(const struct kfs_config *cfg, struct kfs_set *set, GError **error)
{
	g_autofree char *top = g_build_filename(set->dir, "ldap", NULL);
	size_t i;

	if (cfg->n_ldaps && mkdir(top, 0700) < 0 && errno != EEXIST)
		return kfs_error_errno(error, errno, "%s: %s", top, g_strerror(errno));
	for (i = 0; i < set->n_sources; i++) {
		struct kfs_source *src = &set->sources[i];

		if (src->kind != KFS_SOURCE_LDAP)
			continue;
		if (mkdir(src->root, 0755) < 0)
			return kfs_error_errno(error, errno, "%s: %s", src->root, g_strerror(errno));
		src->exports = kfs_ldap_export(&cfg->ldaps[src->volume_index], src->root, error);
		if (!src->exports)
			return -EIO;
		if (source_open(src, error) < 0)
			return -EIO;
	}
	return 0;
}

/* Inside the lock window: the snapshots and nothing else. */
static int snapshot_volumes(struct kfs_set *set, GError **error)
{
	size_t i;
	int ret;

	for (i = 0; i < set->n_sources; i++) {
		struct kfs_source *src = &set->sources[i];

		if (src->kind != KFS_SOURCE_VOLUME)
			continue;
		/* Whatever the outcome, it may exist now; but a taken name
		 * is somebody else's snapshot, never ours to destroy. */
		src->ours = true;
		ret = src->backend->ops->create(src->backend, src, error);
		if (ret == -EEXIST)
			src->ours = false;
		if (ret < 0)
			return ret;
		kfs_test_point("snapshot");
	}
	return 0;
}

static int open_volumes(struct kfs_set *set, GError **error)
{
	size_t i;
	int ret;

	for (i = 0; i < set->n_sources; i++) {
		struct kfs_source *src = &set->sources[i];

		if (src->kind != KFS_SOURCE_VOLUME)
			continue;
		ret = src->backend->ops->open(src->backend, src, error);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/*
 * Snapshot every volume inside one MySQL lock window, so the database and
 * the mail spool are from the same instant.  Connecting and checking
 * happen before the window; inside it: lock, position, ioctls, unlock.
 */
static int snapshot_in_window(const struct kfs_config *cfg, struct kfs_set *set,
			      GError **error)
{
	struct kfs_mysql *my = NULL;
	int ret;

	if (!cfg->mysql || cfg->mysql->lock == KFS_MYSQL_LOCK_NONE)
		return snapshot_volumes(set, error);
	my = kfs_mysql_connect(cfg, error);
	if (!my)
		return -EIO;
	ret = -EIO;
	if (!kfs_mysql_check(my, set->warnings, error) || !kfs_mysql_lock(my, error))
		goto out_close;
	kfs_test_point("locked");
	ret = snapshot_volumes(set, error);
	if (!kfs_mysql_unlock(my, ret < 0 ? NULL : error) && ret == 0)
		ret = -EIO;
	if (ret == 0)
		set->mysql = kfs_mysql_position_steal(my);
out_close:
	kfs_mysql_destroy(my);
	return ret;
}

static int copy_sources(const struct kfs_config *cfg, struct kfs_set *set, GError **error)
{
	g_autofree char *top = g_build_filename(set->dir, "copy", NULL);
	size_t i;
	char **p;
	int ret;

	if (mkdir(top, 0700) < 0 && errno != EEXIST)
		return kfs_error_errno(error, errno, "%s: %s", top, g_strerror(errno));
	for (i = 0; i < set->n_sources; i++) {
		struct kfs_source *src = &set->sources[i];
		GError *err = NULL;

		if (src->kind != KFS_SOURCE_COPY)
			continue;
		if (mkdir(src->root, 0755) < 0)
			return kfs_error_errno(error, errno, "%s: %s", src->root, g_strerror(errno));
		for (p = cfg->copies[src->volume_index].paths; *p; p++) {
			ret = kfs_copy_tree(*p, src->root, &err);
			if (ret == -ENOENT && access(*p, F_OK) < 0) {
				/* Gone since the config was checked: worth a warning,
				 * not worth losing the whole set. */
				g_ptr_array_add(set->warnings,
						g_strdup_printf("[copy:%s] %s does not exist",
								src->name, *p));
				kfs_warn("[copy:%s] %s does not exist", src->name, *p);
				g_clear_error(&err);
				continue;
			}
			if (ret < 0) {
				ret = kfs_error_errno(error, -ret, "[copy:%s] %s", src->name,
						      err ? err->message : g_strerror(-ret));
				g_clear_error(&err);
				return ret;
			}
		}
		ret = source_open(src, error);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Destroy the snapshot of one volume; false if it is still there. */
static bool destroy_volume(struct kfs_set *set, struct kfs_source *src)
{
	const struct kfs_backend_ops *ops = src->backend->ops;
	int ret;

	/* A mounted snapshot cannot go while anything below it is open. */
	if (ops->revoke)
		kfs_source_revoke(src);
	ret = ops->destroy(src->backend, src);
	if (ret < 0 && ret != -ENOENT) {
		kfs_err("set %s: cannot destroy snapshot %s: %s (left for the next start to reap)",
			set->name, src->snapshot, g_strerror(-ret));
		return false;
	}
	return true;
}

/* Destroy what the set made.  Returns false if something could not be
 * removed: the record then stays for the next start to reap. */
static bool set_teardown(struct kfs_set *set)
{
	bool complete = true;
	size_t i;

	for (i = 0; i < set->n_sources; i++) {
		struct kfs_source *src = &set->sources[i];

		if (src->kind == KFS_SOURCE_VOLUME && src->ours) {
			complete = destroy_volume(set, src) && complete;
			kfs_test_point("teardown");
		}
	}
	if (complete && kfs_rmtree(set->dir) < 0) {
		kfs_err("set %s: cannot remove %s: %s", set->name, set->dir, g_strerror(errno));
		complete = false;
	}
	return complete;
}

static struct kfs_set *find_live(struct kfs_sets *sets, const char *name)
{
	guint i;

	for (i = 0; i < sets->live->len; i++) {
		struct kfs_set *set = g_ptr_array_index(sets->live, i);

		if (!strcmp(set->name, name))
			return set;
	}
	return NULL;
}

static int set_build(struct kfs_sets *sets, struct kfs_set *set, GError **error)
{
	int ret;

	ret = set_plan(sets, set, error);
	if (ret < 0)
		return ret;
	ret = record_write(set, error);
	if (ret < 0)
		return ret;
	ret = snapshot_in_window(sets->cfg, set, error);
	if (ret < 0)
		return ret;
	ret = open_volumes(set, error);
	if (ret < 0)
		return ret;
	ret = export_ldaps(sets->cfg, set, error);
	if (ret < 0)
		return ret;
	ret = copy_sources(sets->cfg, set, error);
	if (ret < 0)
		return ret;
	ret = kfs_manifest_write(sets->cfg, set, error);
	if (ret < 0)
		return ret;
	set->manifest_fd = open(set->manifest, O_PATH | O_CLOEXEC);
	if (set->manifest_fd < 0)
		return kfs_error_errno(error, errno, "%s: %s", set->manifest, g_strerror(errno));
	return 0;
}

static int take_locked(struct kfs_sets *sets, const char *name,
		       struct kfs_set **out, GError **error)
{
	g_autofree char *dir = NULL;
	struct kfs_set *set;
	int ret;

	/* Too long is what every file system says of a name over NAME_MAX;
	 * EINVAL would read as a bad character. */
	if (strlen(name) > NAME_MAX)
		return kfs_error_errno(error, ENAMETOOLONG,
				       "a set name has at most %d bytes, this one %zu", NAME_MAX,
				       strlen(name));
	if (!kfs_name_is_safe(name) || !strcmp(name, "latest"))
		return kfs_error_errno(error, EINVAL, "\"%s\" is not a usable set name", name);
	g_mutex_lock(&sets->lock);
	set = find_live(sets, name);
	g_mutex_unlock(&sets->lock);
	if (set)
		return kfs_error_errno(error, EEXIST, "a set named %s exists already", name);
	dir = g_build_filename(sets->sets_dir, name, NULL);
	if (mkdir(dir, 0700) < 0)
		return kfs_error_errno(error, errno, "%s: %s", dir, g_strerror(errno));

	set = kfs_set_new(name, dir);
	g_ptr_array_extend_and_steal(set->warnings, g_steal_pointer(&sets->reaped));
	sets->reaped = g_ptr_array_new_with_free_func(g_free);
	ret = set_build(sets, set, error);
	if (ret < 0) {
		set_teardown(set);
		kfs_set_unref(set);
		return ret;
	}
	g_mutex_lock(&sets->lock);
	set->seq = ++sets->seq;
	g_ptr_array_add(sets->live, set);
	/* a new max_age deadline */
	sets->changes++;
	g_cond_broadcast(&sets->changed);
	g_mutex_unlock(&sets->lock);
	kfs_info("set %s taken", set->name);
	if (out)
		*out = kfs_set_ref(set);
	return 0;
}

int kfs_sets_take(struct kfs_sets *sets, const char *name,
		  struct kfs_set **out, GError **error)
{
	g_autofree char *auto_name = NULL;
	int ret;

	if (!name) {
		auto_name = name_from_format(sets->cfg->name_format);
		if (!auto_name)
			return kfs_error_errno(error, EINVAL, "name_format \"%s\" gives an empty name",
					       sets->cfg->name_format);
		name = auto_name;
	}
	g_mutex_lock(&sets->take_lock);
	ret = take_locked(sets, name, out, error);
	if (ret == 0 && sets->on_change)
		sets->on_change(sets->on_change_data);
	g_mutex_unlock(&sets->take_lock);
	return ret;
}

/*
 * Is SET in use?  For max_age, which waits for its last handle: expired is
 * set before handles is read, and kfs_sets_handle_close decrements handles
 * before it reads expired, so whichever comes second sees the other's
 * write and the last close is never missed.
 */
static bool expire_in_use(struct kfs_set *set)
{
	g_atomic_int_set(&set->expired, 1);
	return g_atomic_int_get(&set->handles) > 0;
}

/* Take SET out of the live list; with UNUSED_ONLY, only if no handle is
 * open in it (-EBUSY). */
static int drop_unlink(struct kfs_sets *sets, const char *name, bool unused_only,
		       struct kfs_set **out)
{
	struct kfs_set *set;
	int ret = 0;

	g_mutex_lock(&sets->lock);
	set = find_live(sets, name);
	if (!set)
		ret = -ENOENT;
	else if (unused_only && expire_in_use(set))
		ret = -EBUSY;
	else
		g_ptr_array_remove(sets->live, set);
	g_mutex_unlock(&sets->lock);
	*out = ret < 0 ? NULL : set;
	return ret;
}

static int drop(struct kfs_sets *sets, const char *name, bool unused_only, const char *why,
		GError **error)
{
	struct kfs_set *set;
	bool complete;
	int ret;

	g_mutex_lock(&sets->take_lock);
	ret = drop_unlink(sets, name, unused_only, &set);
	if (ret < 0) {
		g_mutex_unlock(&sets->take_lock);
		if (ret == -ENOENT)
			return kfs_error_errno(error, ENOENT, "no set named %s", name);
		return kfs_error_errno(error, EBUSY, "set %s is in use", name);
	}
	g_atomic_int_set(&set->dead, 1);
	if (sets->on_change)
		sets->on_change(sets->on_change_data);
	complete = set_teardown(set);
	g_mutex_unlock(&sets->take_lock);
	kfs_info("set %s dropped%s%s", name, complete ? "" : " (incompletely)", why);
	kfs_set_unref(set);
	if (!complete)
		return kfs_error_errno(error, EBUSY, "set %s could not be torn down completely", name);
	return 0;
}

int kfs_sets_drop(struct kfs_sets *sets, const char *name, GError **error)
{
	return drop(sets, name, false, "", error);
}

int kfs_sets_expire(struct kfs_sets *sets, const char *name)
{
	g_autofree char *why = g_strdup_printf(": older than max_age (%u s)",
					       sets->cfg->max_age);
	g_autoptr(GError) error = NULL;
	struct kfs_set *set;
	bool announced;
	int ret;

	set = kfs_sets_get(sets, name);
	if (!set)
		return -ENOENT;
	announced = g_atomic_int_get(&set->expired);
	ret = drop(sets, name, true, why, &error);
	if (ret == -EBUSY && !announced)
		kfs_info("set %s is older than max_age (%u s), but files or directories are open in it (%d): it is dropped when the last is closed",
			 name, sets->cfg->max_age, g_atomic_int_get(&set->handles));
	else if (ret < 0 && ret != -EBUSY && ret != -ENOENT)
		kfs_err("max_age: %s", error->message);
	kfs_set_unref(set);
	return ret;
}

void kfs_sets_handle_open(struct kfs_sets *sets, struct kfs_set *set)
{
	if (set)
		g_atomic_int_inc(&set->handles);
	g_atomic_int_inc(&sets->handles);
}

/* A change only when it matters to a waiter: the mount or an expired set
 * just became unused.  Every other close costs two atomic operations. */
void kfs_sets_handle_close(struct kfs_sets *sets, struct kfs_set *set)
{
	bool set_unused = set && g_atomic_int_dec_and_test(&set->handles) &&
			  g_atomic_int_get(&set->expired);
	bool idle = g_atomic_int_dec_and_test(&sets->handles);

	if (!set_unused && !idle)
		return;
	g_mutex_lock(&sets->lock);
	if (idle)
		sets->idle_since = g_get_monotonic_time();
	sets->changes++;
	g_cond_broadcast(&sets->changed);
	g_mutex_unlock(&sets->lock);
}

gint64 kfs_sets_idle_since(struct kfs_sets *sets)
{
	gint64 since;

	g_mutex_lock(&sets->lock);
	since = g_atomic_int_get(&sets->handles) > 0 ? -1 : sets->idle_since;
	g_mutex_unlock(&sets->lock);
	return since;
}

guint64 kfs_sets_changes(struct kfs_sets *sets)
{
	guint64 n;

	g_mutex_lock(&sets->lock);
	n = sets->changes;
	g_mutex_unlock(&sets->lock);
	return n;
}

guint64 kfs_sets_wait(struct kfs_sets *sets, guint64 seen, gint64 until)
{
	guint64 n;

	g_mutex_lock(&sets->lock);
	while (sets->changes == seen) {
		if (until == G_MAXINT64)
			g_cond_wait(&sets->changed, &sets->lock);
		else if (!g_cond_wait_until(&sets->changed, &sets->lock, until))
			break;
	}
	n = sets->changes;
	g_mutex_unlock(&sets->lock);
	return n;
}

void kfs_sets_poke(struct kfs_sets *sets)
{
	g_mutex_lock(&sets->lock);
	sets->changes++;
	g_cond_broadcast(&sets->changed);
	g_mutex_unlock(&sets->lock);
}

void kfs_sets_on_change(struct kfs_sets *sets, void (*fn)(void *data), void *data)
{
	g_mutex_lock(&sets->take_lock);
	sets->on_change = fn;
	sets->on_change_data = data;
	g_mutex_unlock(&sets->take_lock);
}

struct kfs_set *kfs_sets_get(struct kfs_sets *sets, const char *name)
{
	struct kfs_set *set;

	g_mutex_lock(&sets->lock);
	set = find_live(sets, name);
	if (set)
		kfs_set_ref(set);
	g_mutex_unlock(&sets->lock);
	return set;
}

char *kfs_sets_latest_name(struct kfs_sets *sets)
{
	char *name = NULL;

	g_mutex_lock(&sets->lock);
	if (sets->live->len)
		name = g_strdup(((struct kfs_set *)
				 g_ptr_array_index(sets->live, sets->live->len - 1))->name);
	g_mutex_unlock(&sets->lock);
	return name;
}

GPtrArray *kfs_sets_list(struct kfs_sets *sets)
{
	GPtrArray *list = g_ptr_array_new_with_free_func((GDestroyNotify)kfs_set_unref);
	guint i;

	g_mutex_lock(&sets->lock);
	for (i = 0; i < sets->live->len; i++)
		g_ptr_array_add(list, kfs_set_ref(g_ptr_array_index(sets->live, i)));
	g_mutex_unlock(&sets->lock);
	return list;
}

bool kfs_sets_destroy(struct kfs_sets *sets)
{
	bool complete = true;

	if (!sets)
		return true;
	kfs_monitor_stop(sets->monitor);
	while (sets->live && sets->live->len) {
		struct kfs_set *set = g_ptr_array_index(sets->live, sets->live->len - 1);
		g_autofree char *name = g_strdup(set->name);

		if (kfs_sets_drop(sets, name, NULL) < 0)
			complete = false;
	}
	if (sets->lock_fd >= 0)
		close(sets->lock_fd);
	kfs_backend_destroy(sets->backends[KFS_BACKEND_LVM]);
	kfs_backend_destroy(sets->backends[KFS_BACKEND_BTRFS]);
	g_ptr_array_unref(sets->live);
	g_ptr_array_unref(sets->reaped);
	g_cond_clear(&sets->changed);
	g_mutex_clear(&sets->lock);
	g_mutex_clear(&sets->take_lock);
	g_free(sets->lock_path);
	g_free(sets->sets_dir);
	g_free(sets);
	return complete;
}
