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

/* The one mapping of liblvm2cmd's result (and its error messages) to
 * -errno; EIO when nothing more precise is known. */
int kfs_lvm_errno(int ret, const char *messages);

#endif
