/*
 * kolabfs: the LVM backend.
 *
 * Everything but the snapshot itself happens outside the MySQL lock
 * window: the origin is looked up, the size worked out and checked
 * against the VG's free space, the name chosen and found free (plan);
 * inside the window only lvcreate runs (create); after it a thin
 * snapshot is activated and the snapshot mounted read-only, detached
 * (open).  Every snapshot carries the kolabfs tag and a name with
 * "-kfs-" in it; nothing without both is ever removed.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../src/error.h"
#include "../src/log.h"
#include "../src/mountinfo.h"
#include "backend.h"
#include "dm.h"
#include "lvm.h"
#include "mount.h"

/* Usage above this is worth a warning while the backup still runs. */
#define USAGE_WARN_PERCENT 80.0
/* lvremove while the kernel lets go of the last reference to the mount. */
#define REMOVE_TRIES 8
#define REMOVE_FIRST_WAIT_USEC (50 * 1000)
/* Without udev sync the node may trail the activation a little. */
#define NODE_WAIT_USEC (2 * G_USEC_PER_SEC)

struct lvm_backend {
	struct kfs_backend base;
	struct kfs_lvm *lvm;
};

/* One volume's snapshot. */
struct lvm_snap {
	char *vg;
	char *origin;           /* the LV snapshotted */
	char *name;             /* the snapshot LV */
	char *dm_name;
	bool thin;
	guint64 bytes;          /* classic: copy-on-write space */
	guint64 extent_size;    /* of the VG */
	guint64 vg_free;        /* when planned */
	bool attempted;         /* lvcreate ran: something may exist */
	int mount_fd;
	gint warned;            /* usage over USAGE_WARN_PERCENT was logged */
	gint invalid_logged;
};

static struct kfs_lvm *lvm_of(struct kfs_backend *be)
{
	return ((struct lvm_backend *)be)->lvm;
}

/* "1.5 GiB", with a plain space: messages get grepped. */
static char *size_text(guint64 bytes)
{
	g_autofree char *text = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
	g_auto(GStrv) parts = g_strsplit(text, "\u00a0", -1);

	return g_strjoinv(" ", parts);
}

static void snap_free(struct lvm_snap *snap)
{
	if (snap->mount_fd >= 0)
		close(snap->mount_fd);
	g_free(snap->vg);
	g_free(snap->origin);
	g_free(snap->name);
	g_free(snap->dm_name);
	g_free(snap);
}

static void lvm_release(struct kfs_source *src)
{
	if (src->priv)
		snap_free(src->priv);
	src->priv = NULL;
}

/* Why VG/LV cannot be snapshotted for a backup, or NULL. */
static const char *origin_refusal(const struct kfs_lvm_lv *lv)
{
	switch (lv->attr[0]) {
	case 's':
	case 'S':
		return "is itself a classic snapshot";
	case 't':
		return "is a thin pool (name a thin volume in it)";
	case 'p':
		return "is being moved (pvmove)";
	case 'v':
	case 'i':
	case 'I':
	case 'l':
	case 'L':
	case 'e':
	case 'd':
	case 'D':
		return "is an LVM-internal volume";
	}
	if (lv->attr[4] != 'a')
		return "is not active";
	return NULL;
}

static int check_origin(struct kfs_lvm *lvm, const struct kfs_volume_conf *v,
			struct kfs_lvm_lv *lv, const char **key, GError **error)
{
	g_auto(GStrv) part = g_strsplit(v->lv, "/", 2);
	g_autoptr(GError) err = NULL;
	const char *why;
	int ret;

	*key = "lv";
	ret = kfs_lvm_lv_get(lvm, part[0], part[1], lv, &err);
	if (ret == -ENOENT)
		return kfs_error_errno(error, ENOENT, "%s: no such %s", v->lv,
				       strstr(err->message, "Volume group") ? "volume group" :
				       "logical volume");
	if (ret < 0)
		return kfs_error_errno(error, -ret, "%s: %s", v->lv, err->message);
	why = origin_refusal(lv);
	if (!why && kfs_lvm_lv_is_thin(lv) && v->snapshot_size) {
		*key = "snapshot_size";
		why = "is a thin volume: its snapshots take their space from the pool "
		      "as they need it; remove snapshot_size";
	}
	if (why) {
		kfs_lvm_lv_clear(lv);
		return kfs_error_errno(error, EINVAL, "%s %s", v->lv, why);
	}
	return 0;
}

/* The snapshot_size a message quotes. */
static const char *size_key(const struct kfs_volume_conf *v)
{
	return v->snapshot_size ? v->snapshot_size : "default " KFS_DEFAULT_SNAPSHOT_SIZE;
}

/* Classic: room for the snapshot (and RESERVED for others) in the VG. */
static int check_space(const struct kfs_volume_conf *v, const struct kfs_lvm_lv *lv,
		       guint64 reserved, guint64 *bytes, GError **error)
{
	g_autofree char *free_s = NULL, *need_s = NULL, *other_s = NULL;

	*bytes = kfs_lvm_snapshot_size(v->snapshot_bytes, v->snapshot_percent, lv);
	if (*bytes + reserved <= lv->vg_free)
		return 0;
	free_s = size_text(lv->vg_free);
	need_s = size_text(*bytes);
	other_s = size_text(reserved);
	return kfs_error_errno(error, ENOSPC,
			       "volume group %s has %s free, the snapshot of %s needs %s%s%s (snapshot_size = %s)",
			       lv->vg, free_s, v->lv, need_s, reserved ? " besides the snapshots of earlier volumes, " : "",
			       reserved ? other_s : "", size_key(v));
}

int kfs_lvm_volume_check(struct kfs_lvm *lvm, const struct kfs_volume_conf *v,
			 guint64 reserved, struct kfs_lvm_lv *lv, guint64 *bytes,
			 const char **key, GError **error)
{
	int ret;

	*bytes = 0;
	ret = check_origin(lvm, v, lv, key, error);
	if (ret < 0 || kfs_lvm_lv_is_thin(lv))
		return ret;
	*key = v->snapshot_size ? "snapshot_size" : "lv";
	ret = check_space(v, lv, reserved, bytes, error);
	if (ret < 0)
		kfs_lvm_lv_clear(lv);
	return ret;
}

/* What the classic snapshots planned before SRC in SET take from VG. */
static guint64 planned_in_vg(const struct kfs_set *set, const struct kfs_source *src,
			     const char *vg)
{
	guint64 sum = 0;
	size_t i;

	for (i = 0; &set->sources[i] != src; i++) {
		const struct lvm_snap *o = set->sources[i].priv;

		if (set->sources[i].backend == src->backend && o && !o->thin &&
		    !strcmp(o->vg, vg))
			sum += o->bytes;
	}
	return sum;
}

/* The snapshot's name, and no LV has it yet. */
static int plan_name(struct kfs_backend *be, const struct kfs_set *set,
		     struct kfs_source *src, GError **error)
{
	struct lvm_snap *snap = src->priv;
	g_autoptr(GError) err = NULL;
	struct kfs_lvm_lv taken;
	int ret;

	snap->name = kfs_lvm_snapshot_name(snap->vg, snap->origin, set->name);
	snap->dm_name = kfs_lvm_dm_name(snap->vg, snap->name);
	ret = kfs_lvm_lv_get(lvm_of(be), snap->vg, snap->name, &taken, &err);
	if (ret == 0) {
		kfs_lvm_lv_clear(&taken);
		return kfs_error_errno(error, EEXIST,
				       "[volume:%s] a logical volume %s/%s exists already; kolabfs will not take it over",
				       src->name, snap->vg, snap->name);
	}
	if (ret != -ENOENT)
		return kfs_error_errno(error, -ret, "[volume:%s] %s", src->name, err->message);
	src->snapshot = g_strdup_printf("%s/%s", snap->vg, snap->name);
	src->record = g_strdup_printf("lvm:%s", src->snapshot);
	src->root = src->volume->subdir ?
		    g_strdup_printf("%s/%s", src->record, src->volume->subdir) :
		    g_strdup(src->record);
	return 0;
}

static int lvm_plan(struct kfs_backend *be, const struct kfs_set *set,
		    struct kfs_source *src, GError **error)
{
	const struct kfs_volume_conf *v = src->volume;
	g_autofree char *vg = g_strndup(v->lv, strcspn(v->lv, "/"));
	struct kfs_lvm_lv lv;
	struct lvm_snap *snap;
	const char *key;
	guint64 bytes;
	int ret;

	/* Room in the VG for this set's earlier snapshots there, too. */
	ret = kfs_lvm_volume_check(lvm_of(be), v, planned_in_vg(set, src, vg), &lv, &bytes,
				   &key, error);
	if (ret < 0) {
		g_prefix_error(error, "[volume:%s] ", v->name);
		return ret;
	}
	snap = g_new0(struct lvm_snap, 1);
	snap->mount_fd = -1;
	snap->vg = g_strdup(lv.vg);
	snap->origin = g_strdup(lv.name);
	snap->thin = kfs_lvm_lv_is_thin(&lv);
	snap->bytes = bytes;
	snap->extent_size = lv.extent_size;
	snap->vg_free = lv.vg_free;
	src->priv = snap;
	kfs_lvm_lv_clear(&lv);
	return plan_name(be, set, src, error);
}

/*
 * lvcreate found no room for a classic snapshot that plan found room for:
 * the VG filled up in between (another LV, another snapshot).  Say it as
 * plan does, sizes in bytes; LVM speaks in extents ("insufficient free
 * space (N extents): M required"), read when it is there.  No
 * lvs here: this is inside the lock window.
 */
static int no_room(const struct kfs_source *src, const char *lvm_says, GError **error)
{
	const struct lvm_snap *snap = src->priv;
	g_autofree char *need = size_text(snap->bytes), *then = size_text(snap->vg_free);
	g_autofree char *now = NULL;
	const char *p = strstr(lvm_says, "free space (");
	const char *q = strstr(lvm_says, "but only ");
	guint64 extents;

	/* LVM's two ways of saying it (lvcreate's check, the allocator's) */
	if ((p && sscanf(p, "free space (%" G_GUINT64_FORMAT " extent", &extents) == 1) ||
	    (q && sscanf(q, "but only %" G_GUINT64_FORMAT " available", &extents) == 1))
		now = size_text(extents * snap->extent_size);
	return kfs_error_errno(error, ENOSPC,
			       "[volume:%s] cannot snapshot %s/%s: volume group %s has %s%s free, the snapshot of %s/%s needs %s (snapshot_size = %s); it had %s free when the set was planned, something took the space since (%s)",
			       src->name, snap->vg, snap->origin, snap->vg, now ? now : "too little",
			       now ? "" : " space", snap->vg, snap->origin, need, size_key(src->volume),
			       then, lvm_says);
}

/* Inside the lock window: lvcreate, nothing else.  A thin snapshot is
 * created with the activation-skip flag: not activated here, where every
 * millisecond holds the database. */
static int lvm_create(struct kfs_backend *be, struct kfs_source *src, GError **error)
{
	struct lvm_snap *snap = src->priv;
	g_autoptr(GError) err = NULL;
	int ret;

	snap->attempted = true;
	if (snap->thin)
		ret = kfs_lvm_run(lvm_of(be), &err,
				  "lvcreate --snapshot --setactivationskip y --name %s --addtag "
				  KFS_LVM_TAG " %s/%s", snap->name, snap->vg, snap->origin);
	else
		ret = kfs_lvm_run(lvm_of(be), &err,
				  "lvcreate --snapshot --size %" G_GUINT64_FORMAT "b --name %s --addtag "
				  KFS_LVM_TAG " %s/%s", snap->bytes, snap->name, snap->vg,
				  snap->origin);
	if (ret == -ENOSPC && !snap->thin)
		return no_room(src, err->message, error);
	if (ret < 0)
		return kfs_error_errno(error, -ret, "[volume:%s] cannot snapshot %s/%s: %s",
				       src->name, snap->vg, snap->origin, err->message);
	return 0;
}

/* Without udev (or with a slow one) the node trails the activation. */
static void wait_node(const char *dev)
{
	gint64 until = g_get_monotonic_time() + NODE_WAIT_USEC;

	while (access(dev, F_OK) < 0 && errno == ENOENT && g_get_monotonic_time() < until)
		g_usleep(20 * 1000);
}

/* After the window: activate a thin snapshot (read-write at the block
 * level, so a journal can be replayed), then mount it detached. */
static int lvm_open(struct kfs_backend *be, struct kfs_source *src, GError **error)
{
	struct lvm_snap *snap = src->priv;
	g_autoptr(GError) err = NULL;
	g_autofree char *dev = g_strdup_printf("/dev/mapper/%s", snap->dm_name);
	int ret;

	if (snap->thin) {
		ret = kfs_lvm_run(lvm_of(be), &err,
				  "lvchange --activate y --ignoreactivationskip %s/%s",
				  snap->vg, snap->name);
		if (ret < 0)
			return kfs_error_errno(error, -ret, "[volume:%s] cannot activate %s: %s",
					       src->name, src->snapshot, err->message);
	}
	wait_node(dev);
	ret = kfs_mount_detached(dev, src->volume->subdir, &snap->mount_fd,
				 &src->root_fd, &src->filesystem, &err);
	if (ret < 0)
		return kfs_error_errno(error, -ret, "[volume:%s] snapshot %s: %s", src->name,
				       src->snapshot, err->message);
	kfs_debug("[volume:%s] %s mounted (%s)", src->name, src->snapshot, src->filesystem);
	return 0;
}

/* The kernel's word on a classic snapshot: "USED/TOTAL META" (sectors),
 * or "Invalid" once its copy-on-write space ran out. */
static void classic_health(struct kfs_source *src, const char *params,
			   struct kfs_health *health)
{
	struct lvm_snap *snap = src->priv;
	guint64 used, total;

	if (sscanf(params, "%" G_GUINT64_FORMAT "/%" G_GUINT64_FORMAT, &used, &total) == 2 &&
	    total) {
		health->cow_used = used * 512;
		health->cow_size = total * 512;
		if (100.0 * used / total >= USAGE_WARN_PERCENT &&
		    g_atomic_int_compare_and_exchange(&snap->warned, 0, 1))
			kfs_warn("[volume:%s] snapshot %s: %.0f%% of its copy-on-write space used; it becomes invalid when full (snapshot_size)",
				 src->name, src->snapshot, 100.0 * used / total);
		return;
	}
	/* "Invalid", "Overflow", "Merge failed"; anything else is not known
	 * to be broken */
	if (strcmp(params, "Invalid") && strcmp(params, "Overflow") &&
	    !g_str_has_prefix(params, "Merge failed"))
		return;
	health->state = "invalid";
	kfs_source_set_invalid(src);
	if (g_atomic_int_compare_and_exchange(&snap->invalid_logged, 0, 1))
		kfs_err("[volume:%s] snapshot %s is invalid (%s): its copy-on-write space ran out, its files now read as EIO; make snapshot_size larger",
			src->name, src->snapshot, params);
}

static void lvm_health(struct kfs_backend *be, struct kfs_source *src,
		       struct kfs_health *health)
{
	struct lvm_snap *snap = src->priv;
	char type[32], params[256];

	health->state = "ok";
	health->cow_used = health->cow_size = 0;
	if (kfs_source_is_invalid(src)) {
		health->state = "invalid";
		return;
	}
	if (!snap || snap->mount_fd < 0 ||
	    kfs_dm_status(snap->dm_name, type, sizeof(type), params, sizeof(params)) < 0) {
		health->state = "missing";
		return;
	}
	if (!snap->thin) {
		classic_health(src, params, health);
	} else if (!strcmp(params, "Fail")) {
		health->state = "invalid";
		kfs_source_set_invalid(src);
	}
}

/* Remove VG/NAME if it carries kolabfs's tag and name; lvremove is
 * retried while the kernel still lets go of the last reference to it. */
static int remove_ours(struct kfs_lvm *lvm, const char *vg, const char *name)
{
	gulong wait = REMOVE_FIRST_WAIT_USEC;
	g_autoptr(GError) err = NULL;
	struct kfs_lvm_lv lv;
	bool ours;
	int ret, tries;

	ret = kfs_lvm_lv_get(lvm, vg, name, &lv, &err);
	if (ret < 0) {
		if (ret != -ENOENT)
			kfs_err("%s", err->message);
		return ret;
	}
	ours = kfs_lvm_lv_has_tag(&lv, KFS_LVM_TAG) && strstr(name, KFS_LVM_SNAPSHOT_INFIX);
	kfs_lvm_lv_clear(&lv);
	if (!ours)
		return -EPERM;
	for (tries = 1;; tries++) {
		g_clear_error(&err);
		ret = kfs_lvm_run(lvm, &err, "lvremove --force %s/%s", vg, name);
		if (ret != -EBUSY || tries == REMOVE_TRIES)
			break;
		kfs_debug("lvremove %s/%s: busy, retrying", vg, name);
		g_usleep(wait);
		wait *= 2;
	}
	if (ret < 0)
		kfs_err("%s", err->message);
	return ret;
}

/* What an administrator sizing snapshot_size wants to know. */
static void log_usage(struct kfs_backend *be, struct kfs_source *src)
{
	struct lvm_snap *snap = src->priv;
	g_autofree char *size = NULL;
	struct kfs_health health;

	if (snap->thin || snap->mount_fd < 0)
		return;
	lvm_health(be, src, &health);
	size = size_text(snap->bytes);
	if (health.cow_size)
		kfs_info("[volume:%s] snapshot %s used %.1f%% of its %s of copy-on-write space",
			 src->name, src->snapshot, 100.0 * health.cow_used / health.cow_size, size);
	else
		kfs_info("[volume:%s] snapshot %s: %s at teardown (%s of copy-on-write space)",
			 src->name, src->snapshot, health.state, size);
}

static int lvm_destroy(struct kfs_backend *be, struct kfs_source *src)
{
	struct lvm_snap *snap = src->priv;
	int ret;

	if (!snap || !snap->attempted)
		return -ENOENT;
	log_usage(be, src);
	/* The last descriptor on the detached mount: the kernel unmounts. */
	if (snap->mount_fd >= 0) {
		close(snap->mount_fd);
		snap->mount_fd = -1;
	}
	ret = remove_ours(lvm_of(be), snap->vg, snap->name);
	if (ret == -EPERM) {
		kfs_warn("[volume:%s] %s is not tagged %s: not kolabfs's, left alone",
			 src->name, src->snapshot, KFS_LVM_TAG);
		return -ENOENT;
	}
	return ret;
}

static bool lvm_owns(const char *entry)
{
	return g_str_has_prefix(entry, "lvm:");
}

/* "lvm:VG/NAME", NAME with the infix, the LV with the tag: then ours. */
static int lvm_reap(struct kfs_backend *be, const char *entry, gint64 not_before)
{
	g_auto(GStrv) part = g_strsplit(entry + strlen("lvm:"), "/", -1);

	if (g_strv_length(part) != 2 || !kfs_lvm_name_ok(part[0]) ||
	    !kfs_lvm_name_ok(part[1]) || !strstr(part[1], KFS_LVM_SNAPSHOT_INFIX))
		return -EPERM;
	return remove_ours(lvm_of(be), part[0], part[1]);
}

static void lvm_free(struct kfs_backend *be)
{
	kfs_lvm_destroy(lvm_of(be));
	g_free(be);
}

static const struct kfs_backend_ops lvm_ops = {
	.name = "lvm",
	.revoke = true,         /* a mounted LV cannot be removed */
	.plan = lvm_plan,
	.create = lvm_create,
	.open = lvm_open,
	.destroy = lvm_destroy,
	.health = lvm_health,
	.owns = lvm_owns,
	.reap = lvm_reap,
	.release = lvm_release,
	.free = lvm_free,
};

struct kfs_backend *kfs_lvm_backend_create(GError **error)
{
	struct lvm_backend *be;
	struct kfs_lvm *lvm = kfs_lvm_create(error);

	if (!lvm)
		return NULL;
	be = g_new0(struct lvm_backend, 1);
	be->base.ops = &lvm_ops;
	be->lvm = lvm;
	return &be->base;
}

char *kfs_lvm_volume_describe(struct kfs_lvm *lvm, const struct kfs_volume_conf *v)
{
	g_autofree char *size = NULL, *snap = NULL, *vg_free = NULL;
	struct kfs_lvm_lv lv;
	const char *key;
	guint64 bytes;
	char *text;

	if (kfs_lvm_volume_check(lvm, v, 0, &lv, &bytes, &key, NULL) < 0)
		return g_strdup_printf("lvm %s", v->lv);
	size = size_text(lv.size);
	if (kfs_lvm_lv_is_thin(&lv)) {
		text = g_strdup_printf("lvm thin volume %s (%s, in pool %s)", v->lv, size, lv.pool);
	} else {
		snap = size_text(bytes);
		vg_free = size_text(lv.vg_free);
		text = g_strdup_printf("lvm %s %s (%s), snapshot %s (snapshot_size = %s), %s free in %s",
				       lv.segtype, v->lv, size, snap,
				       v->snapshot_size ? v->snapshot_size : KFS_DEFAULT_SNAPSHOT_SIZE,
				       vg_free, lv.vg);
	}
	kfs_lvm_lv_clear(&lv);
	return text;
}

/* PATH relative to DIR ("" for DIR itself), or NULL if it is not in it. */
static const char *below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!strcmp(dir, "/"))
		return path + 1;
	if (strncmp(path, dir, n) || (path[n] != '/' && path[n]))
		return NULL;
	return path + n + (path[n] == '/');
}

/* One mountinfo line of device DEV: where it shows the filesystem path
 * WANT ("/" or "/subdir"), added to ROOTS. */
static void mount_root(const char *line, dev_t dev, const char *want, GPtrArray *roots)
{
	g_auto(GStrv) f = g_strsplit(line, " ", 6);
	g_autofree char *root = NULL, *mnt = NULL;
	unsigned int maj, min;
	const char *rel;

	if (g_strv_length(f) < 5 || sscanf(f[2], "%u:%u", &maj, &min) != 2 ||
	    makedev(maj, min) != dev)
		return;
	root = kfs_mountinfo_unescape(f[3]);
	mnt = kfs_mountinfo_unescape(f[4]);
	rel = below(want, root);
	if (rel)
		g_ptr_array_add(roots, *rel ? g_build_filename(mnt, rel, NULL) : g_strdup(mnt));
	else if (below(root, want))
		g_ptr_array_add(roots, g_strdup(mnt));  /* all of this mount is inside */
}

char **kfs_lvm_host_roots(const struct kfs_volume_conf *v)
{
	g_autofree char *vg = g_strndup(v->lv, strcspn(v->lv, "/"));
	g_autofree char *dm = kfs_lvm_dm_name(vg, v->lv + strlen(vg) + 1);
	g_autofree char *dev = g_strdup_printf("/dev/mapper/%s", dm);
	g_autofree char *want = g_strconcat("/", v->subdir ? v->subdir : "", NULL);
	g_autofree char *text = NULL;
	GPtrArray *roots = g_ptr_array_new();
	g_auto(GStrv) lines = NULL;
	struct stat st;
	char **l;

	if (strlen(want) > 1 && want[strlen(want) - 1] == '/')
		want[strlen(want) - 1] = '\0';
	if (stat(dev, &st) == 0 && S_ISBLK(st.st_mode) &&
	    g_file_get_contents("/proc/self/mountinfo", &text, NULL, NULL)) {
		lines = g_strsplit(text, "\n", -1);
		for (l = lines; *l; l++)
			mount_root(*l, st.st_rdev, want, roots);
	}
	g_ptr_array_add(roots, NULL);
	return (char **)g_ptr_array_free(roots, FALSE);
}
