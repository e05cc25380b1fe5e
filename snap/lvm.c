/*
 * kolabfs: LVM through liblvm2cmd, in-process.
 *
 * The library is the lvm tool itself: lvm2_run() takes a command line.
 * It is not thread-safe and its state is global (the log function, the
 * device cache), so the process has one handle, shared, and every
 * command runs under one mutex.  The log function is how output comes
 * back: report rows (--nameprefixes: "LVM2_KEY='value' ...") are
 * captured for the caller, errors are collected for its message, and
 * everything else goes to kolabfs's log.
 */
#include "autoconf.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <lvm2cmd.h>

#include "lvm.h"
#include "../src/config.h"
#include "../src/log.h"

#define LVM_NAME_MAX 127
#define REPORT_PREFIX "LVM2_"

struct kfs_lvm {
	void *handle;
	int refs;               /* under shared_lock */
	GMutex lock;            /* one command at a time */
	GPtrArray *rows;        /* the running command's report lines */
	GString *errors;        /* and its error messages */
	char *collate;          /* kolabfs's LC_COLLATE, which reports change */
};

static GMutex shared_lock;
static struct kfs_lvm *shared;

/* Called by the library, always under shared->lock once created. */
static void lvm_log(int level, const char *file, int line, int dm_errno,
		    const char *message)
{
	struct kfs_lvm *lvm = shared;
	const char *text = message;

	while (*text == ' ')
		text++;
	if (level <= LVM2_LOG_ERROR) {
		if (lvm && lvm->errors) {
			if (lvm->errors->len)
				g_string_append(lvm->errors, "; ");
			g_string_append(lvm->errors, text);
		}
		kfs_debug("lvm: %s", text);
	} else if (level == LVM2_LOG_PRINT) {
		if (lvm && lvm->rows && g_str_has_prefix(text, REPORT_PREFIX))
			g_ptr_array_add(lvm->rows, g_strdup(text));
		else if (g_str_has_prefix(text, "WARNING"))
			kfs_warn("lvm: %s", text);
		else    /* "Logical volume ... created.": kolabfs says what matters */
			kfs_debug("lvm: %s", text);
	} else if (level == LVM2_LOG_VERBOSE) {
		kfs_debug("lvm: %s", text);
	}
}

/*
 * lvm2_init() from the main thread reopens stdin and stdout with its own
 * buffers; from any other thread it leaves them alone.  It also sets
 * the umask to 077 and the locale from the environment: both are put
 * back, they are kolabfs's (and LC_COLLATE after each command, which
 * lvm's reports set).
 */
static gpointer init_thread(gpointer data)
{
	return lvm2_init();
}

static void *lvm_init(void)
{
	g_autofree char *locale = g_strdup(setlocale(LC_ALL, NULL));
	mode_t mask = umask(022);
	void *handle;

	umask(mask);
	lvm2_log_fn(lvm_log);
	handle = g_thread_join(g_thread_new("kfs-lvm-init", init_thread, NULL));
	umask(mask);
	if (locale)
		setlocale(LC_ALL, locale);
	return handle;
}

struct kfs_lvm *kfs_lvm_create(GError **error)
{
	struct kfs_lvm *lvm;

	g_mutex_lock(&shared_lock);
	if (shared) {
		shared->refs++;
		lvm = shared;
		goto unlock;
	}
	lvm = g_new0(struct kfs_lvm, 1);
	g_mutex_init(&lvm->lock);
	lvm->refs = 1;
	shared = lvm;
	lvm->handle = lvm_init();
	lvm->collate = g_strdup(setlocale(LC_COLLATE, NULL));
	if (!lvm->handle) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED,
			    "cannot initialise liblvm2cmd");
		shared = NULL;
		g_mutex_clear(&lvm->lock);
		g_free(lvm->collate);
		g_clear_pointer(&lvm, g_free);
	}
unlock:
	g_mutex_unlock(&shared_lock);
	return lvm;
}

void kfs_lvm_destroy(struct kfs_lvm *lvm)
{
	if (!lvm)
		return;
	g_mutex_lock(&shared_lock);
	if (--lvm->refs == 0) {
		lvm2_exit(lvm->handle);
		shared = NULL;
		g_mutex_clear(&lvm->lock);
		g_free(lvm->collate);
		g_free(lvm);
	}
	g_mutex_unlock(&shared_lock);
}

bool kfs_lvm_name_ok(const char *name)
{
	const char *c;

	if (!name || !*name || name[0] == '-' || strlen(name) > LVM_NAME_MAX ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (c = name; *c; c++)
		if (!g_ascii_isalnum(*c) && !strchr("+_.-", *c))
			return false;
	return true;
}

int kfs_lvm_errno(int ret, const char *messages)
{
	static const struct {
		const char *text;
		int err;
	} known[] = {
		{ "not found", ENOENT },
		{ "Failed to find", ENOENT },
		{ "in use", EBUSY },
		{ "open logical volume", EBUSY },
		{ "busy", EBUSY },
		{ "already exists", EEXIST },
		{ "nsufficient free space", ENOSPC },
		{ "nsufficient suitable", ENOSPC },
	};
	size_t i;

	if (ret == LVM2_COMMAND_SUCCEEDED)
		return 0;
	if (ret == LVM2_NO_SUCH_COMMAND)
		return -EINVAL;
	for (i = 0; messages && i < G_N_ELEMENTS(known); i++)
		if (strstr(messages, known[i].text))
			return -known[i].err;
	return -EIO;
}

/* Run CMDLINE with the capture buffers in place; ROWS may be NULL. */
static int run_locked(struct kfs_lvm *lvm, const char *cmdline, GPtrArray *rows,
		      GError **error)
{
	g_autoptr(GString) errors = g_string_new(NULL);
	gint64 start = g_get_monotonic_time();
	int ret;

	g_mutex_lock(&lvm->lock);
	lvm->rows = rows;
	lvm->errors = errors;
	ret = lvm2_run(lvm->handle, cmdline);
	lvm->rows = NULL;
	lvm->errors = NULL;
	if (g_strcmp0(setlocale(LC_COLLATE, NULL), lvm->collate))
		setlocale(LC_COLLATE, lvm->collate);
	g_mutex_unlock(&lvm->lock);
	kfs_debug("lvm %s: %d (%.1f ms)", cmdline, ret,
		  (g_get_monotonic_time() - start) / 1000.0);
	ret = kfs_lvm_errno(ret, errors->str);
	if (ret < 0)
		g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-ret),
			    "lvm %s: %s", cmdline,
			    errors->len ? errors->str : "failed");
	return ret;
}

int kfs_lvm_run(struct kfs_lvm *lvm, GError **error, const char *fmt, ...)
{
	g_autofree char *cmdline = NULL;
	va_list ap;

	va_start(ap, fmt);
	cmdline = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	return run_locked(lvm, cmdline, NULL, error);
}

/* "LVM2_A='x' LVM2_B='y y'" -> {"A": "x", "B": "y y"}. */
static GHashTable *row_parse(const char *row)
{
	GHashTable *h = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
	const char *p = row, *eq, *end;

	while ((p = strstr(p, REPORT_PREFIX))) {
		p += strlen(REPORT_PREFIX);
		eq = strchr(p, '=');
		if (!eq || eq[1] != '\'')
			break;
		end = strchr(eq + 2, '\'');
		if (!end)
			break;
		g_hash_table_insert(h, g_ascii_strdown(p, eq - p),
				    g_strndup(eq + 2, end - eq - 2));
		p = end + 1;
	}
	return h;
}

static char *field(GHashTable *row, const char *key)
{
	const char *v = g_hash_table_lookup(row, key);

	return g_strdup(v ? v : "");
}

static guint64 field_bytes(GHashTable *row, const char *key)
{
	const char *v = g_hash_table_lookup(row, key);

	return v ? g_ascii_strtoull(v, NULL, 10) : 0;
}

#define LV_FIELDS "lv_name,vg_name,lv_attr,segtype,pool_lv,origin,lv_tags,lv_size,vg_free,vg_extent_size"

static void lv_fill(struct kfs_lvm_lv *lv, GHashTable *row)
{
	g_autofree char *tags = field(row, "lv_tags");

	lv->name = field(row, "lv_name");
	lv->vg = field(row, "vg_name");
	lv->attr = field(row, "lv_attr");
	lv->segtype = field(row, "segtype");
	lv->pool = field(row, "pool_lv");
	lv->origin = field(row, "origin");
	lv->tags = *tags ? g_strsplit(tags, ",", -1) : g_new0(char *, 1);
	lv->size = field_bytes(row, "lv_size");
	lv->vg_free = field_bytes(row, "vg_free");
	lv->extent_size = field_bytes(row, "vg_extent_size");
}

int kfs_lvm_lv_get(struct kfs_lvm *lvm, const char *vg, const char *name,
		   struct kfs_lvm_lv *lv, GError **error)
{
	g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *cmdline = NULL;
	g_autoptr(GHashTable) row = NULL;
	int ret;

	memset(lv, 0, sizeof(*lv));
	if (!kfs_lvm_name_ok(vg) || !kfs_lvm_name_ok(name)) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
			    "\"%s/%s\" is not an LVM name", vg, name);
		return -EINVAL;
	}
	/* --reportformat basic: an lvm.conf asking for JSON changes nothing. */
	cmdline = g_strdup_printf("lvs --reportformat basic --nameprefixes --noheadings "
				  "--units b --nosuffix -o " LV_FIELDS " %s/%s", vg, name);
	ret = run_locked(lvm, cmdline, rows, error);
	if (ret < 0)
		return ret;
	if (rows->len != 1) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO,
			    "lvm %s: %u rows, expected 1", cmdline, rows->len);
		return -EIO;
	}
	row = row_parse(g_ptr_array_index(rows, 0));
	lv_fill(lv, row);
	if (strcmp(lv->name, name) || strcmp(lv->vg, vg) || strlen(lv->attr) < 10) {
		g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_IO,
			    "lvm %s: unexpected report \"%s\"", cmdline,
			    (char *)g_ptr_array_index(rows, 0));
		kfs_lvm_lv_clear(lv);
		return -EIO;
	}
	return 0;
}

void kfs_lvm_lv_clear(struct kfs_lvm_lv *lv)
{
	g_free(lv->vg);
	g_free(lv->name);
	g_free(lv->attr);
	g_free(lv->segtype);
	g_free(lv->pool);
	g_free(lv->origin);
	g_strfreev(lv->tags);
	memset(lv, 0, sizeof(*lv));
}

bool kfs_lvm_lv_has_tag(const struct kfs_lvm_lv *lv, const char *tag)
{
	return lv->tags && g_strv_contains((const char *const *)lv->tags, tag);
}

bool kfs_lvm_lv_is_thin(const struct kfs_lvm_lv *lv)
{
	return lv->segtype && !strcmp(lv->segtype, "thin");
}

char *kfs_lvm_dm_name(const char *vg, const char *lv)
{
	GString *s = g_string_new(NULL);
	const char *part[] = { vg, lv }, *c;
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(part); i++) {
		if (i)
			g_string_append_c(s, '-');
		for (c = part[i]; *c; c++) {
			if (*c == '-')
				g_string_append_c(s, '-');
			g_string_append_c(s, *c);
		}
	}
	return g_string_free(s, FALSE);
}

/*
 * Room in a device-mapper name (127 bytes) for the snapshot's own device
 * and the layers LVM stacks under it ("-cow", "-real", "-tpool"): the
 * escaped "VG-NAME" stays within 110.
 */
#define DM_NAME_ROOM 110

static size_t dm_len(const char *vg, const char *lv)
{
	g_autofree char *dm = kfs_lvm_dm_name(vg, lv);

	return strlen(dm);
}

static char *join_name(const GString *lv, const GString *set, const char *hash)
{
	return g_strdup_printf("%s" KFS_LVM_SNAPSHOT_INFIX "%s%s", lv->str, set->str, hash);
}

static bool name_fits(const char *vg, const GString *lv, const GString *set,
		      const char *hash)
{
	g_autofree char *name = join_name(lv, set, hash);

	return dm_len(vg, name) <= DM_NAME_ROOM;
}

char *kfs_lvm_snapshot_name(const char *vg, const char *lv, const char *set)
{
	g_autoptr(GString) lv_part = g_string_new(lv);
	g_autoptr(GString) set_part = g_string_new(NULL);
	guint32 hash = 2166136261u;
	bool changed = false;
	char suffix[16];
	const char *c;

	/* '_' goes too: LVM reserves "_tmeta", "_rimage", ... anywhere in a
	 * name, and the set's name is the administrator's free choice. */
	for (c = set; *c; c++) {
		bool ok = g_ascii_isalnum(*c) || strchr("+.-", *c);

		changed |= !ok;
		g_string_append_c(set_part, ok ? *c : '.');
		hash = (hash ^ (unsigned char)*c) * 16777619u;
	}
	if (!changed && name_fits(vg, lv_part, set_part, ""))
		return join_name(lv_part, set_part, "");
	/* Shorten the set's part first, then the origin's; the hash stays. */
	snprintf(suffix, sizeof(suffix), ".%08x", hash);
	while (set_part->len && !name_fits(vg, lv_part, set_part, suffix))
		g_string_truncate(set_part, set_part->len - 1);
	while (lv_part->len > 1 && !name_fits(vg, lv_part, set_part, suffix))
		g_string_truncate(lv_part, lv_part->len - 1);
	return join_name(lv_part, set_part, suffix);
}

guint64 kfs_lvm_snapshot_size(guint64 bytes, unsigned int percent,
			      const struct kfs_lvm_lv *lv)
{
	guint64 extent = lv->extent_size ? lv->extent_size : 4 << 20;

	if (!bytes) {
		if (!percent)
			percent = KFS_DEFAULT_SNAPSHOT_PERCENT;
		/* rounded up, without overflowing on huge LVs */
		bytes = lv->size / 100 * percent + (lv->size % 100 * percent + 99) / 100;
	}
	return (bytes + extent - 1) / extent * extent;
}
