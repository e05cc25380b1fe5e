/* kolabfs: kolabfs.conf(5) against the running host (kfs_config_check_host):
 * btrfs subvolumes and subdirs, LVM volumes, state_dir, copy paths,
 * password files and ldapi:// sockets.  Creates nothing, contacts no
 * server.
 */
#include "autoconf.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "config-int.h"
#include "secret.h"
#include "../snap/lvm.h"

#define KFS_BTRFS_SUBVOL_INO 256        /* BTRFS_FIRST_FREE_OBJECTID */

#define HERR(cfg, line, group, key, ...) \
	kfs_conf_error(error, KFS_CONFIG_ERROR_HOST, (cfg)->file, (line), \
		       (group), (key), __VA_ARGS__)

static const char *kfs_conf_fs_name(unsigned long type)
{
	switch (type) {
	case EXT4_SUPER_MAGIC: return "ext2/ext3/ext4";
	case XFS_SUPER_MAGIC: return "xfs";
	case TMPFS_MAGIC: return "tmpfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	case NFS_SUPER_MAGIC: return "nfs";
	case FUSE_SUPER_MAGIC: return "a FUSE filesystem";
	case SQUASHFS_MAGIC: return "squashfs";
	case 0x2fc12fc1: return "zfs";  /* not in linux/magic.h */
	default: return NULL;
	}
}

/* A stat() of PATH, for KEY of GROUP, failed with ERR. */
static void kfs_conf_stat_error(const struct kfs_config *cfg, int line,
				const char *group, const char *key,
				const char *path, int err, GError **error)
{
	if (err == ENOENT)
		HERR(cfg, line, group, key, "%s does not exist", path);
	else
		HERR(cfg, line, group, key, "cannot look at %s: %s", path,
		     g_strerror(err));
}

/* Is the volume's path the root of a btrfs subvolume?  *st is its stat. */
static bool kfs_conf_check_subvolume(const struct kfs_config *cfg,
				     const struct kfs_volume_conf *v,
				     struct stat *st, GError **error)
{
	char *group = g_strconcat("volume:", v->name, NULL);
	struct statfs sfs;
	const char *fs;
	bool ok = false;

	if (stat(v->path, st) < 0 || statfs(v->path, &sfs) < 0) {
		kfs_conf_stat_error(cfg, v->path_line, group, "path", v->path,
				    errno, error);
	} else if (!S_ISDIR(st->st_mode)) {
		HERR(cfg, v->path_line, group, "path",
		     "%s is not a directory, expected a btrfs subvolume",
		     v->path);
	} else if ((unsigned long)sfs.f_type != BTRFS_SUPER_MAGIC) {
		fs = kfs_conf_fs_name((unsigned long)sfs.f_type);
		if (fs)
			HERR(cfg, v->path_line, group, "path",
			     "%s is not a btrfs subvolume (it is on %s)",
			     v->path, fs);
		else
			HERR(cfg, v->path_line, group, "path",
			     "%s is not a btrfs subvolume (it is on a filesystem of type 0x%lx)",
			     v->path, (unsigned long)sfs.f_type);
	} else if (st->st_ino != KFS_BTRFS_SUBVOL_INO) {
		HERR(cfg, v->path_line, group, "path",
		     "%s is not a btrfs subvolume (it is a directory inside one; name the subvolume as path and this directory as subdir)",
		     v->path);
	} else {
		ok = true;
	}
	g_free(group);
	return ok;
}

/*
 * subdir must be a directory of the subvolume itself: every component a
 * real directory (a symbolic link would lead the snapshot's view back to
 * the live files), on the same device (a nested subvolume or a mount is
 * not in the snapshot).
 */
static bool kfs_conf_check_subdir(const struct kfs_config *cfg,
				  const struct kfs_volume_conf *v,
				  const struct stat *root, GError **error)
{
	char *group = g_strconcat("volume:", v->name, NULL);
	char **comps = g_strsplit(v->subdir, "/", -1);
	GString *path = g_string_new(v->path);
	struct stat st;
	bool ok = false;
	char **c;

	for (c = comps; *c; c++) {
		if (path->str[path->len - 1] != '/')
			g_string_append_c(path, '/');
		g_string_append(path, *c);
		if (lstat(path->str, &st) < 0) {
			kfs_conf_stat_error(cfg, v->subdir_line, group, "subdir",
					    path->str, errno, error);
			goto free_path;
		}
		if (!S_ISDIR(st.st_mode)) {
			HERR(cfg, v->subdir_line, group, "subdir",
			     "%s is not a directory%s", path->str,
			     S_ISLNK(st.st_mode) ? " (a symbolic link)" : "");
			goto free_path;
		}
		if (st.st_dev != root->st_dev) {
			HERR(cfg, v->subdir_line, group, "subdir",
			     "%s is a separate subvolume or mount, which a snapshot of %s does not include",
			     path->str, v->path);
			goto free_path;
		}
	}
	ok = true;

free_path:
	g_string_free(path, TRUE);
	g_strfreev(comps);
	g_free(group);
	return ok;
}

/*
 * Different paths, one subvolume (symbolic links, bind mounts): it would
 * be snapshotted twice.  ROOTS[0..I] are the stats of the volumes' paths.
 */
static bool kfs_conf_check_distinct(const struct kfs_config *cfg,
				    const struct stat *roots, size_t i,
				    GError **error)
{
	const struct kfs_volume_conf *v = &cfg->volumes[i], *o;
	char *group;
	size_t j;

	for (j = 0; j < i; j++) {
		if (roots[j].st_dev == roots[i].st_dev &&
		    roots[j].st_ino == roots[i].st_ino)
			break;
	}
	if (j == i)
		return true;
	o = &cfg->volumes[j];
	group = g_strconcat("volume:", v->name, NULL);
	HERR(cfg, v->path_line, group, "path",
	     "%s is the same subvolume as %s of [volume:%s] at line %d",
	     v->path, o->path, o->name, o->path_line);
	g_free(group);
	return false;
}

static bool kfs_conf_check_volumes(const struct kfs_config *cfg,
				   GError **error)
{
	struct stat *roots = g_new0(struct stat, cfg->n_volumes);
	bool ok = false;
	size_t i;

	for (i = 0; i < cfg->n_volumes; i++) {
		const struct kfs_volume_conf *v = &cfg->volumes[i];

		if (v->backend != KFS_BACKEND_BTRFS)
			continue;
		if (!kfs_conf_check_subvolume(cfg, v, &roots[i], error))
			goto free_roots;
		if (v->subdir &&
		    !kfs_conf_check_subdir(cfg, v, &roots[i], error))
			goto free_roots;
		if (!kfs_conf_check_distinct(cfg, roots, i, error))
			goto free_roots;
	}
	ok = true;

free_roots:
	g_free(roots);
	return ok;
}

/* The name a set taken now would get. */
static char *kfs_conf_set_name_now(const struct kfs_config *cfg)
{
	time_t now = time(NULL);
	char buf[2 * KFS_NAME_MAX];
	struct tm tm;

	gmtime_r(&now, &tm);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (strftime(buf, sizeof(buf), cfg->name_format, &tm) == 0)
		buf[0] = '\0';
#pragma GCC diagnostic pop
	return g_strdup(buf);
}

/* The snapshot of a set taken now would find its name free. */
static bool kfs_conf_check_lvm_name(const struct kfs_config *cfg, struct kfs_lvm *lvm,
				    const struct kfs_volume_conf *v,
				    const struct kfs_lvm_lv *lv, GError **error)
{
	g_autofree char *set = kfs_conf_set_name_now(cfg);
	g_autofree char *name = kfs_lvm_snapshot_name(lv->vg, lv->name, set);
	g_autofree char *group = g_strconcat("volume:", v->name, NULL);
	g_autoptr(GError) local = NULL;
	struct kfs_lvm_lv taken;
	int ret;

	ret = kfs_lvm_lv_get(lvm, lv->vg, name, &taken, &local);
	if (ret == -ENOENT)
		return true;
	if (ret == 0) {
		kfs_lvm_lv_clear(&taken);
		HERR(cfg, v->lv_line, group, "lv",
		     "%s/%s, the snapshot of a set taken now, exists already", lv->vg, name);
	} else {
		HERR(cfg, v->lv_line, group, "lv", "%s", local->message);
	}
	return false;
}

/*
 * An LVM volume can be snapshotted now (kfs_lvm_volume_check), with the
 * classic snapshots of one VG added up in RESERVED (VG -> guint64 *).
 */
static bool kfs_conf_check_lvm_volume(const struct kfs_config *cfg, struct kfs_lvm *lvm,
				      const struct kfs_volume_conf *v,
				      GHashTable *reserved, GError **error)
{
	g_autofree char *vg = g_strndup(v->lv, strcspn(v->lv, "/"));
	g_autofree char *group = g_strconcat("volume:", v->name, NULL);
	guint64 *sum = g_hash_table_lookup(reserved, vg);
	g_autoptr(GError) local = NULL;
	struct kfs_lvm_lv lv;
	const char *key;
	guint64 bytes;
	bool ok;

	if (kfs_lvm_volume_check(lvm, v, sum ? *sum : 0, &lv, &bytes, &key, &local) < 0) {
		HERR(cfg, strcmp(key, "lv") ? v->snapshot_size_line : v->lv_line, group, key,
		     "%s", local->message);
		return false;
	}
	if (!sum) {
		sum = g_new0(guint64, 1);
		g_hash_table_insert(reserved, g_strdup(vg), sum);
	}
	*sum += bytes;
	ok = kfs_conf_check_lvm_name(cfg, lvm, v, &lv, error);
	kfs_lvm_lv_clear(&lv);
	return ok;
}

/* liblvm2cmd is set up only when a volume is LVM. */
static bool kfs_conf_check_lvm(const struct kfs_config *cfg, GError **error)
{
	g_autoptr(GHashTable) reserved = g_hash_table_new_full(g_str_hash, g_str_equal,
								 g_free, g_free);
	struct kfs_lvm *lvm = NULL;
	bool ok = true;
	size_t i;

	for (i = 0; ok && i < cfg->n_volumes; i++) {
		const struct kfs_volume_conf *v = &cfg->volumes[i];

		if (v->backend != KFS_BACKEND_LVM)
			continue;
		if (!lvm && !(lvm = kfs_lvm_create(error)))
			return false;
		ok = kfs_conf_check_lvm_volume(cfg, lvm, v, reserved, error);
	}
	kfs_lvm_destroy(lvm);
	return ok;
}

static bool kfs_conf_check_state_dir(const struct kfs_config *cfg,
				     GError **error)
{
	char *parent = g_path_get_dirname(cfg->state_dir);
	const char *how = cfg->state_dir_line ? "" : " (the default state_dir)";
	struct stat st;
	bool ok = false;

	if (stat(parent, &st) < 0) {
		if (errno == ENOENT)
			HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
			     "parent directory %s does not exist%s", parent,
			     how);
		else
			HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
			     "cannot look at parent directory %s: %s%s", parent,
			     g_strerror(errno), how);
	} else if (!S_ISDIR(st.st_mode)) {
		HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
		     "parent %s is not a directory%s", parent, how);
	} else if (stat(cfg->state_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
		HERR(cfg, cfg->state_dir_line, "kolabfs", "state_dir",
		     "%s exists and is not a directory%s", cfg->state_dir,
		     how);
	} else {
		ok = true;
	}
	g_free(parent);
	return ok;
}

static bool kfs_conf_check_copy_paths(const struct kfs_config *cfg,
				      GError **error)
{
	struct stat st;
	size_t i;
	char **path;

	for (i = 0; i < cfg->n_copies; i++) {
		const struct kfs_copy_conf *c = &cfg->copies[i];

		for (path = c->paths; *path; path++) {
			char *group;
			int err;

			if (lstat(*path, &st) == 0)
				continue;
			err = errno;
			group = g_strconcat("copy:", c->name, NULL);
			kfs_conf_stat_error(cfg, c->paths_line, group, "paths",
					    *path, err, error);
			g_free(group);
			return false;
		}
	}
	return true;
}

/* Read the password (then wipe it): mode, owner, emptiness show now. */
static bool kfs_conf_check_secret(const struct kfs_config *cfg,
				  const char *group, const char *file,
				  int line, GError **error)
{
	GError *local = NULL;
	char *secret;

	if (!file)
		return true;
	secret = kfs_secret_read(file, &local);
	if (!secret) {
		HERR(cfg, line, group, "password_file", "%s", local->message);
		g_error_free(local);
		return false;
	}
	kfs_secret_free(secret);
	return true;
}

/*
 * libldap only says "Can't contact LDAP server" for a missing socket.
 * An ldapi:// URI without a path uses libldap's built-in default, which
 * is not known here: the exporter's own check reports that one.
 */
static bool kfs_conf_check_ldapi(const struct kfs_config *cfg,
				 const struct kfs_ldap_conf *l,
				 const char *group, GError **error)
{
	struct stat st;

	if (!l->ldapi_path)
		return true;
	if (stat(l->ldapi_path, &st) < 0) {
		if (errno == ENOENT)
			HERR(cfg, l->uri_line, group, "uri",
			     "socket %s does not exist (is the directory server running?)",
			     l->ldapi_path);
		else
			HERR(cfg, l->uri_line, group, "uri",
			     "cannot look at socket %s: %s", l->ldapi_path,
			     g_strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		HERR(cfg, l->uri_line, group, "uri", "%s is not a socket",
		     l->ldapi_path);
		return false;
	}
	return true;
}

static bool kfs_conf_check_servers(const struct kfs_config *cfg,
				   GError **error)
{
	const struct kfs_mysql_conf *m = cfg->mysql;
	bool ok = true;
	size_t i;

	if (m && !kfs_conf_check_secret(cfg, "mysql", m->password_file,
					m->password_file_line, error))
		return false;
	for (i = 0; ok && i < cfg->n_ldaps; i++) {
		const struct kfs_ldap_conf *l = &cfg->ldaps[i];
		char *group = g_strconcat("ldap:", l->name, NULL);

		ok = kfs_conf_check_secret(cfg, group, l->password_file,
					   l->password_file_line, error) &&
		     kfs_conf_check_ldapi(cfg, l, group, error);
		g_free(group);
	}
	return ok;
}

bool kfs_config_check_host(const struct kfs_config *cfg, GError **error)
{
	return kfs_conf_check_volumes(cfg, error) &&
	       kfs_conf_check_lvm(cfg, error) &&
	       kfs_conf_check_copy_paths(cfg, error) &&
	       kfs_conf_check_state_dir(cfg, error) &&
	       kfs_conf_check_servers(cfg, error);
}
