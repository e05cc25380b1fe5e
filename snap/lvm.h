/* kolabfs: LVM through liblvm2cmd.
 *
 * One library handle per process, behind one mutex: liblvm2cmd is not
 * thread-safe and keeps global state.  Its messages go to kolabfs's log;
 * report output (lvs, vgs) is captured for the caller. */
#ifndef KFS_LVM_H
#define KFS_LVM_H

#include <stdbool.h>
#include <glib.h>

struct kfs_lvm;

/* What lvs says about one logical volume. */
struct kfs_lvm_lv {
	char *vg;
	char *name;
	char *attr;             /* lv_attr, 10 characters ("owi-aos---") */
	char *segtype;          /* linear, striped, thin, snapshot, ... */
	char *pool;             /* thin volumes: their pool, else "" */
	char *origin;           /* snapshots: their origin, else "" */
	char **tags;            /* never NULL */
	guint64 size;           /* bytes */
	guint64 vg_free;        /* bytes */
	guint64 extent_size;    /* bytes */
};

/* The process's handle (made on first use, shared after). */
struct kfs_lvm *kfs_lvm_create(GError **error);
void kfs_lvm_destroy(struct kfs_lvm *lvm);

/*
 * Run one LVM command line (printf-style; every name in it must have
 * passed kfs_lvm_name_ok, since the library splits at white space).
 * 0 or -errno (kfs_lvm_errno); on failure *error says what LVM said.
 */
int kfs_lvm_run(struct kfs_lvm *lvm, GError **error, const char *fmt, ...)
	G_GNUC_PRINTF(3, 4);

/* The LV VG/NAME: 0, -ENOENT if there is no such LV (or VG), -errno. */
int kfs_lvm_lv_get(struct kfs_lvm *lvm, const char *vg, const char *name,
		   struct kfs_lvm_lv *lv, GError **error);
void kfs_lvm_lv_clear(struct kfs_lvm_lv *lv);
bool kfs_lvm_lv_has_tag(const struct kfs_lvm_lv *lv, const char *tag);
bool kfs_lvm_lv_is_thin(const struct kfs_lvm_lv *lv);

/* One VG or LV name: [A-Za-z0-9+_.-], no leading '-', not "." or "..",
 * at most 127 bytes. */
bool kfs_lvm_name_ok(const char *name);

/*
 * The name of the snapshot of VG/LV for set SET: "<LV>-kfs-<SET>", with
 * what LVM does not allow in a name turned into '.', and, if that changed
 * the set's name or it had to be shortened (device-mapper names are at
 * most 127 bytes), a hash of the set's name appended: the name stays
 * unique and recognisable.
 */
char *kfs_lvm_snapshot_name(const char *vg, const char *lv, const char *set);
/* The infix that marks kolabfs's snapshots, and their tag. */
#define KFS_LVM_SNAPSHOT_INFIX "-kfs-"
#define KFS_LVM_TAG "kolabfs"

/*
 * The copy-on-write size of a classic snapshot of LV: BYTES, or PERCENT
 * of LV's size (neither: the default share), rounded up to whole
 * extents of its VG.
 */
guint64 kfs_lvm_snapshot_size(guint64 bytes, unsigned int percent,
			      const struct kfs_lvm_lv *lv);

/*
 * Can volume V (backend = lvm) be snapshotted?  Its LV exists, is active,
 * is not a snapshot, pool or internal volume; a thin LV has no
 * snapshot_size; a classic one has room for its snapshot (*BYTES) and
 * RESERVED more in its VG.  0 with *LV filled (clear it), or -errno
 * with *KEY the config key at fault ("lv" or "snapshot_size").
 */
struct kfs_volume_conf;
int kfs_lvm_volume_check(struct kfs_lvm *lvm, const struct kfs_volume_conf *v,
			 guint64 reserved, struct kfs_lvm_lv *lv, guint64 *bytes,
			 const char **key, GError **error);

/*
 * Where volume V's root (its LV's filesystem, or subdir in it) is mounted
 * on this host: NULL-terminated, maybe empty; g_strfreev.  For checks
 * that compare a host path with what a snapshot holds (MySQL's datadir).
 */
char **kfs_lvm_host_roots(const struct kfs_volume_conf *v);

/* One line on volume V for kolabfs --check (newly allocated). */
char *kfs_lvm_volume_describe(struct kfs_lvm *lvm, const struct kfs_volume_conf *v);

/* VG/LV's name in /dev/mapper: every '-' doubled, joined by '-'. */
char *kfs_lvm_dm_name(const char *vg, const char *lv);

/* The one mapping of liblvm2cmd's result (and its error messages) to
 * -errno; EIO when nothing more precise is known. */
int kfs_lvm_errno(int ret, const char *messages);

#endif
