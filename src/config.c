/* kolabfs: the configuration file, kolabfs.conf(5).
 *
 * GKeyFile parses the values (escapes, ;-separated lists) but knows no
 * line numbers, and silently merges duplicate groups and keys.  So the raw
 * text is first read by a small line indexer (config-index.c) that records
 * the line of every group and key, refuses duplicates and malformed lines,
 * and hands GKeyFile a cleaned copy of the text.  Every message then names
 * the file, the line, the group and the key.  Here: the typed values, the
 * groups, and kfs_config_parse/load/destroy; the checks against the host
 * are in config-host.c.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/un.h>

#include "config-int.h"
#include "../fs/filter.h"
#include "../snap/lvm.h"

#define KFS_RESERVED_NAME "MANIFEST.json"

G_DEFINE_QUARK(kfs-config-error-quark, kfs_config_error)

/* ------------------------------------------------------------------ */
/* Messages                                                            */

/* "FILE:LINE: [GROUP] KEY: what", leaving out what is unknown. */
void kfs_conf_error(GError **error, int code, const char *file, int line,
		    const char *group, const char *key, const char *fmt, ...)
{
	GString *msg = g_string_new(file);
	va_list ap;

	if (line > 0)
		g_string_append_printf(msg, ":%d", line);
	g_string_append(msg, ": ");
	if (group)
		g_string_append_printf(msg, "[%s]%s", group, key ? " " : ": ");
	if (key)
		g_string_append_printf(msg, "%s: ", key);
	va_start(ap, fmt);
	g_string_append_vprintf(msg, fmt, ap);
	va_end(ap);
	g_set_error_literal(error, KFS_CONFIG_ERROR, code, msg->str);
	g_string_free(msg, TRUE);
}

/* ------------------------------------------------------------------ */
/* Names and inode-number spaces                                       */

bool kfs_name_is_safe(const char *name)
{
	const unsigned char *p;
	size_t len;

	if (!name)
		return false;
	len = strlen(name);
	/* A leading '.' also rules out "." and "..". */
	if (len == 0 || len > KFS_NAME_MAX || name[0] == '.')
		return false;
	if (!g_utf8_validate(name, (gssize)len, NULL))
		return false;
	for (p = (const unsigned char *)name; *p; p++)
		if (*p == '/' || *p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static guint32 kfs_fnv1a(guint32 h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * FNV-1a (32 bits) of "KIND:NAME", folded to 16 bits and mapped into
 * 1..0xfffe: 0 is kolabfs's virtual files, 0xffff its files in state_dir.
 * Derived from the NAME alone so that st_ino stays the same from set to
 * set and mount to mount.
 */
unsigned int kfs_ino_space_of(const char *kind, const char *name)
{
	guint32 h = 2166136261u;

	h = kfs_fnv1a(h, kind);
	h = kfs_fnv1a(h, ":");
	h = kfs_fnv1a(h, name);
	h = (h >> 16) ^ (h & 0xffff);
	return h % 0xfffe + 1;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

struct kfs_conf_parser {
	const char *file;
	GKeyFile *kf;
	struct kfs_conf_index idx;
	struct kfs_config *cfg;
	size_t n_volumes;       /* parsed so far */
	size_t n_copies;
	size_t n_ldaps;
	GHashTable *names;      /* NAME -> group, shared by every kind */
	GHashTable *spaces;     /* inode-number space -> group */
};

#define PERR(p, line, g, key, ...) \
	kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, (p)->file, (line), \
		       (g)->name, (key), __VA_ARGS__)

static int kfs_conf_line(const struct kfs_conf_group *g, const char *key)
{
	const struct kfs_conf_key *k = kfs_conf_group_key(g, key);

	return k ? k->line : g->line;
}

/* Every key of G must be in KNOWN (NULL-terminated). */
static bool kfs_conf_check_keys(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *const *known, GError **error)
{
	guint i;

	for (i = 0; i < g->keys->len; i++) {
		const struct kfs_conf_key *k = g_ptr_array_index(g->keys, i);
		char *list;

		if (g_strv_contains(known, k->name))
			continue;
		list = g_strjoinv(", ", (char **)known);
		PERR(p, k->line, g, k->name, "unknown key, expected one of %s",
		     list);
		g_free(list);
		return false;
	}
	return true;
}

/* How kfs_conf_get() and kfs_conf_get_list() treat a key. */
enum {
	KFS_CONF_REQUIRED = 1 << 0,     /* absence is an error */
	KFS_CONF_MAY_BE_EMPTY = 1 << 1, /* "key =" means "none" */
};

/* Has G got KEY?  If not and FLAGS require it, say so. */
static bool kfs_conf_has(struct kfs_conf_parser *p,
			 const struct kfs_conf_group *g, const char *key,
			 unsigned int flags, const char *expect, GError **error)
{
	if (kfs_conf_group_key(g, key))
		return true;
	if (flags & KFS_CONF_REQUIRED)
		PERR(p, g->line, g, key, "missing, expected %s", expect);
	return false;
}

/*
 * The string value of KEY in G, or NULL in *value when the key is absent.
 * EXPECT says what the value should be, for messages.
 */
static bool kfs_conf_get(struct kfs_conf_parser *p,
			 const struct kfs_conf_group *g, const char *key,
			 unsigned int flags, const char *expect, char **value,
			 GError **error)
{
	int line = kfs_conf_line(g, key);
	GError *local = NULL;

	*value = NULL;
	if (!kfs_conf_has(p, g, key, flags, expect, error))
		return !(flags & KFS_CONF_REQUIRED);
	/* On a bad escape GKeyFile returns the raw value *and* an error. */
	*value = g_key_file_get_string(p->kf, g->name, key, &local);
	if (local) {
		PERR(p, line, g, key, "%s", local->message);
		g_error_free(local);
		g_clear_pointer(value, g_free);
		return false;
	}
	if (!**value && !(flags & KFS_CONF_MAY_BE_EMPTY)) {
		PERR(p, line, g, key, "expected a non-empty value (%s)", expect);
		g_clear_pointer(value, g_free);
		return false;
	}
	return true;
}

/*
 * The ;-separated list of KEY in G, or NULL in *list when the key is
 * absent.  Every element is stripped of surrounding white space ("a; b")
 * and must not be empty.
 */
static bool kfs_conf_get_list(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g, const char *key,
			      unsigned int flags, const char *expect,
			      char ***list, GError **error)
{
	int line = kfs_conf_line(g, key);
	GError *local = NULL;
	char **l, **e;

	*list = NULL;
	if (!kfs_conf_has(p, g, key, flags, expect, error))
		return !(flags & KFS_CONF_REQUIRED);
	l = g_key_file_get_string_list(p->kf, g->name, key, NULL, &local);
	if (local) {
		PERR(p, line, g, key, "%s", local->message);
		g_error_free(local);
		g_strfreev(l);
		return false;
	}
	if (!l[0] && !(flags & KFS_CONF_MAY_BE_EMPTY)) {
		PERR(p, line, g, key, "expected a non-empty value (%s)", expect);
		goto free_list;
	}
	for (e = l; *e; e++) {
		if (!*g_strstrip(*e)) {
			PERR(p, line, g, key,
			     "expected %s, got an empty element", expect);
			goto free_list;
		}
	}
	*list = l;
	return true;

free_list:
	g_strfreev(l);
	return false;
}

/* Absolute path in canonical form (no filesystem access), or NULL. */
static char *kfs_conf_abs_path(const char *value)
{
	if (!g_path_is_absolute(value))
		return NULL;
	return g_canonicalize_filename(value, "/");
}

/* Is B equal to A or inside it?  Both canonical. */
static bool kfs_conf_path_within(const char *b, const char *a)
{
	size_t n = strlen(a);

	if (strcmp(a, "/") == 0)
		return true;
	return strncmp(b, a, n) == 0 && (b[n] == '\0' || b[n] == '/');
}

/* Does S hold a control character (a "\\n" or "\\t" escape, say)? */
static bool kfs_conf_has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Room for a Unix socket's path in struct sockaddr_un, with its NUL. */
#define KFS_SOCKET_PATH_MAX (sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

/* KEY as an absolute path in canonical form, NULL in *path when absent. */
static bool kfs_conf_get_path(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g, const char *key,
			      unsigned int flags, char **path, GError **error)
{
	char *value;

	*path = NULL;
	if (!kfs_conf_get(p, g, key, flags, "an absolute path", &value,
			  error))
		return false;
	if (!value)
		return true;
	*path = kfs_conf_abs_path(value);
	if (!*path)
		PERR(p, kfs_conf_line(g, key), g, key,
		     "expected an absolute path, got \"%s\"", value);
	g_free(value);
	return *path != NULL;
}

/*
 * KEY as a whole number in MIN..MAX (decimal, no sign), DEF when absent.
 * WHAT names the number for messages ("a port number").
 */
static bool kfs_conf_get_uint(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g, const char *key,
			      const char *what, unsigned int min,
			      unsigned int max, unsigned int def,
			      unsigned int *out, GError **error)
{
	char *expect = g_strdup_printf("%s from %u to %u", what, min, max);
	bool ok = false;
	char *value;
	guint64 n;

	*out = def;
	if (!kfs_conf_get(p, g, key, 0, expect, &value, error))
		goto free_expect;
	if (!value) {
		ok = true;
		goto free_expect;
	}
	if (g_ascii_string_to_unsigned(value, 10, min, max, &n, NULL)) {
		*out = (unsigned int)n;
		ok = true;
	} else {
		PERR(p, kfs_conf_line(g, key), g, key,
		     "expected %s, got \"%s\"", expect, value);
	}
	g_free(value);
free_expect:
	g_free(expect);
	return ok;
}

/* KEY as a boolean (true or false, or GKeyFile's 1 or 0), DEF when absent. */
static bool kfs_conf_get_bool(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g, const char *key,
			      bool def, bool *out, GError **error)
{
	char *value;
	bool ok = true;

	*out = def;
	if (!kfs_conf_get(p, g, key, 0, "true or false", &value, error))
		return false;
	if (!value)
		return true;
	if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
		*out = true;
	} else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
		*out = false;
	} else {
		PERR(p, kfs_conf_line(g, key), g, key,
		     "expected true or false, got \"%s\"", value);
		ok = false;
	}
	g_free(value);
	return ok;
}

/*
 * KEY as the index of one of CHOICES (NULL-terminated) in *out, DEF when
 * absent.
 */
static bool kfs_conf_get_choice(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g, const char *key,
				const char *const *choices, int def, int *out,
				GError **error)
{
	char *expect, *value;
	bool ok = false;
	int i;

	*out = def;
	expect = g_strjoinv(", ", (char **)choices);
	if (!kfs_conf_get(p, g, key, 0, expect, &value, error))
		goto free_expect;
	ok = true;
	if (!value)
		goto free_expect;
	for (i = 0; choices[i] && strcmp(choices[i], value) != 0; i++)
		;
	if (choices[i]) {
		*out = i;
	} else {
		PERR(p, kfs_conf_line(g, key), g, key,
		     "expected one of %s, got \"%s\"", expect, value);
		ok = false;
	}
	g_free(value);
free_expect:
	g_free(expect);
	return ok;
}

/* ------------------------------------------------------------------ */
/* Groups                                                              */

/*
 * Is NAME, the NAME of group G, usable as a directory of every set, and
 * not taken by another volume or copy?  Then claim it, and the inode-number
 * space derived from it (returned in *space).
 */
static bool kfs_conf_claim_name(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *kind, const char *name,
				unsigned int *space, GError **error)
{
	const struct kfs_conf_group *other;

	if (!kfs_name_is_safe(name) || strcmp(name, KFS_RESERVED_NAME) == 0) {
		PERR(p, g->line, g, NULL,
		     "expected a NAME that is one directory name (not empty, no '/', no leading '.', no control characters, at most %d bytes, not %s), got \"%s\"",
		     KFS_NAME_MAX, KFS_RESERVED_NAME, name);
		return false;
	}
	other = g_hash_table_lookup(p->names, name);
	if (other) {
		PERR(p, g->line, g, NULL,
		     "NAME \"%s\" is already used by [%s] at line %d (volumes, LDAP exports and copies share the directory of a set)",
		     name, other->name, other->line);
		return false;
	}
	g_hash_table_insert(p->names, (char *)name, (gpointer)g);

	/* Two NAMEs hashing alike would mix their inode numbers.  Rare
	 * (1 in 65534 per pair); renaming is better than a number that
	 * changes with the order of the file. */
	*space = kfs_ino_space_of(kind, name);
	other = g_hash_table_lookup(p->spaces, GUINT_TO_POINTER(*space));
	if (other) {
		PERR(p, g->line, g, NULL,
		     "its inode-number space 0x%04x (a hash of the NAME) is the same as that of [%s] at line %d; please rename one of them",
		     *space, other->name, other->line);
		return false;
	}
	g_hash_table_insert(p->spaces, GUINT_TO_POINTER(*space), (gpointer)g);
	return true;
}

/* Does FMT have a conversion other than "%%"? */
static bool kfs_conf_has_conversion(const char *fmt)
{
	const char *c;

	for (c = fmt; (c = strchr(c, '%')); c += 2) {
		if (c[1] == '\0')
			return false;
		if (c[1] != '%')
			return true;
	}
	return false;
}

/*
 * Where name_format is tried: 2026-11-27T04:30:00Z, then 24 steps of 28
 * days, 21 hours, 7 minutes and 7 seconds, which meet every month, weekday
 * and hour, and days, minutes and seconds of one digit and of two.
 */
#define KFS_FORMAT_INSTANT 1795753800
#define KFS_FORMAT_STEP (28 * 86400 + 21 * 3600 + 7 * 60 + 7)
#define KFS_FORMAT_TRIES 25

/*
 * Format TM as a set's name would be; false with a message if the name is
 * unsafe.  A nonzero T names the instant in the message, else TM is one of
 * the widest: then its date and time are named.
 */
static bool kfs_conf_try_format(struct kfs_conf_parser *p, const struct kfs_conf_group *g,
				const char *fmt, const struct tm *tm, time_t t,
				char *buf, size_t size, GError **error)
{
	g_autofree char *shown = NULL;
	char when[64];
	size_t n;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	n = strftime(buf, size, fmt, tm);
#pragma GCC diagnostic pop
	if (n > 0 && kfs_name_is_safe(buf))
		return true;
	if (t == KFS_FORMAT_INSTANT)
		when[0] = '\0';
	else
		strftime(when, sizeof(when), t ? " at %Y-%m-%dT%H:%M:%SZ" :
			 " at its longest (%A %d %B, %H:%M:%S)", tm);
	shown = g_strescape(n ? buf : "", NULL);
	PERR(p, kfs_conf_line(g, "name_format"), g, "name_format",
	     "expected a format that makes one directory name (not empty, no '/', no leading '.', no control characters, at most %d bytes), but \"%s\" makes \"%s\"%s%s",
	     KFS_NAME_MAX, fmt, shown, n ? "" : " (nothing, or more than 1000 bytes)", when);
	return false;
}

/*
 * name_format must make a safe, changing directory name whenever a set is
 * taken.  Format the instants above the way a set is named (strftime(3),
 * UTC), and the widest times there are: the width of a name varies with
 * the weekday and month names ("%A" is "Friday" or "Wednesday") and, with
 * glibc's "%-d", the number of digits.  The widest is a Wednesday, in the
 * month with the widest name and number, with every number of two digits
 * (three for the day of the year); strftime() takes the fields as given.
 */
static bool kfs_conf_check_name_format(struct kfs_conf_parser *p,
				       const struct kfs_conf_group *g,
				       const char *fmt, GError **error)
{
	char buf[4 * KFS_NAME_MAX], first[4 * KFS_NAME_MAX];
	bool changes = false;
	struct tm tm;
	time_t t;
	int i;

	if (!kfs_conf_has_conversion(fmt))
		goto same_name;
	for (i = 0; i < KFS_FORMAT_TRIES; i++) {
		t = KFS_FORMAT_INSTANT + (time_t)i * KFS_FORMAT_STEP;
		gmtime_r(&t, &tm);
		if (!kfs_conf_try_format(p, g, fmt, &tm, t, buf, sizeof(buf), error))
			return false;
		if (i == 0)
			memcpy(first, buf, strlen(buf) + 1);
		else
			changes |= strcmp(first, buf) != 0;
	}
	for (i = 0; i < 12; i++) {
		tm = (struct tm){ .tm_year = 2026 - 1900, .tm_mon = i, .tm_mday = 28,
				  .tm_hour = 23, .tm_min = 59, .tm_sec = 59,
				  .tm_wday = 3, .tm_yday = 300 };
		if (!kfs_conf_try_format(p, g, fmt, &tm, 0, buf, sizeof(buf), error))
			return false;
	}
	if (changes)
		return true;

same_name:
	PERR(p, kfs_conf_line(g, "name_format"), g, "name_format",
	     "expected a strftime(3) format with a conversion such as %%Y, got \"%s\" (every set would get the same name)",
	     fmt);
	return false;
}

static bool kfs_conf_parse_main(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g, GError **error)
{
	static const char *const known[] = {
		"state_dir", "name_format", "idle_timeout", "max_age", NULL
	};
	struct kfs_config *cfg = p->cfg;
	char *value;

	if (!kfs_conf_check_keys(p, g, known, error))
		return false;

	if (!kfs_conf_get(p, g, "state_dir", 0, "an absolute path", &value,
			  error))
		return false;
	if (value) {
		char *dir = kfs_conf_abs_path(value);

		cfg->state_dir_line = kfs_conf_line(g, "state_dir");
		if (!dir || strcmp(dir, "/") == 0) {
			/* kolabfs makes state_dir 0700: never "/". */
			PERR(p, cfg->state_dir_line, g, "state_dir",
			     "expected an absolute path other than /, got \"%s\"",
			     value);
			g_free(dir);
			g_free(value);
			return false;
		}
		g_free(value);
		g_free(cfg->state_dir);
		cfg->state_dir = dir;
	}

	if (!kfs_conf_get(p, g, "name_format", 0, "a strftime(3) format",
			  &value, error))
		return false;
	if (value) {
		if (!kfs_conf_check_name_format(p, g, value, error)) {
			g_free(value);
			return false;
		}
		g_free(cfg->name_format);
		cfg->name_format = value;
	}
	return kfs_conf_get_uint(p, g, "idle_timeout",
				 "a whole number of seconds", 0,
				 KFS_MAX_LIFETIME_SECONDS, 0, &cfg->idle_timeout,
				 error) &&
	       kfs_conf_get_uint(p, g, "max_age",
				 "a whole number of seconds", 0,
				 KFS_MAX_LIFETIME_SECONDS, 0, &cfg->max_age, error);
}

/* Keys of one backend, refused in the other's volumes. */
static bool kfs_conf_refuse_keys(struct kfs_conf_parser *p,
				 const struct kfs_conf_group *g,
				 const char *const *keys, const char *why,
				 GError **error)
{
	const char *const *key;

	for (key = keys; *key; key++) {
		if (kfs_conf_group_key(g, *key)) {
			PERR(p, kfs_conf_line(g, *key), g, *key, "%s", why);
			return false;
		}
	}
	return true;
}

static bool kfs_conf_parse_backend(struct kfs_conf_parser *p,
				   const struct kfs_conf_group *g,
				   struct kfs_volume_conf *v, GError **error)
{
	static const char *const lvm_only[] = { "lv", "snapshot_size", NULL };
	static const char *const btrfs_only[] = { "path", NULL };
	char *value;
	bool ok = true;

	if (!kfs_conf_get(p, g, "backend", KFS_CONF_REQUIRED,
			  "one of btrfs, lvm", &value, error))
		return false;
	if (strcmp(value, "btrfs") == 0) {
		v->backend = KFS_BACKEND_BTRFS;
	} else if (strcmp(value, "lvm") == 0) {
		v->backend = KFS_BACKEND_LVM;
	} else {
		PERR(p, kfs_conf_line(g, "backend"), g, "backend",
		     "expected one of btrfs, lvm, got \"%s\"", value);
		ok = false;
	}
	g_free(value);
	if (!ok)
		return false;
	if (v->backend == KFS_BACKEND_BTRFS)
		return kfs_conf_refuse_keys(p, g, lvm_only,
					    "only valid with backend = lvm, this volume is btrfs",
					    error);
	return kfs_conf_refuse_keys(p, g, btrfs_only,
				    "only valid with backend = btrfs; an LVM volume is named by lv = VG/LV",
				    error);
}

/* lv = VG/LV: two names of LVM's characters, nothing that lvm2_run()
 * could split into a second argument. */
static bool kfs_conf_parse_lv(struct kfs_conf_parser *p,
			      const struct kfs_conf_group *g,
			      struct kfs_volume_conf *v, GError **error)
{
	const char *expect = "VG/LV, a volume group and a logical volume in it (letters, digits, +_.-)";
	const struct kfs_config *cfg = p->cfg;
	char **parts = NULL;
	char *value;
	bool ok = false;
	size_t i;

	if (!kfs_conf_get(p, g, "lv", KFS_CONF_REQUIRED, expect, &value, error))
		return false;
	v->lv_line = kfs_conf_line(g, "lv");
	parts = g_strsplit(value, "/", -1);
	if (g_strv_length(parts) != 2 || !kfs_lvm_name_ok(parts[0]) ||
	    !kfs_lvm_name_ok(parts[1])) {
		PERR(p, v->lv_line, g, "lv", "expected %s, got \"%s\"%s", expect,
		     value, value[0] == '/' ? " (not a device path)" : "");
		goto free_value;
	}
	for (i = 0; i < p->n_volumes; i++) {
		const struct kfs_volume_conf *o = &cfg->volumes[i];

		if (o != v && o->lv && strcmp(o->lv, value) == 0) {
			PERR(p, v->lv_line, g, "lv",
			     "%s is also the lv of [volume:%s] at line %d; expected one volume per logical volume",
			     value, o->name, o->lv_line);
			goto free_value;
		}
	}
	v->lv = g_steal_pointer(&value);
	ok = true;
free_value:
	g_strfreev(parts);
	g_free(value);
	return ok;
}

/* "10G" (K, M, G, T, P: powers of 1024, as lvcreate -L) or "20%ORIGIN". */
static bool kfs_conf_size_parse(const char *s, guint64 *bytes, unsigned int *percent)
{
	static const char units[] = "kmgtp";
	const char *u;
	guint64 n;
	char *end;

	*bytes = 0;
	*percent = 0;
	if (!g_ascii_isdigit(*s))
		return false;
	errno = 0;
	n = g_ascii_strtoull(s, &end, 10);
	if (errno || n == 0)
		return false;
	if (g_ascii_strcasecmp(end, "%ORIGIN") == 0) {
		*percent = n <= 100 ? (unsigned int)n : 0;
		return *percent != 0;
	}
	u = *end ? strchr(units, g_ascii_tolower(*end)) : NULL;
	if (!u || end[1])
		return false;
	if (n > G_MAXUINT64 >> (10 * (u - units + 1)))
		return false;
	*bytes = n << (10 * (u - units + 1));
	return true;
}

static bool kfs_conf_parse_snapshot_size(struct kfs_conf_parser *p,
					 const struct kfs_conf_group *g,
					 struct kfs_volume_conf *v, GError **error)
{
	const char *expect = "a size such as 10G (K, M, G, T, P) or a share of the origin such as 20%ORIGIN (1 to 100)";
	char *value;

	if (!kfs_conf_get(p, g, "snapshot_size", 0, expect, &value, error))
		return false;
	if (!value)
		return true;
	v->snapshot_size_line = kfs_conf_line(g, "snapshot_size");
	if (!kfs_conf_size_parse(value, &v->snapshot_bytes, &v->snapshot_percent)) {
		PERR(p, v->snapshot_size_line, g, "snapshot_size",
		     "expected %s, got \"%s\"", expect, value);
		g_free(value);
		return false;
	}
	v->snapshot_size = value;
	return true;
}

static bool kfs_conf_parse_path(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				struct kfs_volume_conf *v, GError **error)
{
	const struct kfs_config *cfg = p->cfg;
	char *value;
	size_t i;

	if (!kfs_conf_get(p, g, "path", KFS_CONF_REQUIRED,
			  "the absolute path of a btrfs subvolume", &value,
			  error))
		return false;
	v->path_line = kfs_conf_line(g, "path");
	v->path = kfs_conf_abs_path(value);
	if (!v->path)
		PERR(p, v->path_line, g, "path",
		     "expected an absolute path, got \"%s\"", value);
	g_free(value);
	if (!v->path)
		return false;

	for (i = 0; i < p->n_volumes; i++) {
		const struct kfs_volume_conf *o = &cfg->volumes[i];

		if (o != v && o->path && strcmp(o->path, v->path) == 0) {
			PERR(p, v->path_line, g, "path",
			     "%s is also the path of [volume:%s] at line %d; expected one volume per subvolume",
			     v->path, o->name, o->path_line);
			return false;
		}
	}
	return true;
}

static bool kfs_conf_parse_origin(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  struct kfs_volume_conf *v, GError **error)
{
	if (v->backend == KFS_BACKEND_LVM)
		return kfs_conf_parse_lv(p, g, v, error) &&
		       kfs_conf_parse_snapshot_size(p, g, v, error);
	return kfs_conf_parse_path(p, g, v, error);
}

/*
 * subdir is relative to the volume and stays inside it: no leading '/',
 * no "..".  "." and empty components are dropped ("./data/" is "data");
 * what is left empty means the whole volume.
 */
static bool kfs_conf_parse_subdir(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  struct kfs_volume_conf *v, GError **error)
{
	const char *expect = "a directory relative to the volume's root";
	GPtrArray *parts;
	char **comps, **c;
	char *value;
	bool ok = false;

	if (!kfs_conf_get(p, g, "subdir", KFS_CONF_MAY_BE_EMPTY, expect,
			  &value, error))
		return false;
	if (!value)
		return true;
	v->subdir_line = kfs_conf_line(g, "subdir");
	if (value[0] == '/') {
		PERR(p, v->subdir_line, g, "subdir",
		     "expected %s (no leading '/'), got \"%s\"", expect, value);
		g_free(value);
		return false;
	}
	parts = g_ptr_array_new();
	comps = g_strsplit(value, "/", -1);
	for (c = comps; *c; c++) {
		if (strcmp(*c, "..") == 0) {
			PERR(p, v->subdir_line, g, "subdir",
			     "expected %s (no \"..\"), got \"%s\"", expect,
			     value);
			goto free_parts;
		}
		if (**c && strcmp(*c, ".") != 0)
			g_ptr_array_add(parts, *c);
	}
	g_ptr_array_add(parts, NULL);
	if (parts->len > 1)
		v->subdir = g_strjoinv("/", (char **)parts->pdata);
	ok = true;

free_parts:
	g_strfreev(comps);
	g_ptr_array_unref(parts);
	g_free(value);
	return ok;
}

static bool kfs_conf_parse_filter(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  struct kfs_volume_conf *v, GError **error)
{
	static const char *const presets[] = {
		"cyrus-spool", "cyrus-meta", "mysql", NULL
	};
	char *value, **glob;

	if (!kfs_conf_get(p, g, "preset", KFS_CONF_MAY_BE_EMPTY,
			  "one of cyrus-spool, cyrus-meta, mysql", &value,
			  error))
		return false;
	if (value && *value && !g_strv_contains(presets, value)) {
		PERR(p, kfs_conf_line(g, "preset"), g, "preset",
		     "expected one of cyrus-spool, cyrus-meta, mysql, got \"%s\"",
		     value);
		g_free(value);
		return false;
	}
	if (value && !*value)
		g_clear_pointer(&value, g_free);
	v->preset = value;

	if (!kfs_conf_get_list(p, g, "exclude", KFS_CONF_MAY_BE_EMPTY,
			       "a ;-separated list of globs", &v->exclude,
			       error))
		return false;
	if (!v->exclude)
		v->exclude = g_new0(char *, 1);
	for (glob = v->exclude; *glob; glob++) {
		if (!kfs_filter_glob_ok(*glob)) {
			PERR(p, kfs_conf_line(g, "exclude"), g, "exclude",
			     "expected a ;-separated list of globs, got \"%s\", which names nothing (a trailing '/' means directories, a leading one the volume's root)",
			     *glob);
			return false;
		}
	}
	return true;
}

static bool kfs_conf_parse_volume(struct kfs_conf_parser *p,
				  const struct kfs_conf_group *g,
				  const char *name, GError **error)
{
	static const char *const known[] = {
		"backend", "path", "lv", "snapshot_size", "subdir", "preset",
		"exclude", NULL
	};
	struct kfs_volume_conf *v = &p->cfg->volumes[p->n_volumes++];

	v->name = g_strdup(name);
	v->line = g->line;
	return kfs_conf_claim_name(p, g, "volume", name, &v->ino_space,
				   error) &&
	       kfs_conf_check_keys(p, g, known, error) &&
	       kfs_conf_parse_backend(p, g, v, error) &&
	       kfs_conf_parse_origin(p, g, v, error) &&
	       kfs_conf_parse_subdir(p, g, v, error) &&
	       kfs_conf_parse_filter(p, g, v, error);
}

static bool kfs_conf_parse_copy(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *name, GError **error)
{
	static const char *const known[] = { "paths", NULL };
	const char *expect = "a ;-separated list of absolute paths";
	struct kfs_copy_conf *c = &p->cfg->copies[p->n_copies++];
	char **path, **o;

	c->name = g_strdup(name);
	c->line = g->line;
	if (!kfs_conf_claim_name(p, g, "copy", name, &c->ino_space, error) ||
	    !kfs_conf_check_keys(p, g, known, error) ||
	    !kfs_conf_get_list(p, g, "paths", KFS_CONF_REQUIRED, expect,
			       &c->paths, error))
		return false;
	c->paths_line = kfs_conf_line(g, "paths");

	for (path = c->paths; *path; path++) {
		char *abs = kfs_conf_abs_path(*path);

		if (!abs) {
			PERR(p, c->paths_line, g, "paths",
			     "expected %s, got \"%s\"", expect, *path);
			return false;
		}
		g_free(*path);
		*path = abs;
		/* A copy of a tree holding state_dir would copy itself. */
		if (kfs_conf_path_within(p->cfg->state_dir, *path) ||
		    kfs_conf_path_within(*path, p->cfg->state_dir)) {
			PERR(p, c->paths_line, g, "paths",
			     "%s overlaps state_dir %s, where copies are written; expected paths outside it",
			     *path, p->cfg->state_dir);
			return false;
		}
		/* Both would land in the same place of the copy. */
		for (o = c->paths; o < path; o++) {
			if (kfs_conf_path_within(*path, *o) ||
			    kfs_conf_path_within(*o, *path)) {
				PERR(p, c->paths_line, g, "paths",
				     "%s and %s overlap; expected each file to be listed once",
				     *o, *path);
				return false;
			}
		}
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* [mysql]                                                             */

/*
 * Where to connect: socket, or host and port, or neither (NULL host and
 * socket: libmysqlclient's default, the server's local socket, as the
 * mysql client does without options).
 */
static bool kfs_conf_parse_mysql_server(struct kfs_conf_parser *p,
					const struct kfs_conf_group *g,
					struct kfs_mysql_conf *m,
					GError **error)
{
	const char *expect = "a host name or IP address (at most 253 bytes)";
	int host_line = kfs_conf_line(g, "host");

	if (!kfs_conf_get_path(p, g, "socket", 0, &m->socket, error) ||
	    !kfs_conf_get(p, g, "host", 0, expect, &m->host, error))
		return false;
	if (m->socket && strlen(m->socket) > KFS_SOCKET_PATH_MAX) {
		PERR(p, kfs_conf_line(g, "socket"), g, "socket",
		     "expected the path of a Unix socket, at most %zu bytes, got one of %zu bytes",
		     KFS_SOCKET_PATH_MAX, strlen(m->socket));
		return false;
	}
	if (m->socket && m->host) {
		PERR(p, host_line, g, "host",
		     "socket (line %d) and host (line %d) exclude each other; expected one of them",
		     kfs_conf_line(g, "socket"), host_line);
		return false;
	}
	/* Spaces would be a typo; a path is a socket given as host; DNS
	 * names have at most 253 bytes. */
	if (m->host && (m->host[0] == '/' || strpbrk(m->host, " \t") ||
			kfs_conf_has_control(m->host) || strlen(m->host) > 253)) {
		g_autofree char *shown = g_strescape(m->host, NULL);

		PERR(p, host_line, g, "host", "expected %s, got \"%s\"%s",
		     expect, shown,
		     m->host[0] == '/' ? " (a Unix socket is given as socket =)" : "");
		return false;
	}
	if (!m->host && kfs_conf_group_key(g, "port")) {
		PERR(p, kfs_conf_line(g, "port"), g, "port",
		     "only valid with host = (%s)",
		     m->socket ? "this section connects through socket =" :
				 "without host, kolabfs connects through the client library's default socket");
		return false;
	}
	return kfs_conf_get_uint(p, g, "port", "a port number", 1, 65535,
				 3306, &m->port, error);
}

static bool kfs_conf_parse_mysql_login(struct kfs_conf_parser *p,
				       const struct kfs_conf_group *g,
				       struct kfs_mysql_conf *m,
				       GError **error)
{
	if (!kfs_conf_get(p, g, "user", 0, "a MySQL user name", &m->user,
			  error))
		return false;
	/* MariaDB's user names have at most 80 characters (MySQL's 32) */
	if (m->user && (kfs_conf_has_control(m->user) || g_utf8_strlen(m->user, -1) > 80)) {
		g_autofree char *shown = g_strescape(m->user, NULL);

		PERR(p, kfs_conf_line(g, "user"), g, "user",
		     "expected a MySQL user name (at most 80 characters, no control characters), got \"%s\"",
		     shown);
		return false;
	}
	if (!m->user)
		m->user = g_strdup("root");
	if (!kfs_conf_get_path(p, g, "password_file", 0, &m->password_file,
			       error))
		return false;
	if (m->password_file)
		m->password_file_line = kfs_conf_line(g, "password_file");
	return true;
}

static bool kfs_conf_parse_mysql(struct kfs_conf_parser *p,
				 const struct kfs_conf_group *g,
				 GError **error)
{
	static const char *const known[] = {
		"socket", "host", "port", "user", "password_file", "lock",
		"lock_wait_timeout", "require_complete", NULL
	};
	/* In the order of enum kfs_mysql_lock. */
	static const char *const locks[] = {
		"ftwrl", "backup-stage", "replica", "none", NULL
	};
	struct kfs_mysql_conf *m = g_new0(struct kfs_mysql_conf, 1);
	int lock;

	p->cfg->mysql = m;
	m->line = g->line;
	if (!kfs_conf_check_keys(p, g, known, error) ||
	    !kfs_conf_parse_mysql_server(p, g, m, error) ||
	    !kfs_conf_parse_mysql_login(p, g, m, error) ||
	    !kfs_conf_get_choice(p, g, "lock", locks, KFS_MYSQL_LOCK_FTWRL,
				 &lock, error) ||
	    !kfs_conf_get_uint(p, g, "lock_wait_timeout",
			       "a whole number of seconds", 1, 3600, 30,
			       &m->lock_wait_timeout, error) ||
	    !kfs_conf_get_bool(p, g, "require_complete", true,
			       &m->require_complete, error))
		return false;
	m->lock = lock;
	/* The lock only spans snapshots: it is no dump of the databases. */
	if (p->cfg->n_volumes == 0) {
		PERR(p, g->line, g, NULL,
		     "the lock is held while volumes are snapshotted, but there is no [volume:NAME]; expected one holding the datadir (kolabfs does not dump databases)");
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* [ldap:NAME]                                                         */

enum kfs_conf_ldap_scheme { KFS_LDAP, KFS_LDAPS, KFS_LDAPI, KFS_LDAP_BAD };

/* The scheme of URI (case-insensitive, as libldap takes it). */
static enum kfs_conf_ldap_scheme kfs_conf_ldap_scheme(const char *uri)
{
	/* In the order of enum kfs_conf_ldap_scheme. */
	static const char *const schemes[] = {
		"ldap://", "ldaps://", "ldapi://"
	};
	int i;

	for (i = 0; i < KFS_LDAP_BAD; i++) {
		size_t n = strlen(schemes[i]);

		if (g_ascii_strncasecmp(uri, schemes[i], n) == 0)
			return i;
	}
	return KFS_LDAP_BAD;
}

/*
 * ldapi://HOST: HOST is the socket path, %-encoded ("%2Frun%2Fslapd.sock");
 * empty means libldap's compiled-in default, which kolabfs cannot know.
 */
static bool kfs_conf_parse_ldapi(struct kfs_conf_parser *p,
				 const struct kfs_conf_group *g,
				 struct kfs_ldap_conf *l, const char *host,
				 GError **error)
{
	if (!*host)
		return true;
	l->ldapi_path = g_uri_unescape_string(host, NULL);
	if (!l->ldapi_path || !g_path_is_absolute(l->ldapi_path)) {
		PERR(p, l->uri_line, g, "uri",
		     "expected the absolute path of the socket, %%-encoded as in ldapi://%%2Frun%%2Fslapd-kolab.socket, got \"%s\"",
		     l->uri);
		return false;
	}
	if (strlen(l->ldapi_path) > KFS_SOCKET_PATH_MAX) {
		PERR(p, l->uri_line, g, "uri",
		     "expected the path of a Unix socket, at most %zu bytes, got one of %zu bytes",
		     KFS_SOCKET_PATH_MAX, strlen(l->ldapi_path));
		return false;
	}
	return true;
}

/* One URI (libldap would take a list), no DN or search part. */
static bool kfs_conf_parse_ldap_uri(struct kfs_conf_parser *p,
				    const struct kfs_conf_group *g,
				    struct kfs_ldap_conf *l, GError **error)
{
	const char *expect = "an ldap://, ldaps:// or ldapi:// URI";
	enum kfs_conf_ldap_scheme scheme;
	const char *host, *rest;
	char *ldapi;
	bool ok;

	if (!kfs_conf_get(p, g, "uri", KFS_CONF_REQUIRED, expect, &l->uri,
			  error))
		return false;
	l->uri_line = kfs_conf_line(g, "uri");
	scheme = kfs_conf_ldap_scheme(l->uri);
	if (scheme == KFS_LDAP_BAD) {
		PERR(p, l->uri_line, g, "uri", "expected %s, got \"%s\"",
		     expect, l->uri);
		return false;
	}
	host = strstr(l->uri, "://") + 3;
	rest = host + strcspn(host, "/?");
	/* A comma after the host would be part of a DN, caught below. */
	if (strpbrk(l->uri, " \t") || memchr(host, ',', (size_t)(rest - host))) {
		PERR(p, l->uri_line, g, "uri",
		     "expected one URI (no spaces or commas), got \"%s\"",
		     l->uri);
		return false;
	}
	if (*rest && strcmp(rest, "/") != 0) {
		if (scheme == KFS_LDAPI)
			PERR(p, l->uri_line, g, "uri",
			     "expected nothing after the socket path, got \"%s\" (a '/' in the path is written %%2F, as in ldapi://%%2Frun%%2Fslapd-kolab.socket)",
			     rest);
		else
			PERR(p, l->uri_line, g, "uri",
			     "expected nothing after the host and port, got \"%s\" (search bases are given as bases =)",
			     rest);
		return false;
	}
	if (scheme != KFS_LDAPI)
		return true;
	ldapi = g_strndup(host, (gsize)(rest - host));
	ok = kfs_conf_parse_ldapi(p, g, l, ldapi, error);
	g_free(ldapi);
	return ok;
}

/*
 * Who kolabfs binds as.  bind_dn and password_file: a simple bind.
 * Neither: anonymous, or over ldapi:// SASL EXTERNAL (the server maps
 * kolabfs's uid, e.g. 389-ds's autobind of root to cn=Directory Manager).
 * bind_dn alone: only over ldapi://, SASL EXTERNAL, where bind_dn is the
 * identity the mapping must give.
 */
static bool kfs_conf_parse_ldap_bind(struct kfs_conf_parser *p,
				     const struct kfs_conf_group *g,
				     struct kfs_ldap_conf *l, GError **error)
{
	bool ldapi = kfs_conf_ldap_scheme(l->uri) == KFS_LDAPI;

	if (!kfs_conf_get(p, g, "bind_dn", 0, "a DN", &l->bind_dn, error) ||
	    !kfs_conf_get_path(p, g, "password_file", 0, &l->password_file,
			       error))
		return false;
	if (l->bind_dn && (!strchr(l->bind_dn, '=') || kfs_conf_has_control(l->bind_dn))) {
		g_autofree char *shown = g_strescape(l->bind_dn, NULL);

		PERR(p, kfs_conf_line(g, "bind_dn"), g, "bind_dn",
		     "expected a DN such as cn=Directory Manager, got \"%s\"",
		     shown);
		return false;
	}
	if (l->password_file) {
		l->password_file_line = kfs_conf_line(g, "password_file");
		if (!l->bind_dn) {
			PERR(p, l->password_file_line, g, "password_file",
			     "needs bind_dn =, the DN this password is for");
			return false;
		}
	} else if (l->bind_dn && !ldapi) {
		PERR(p, kfs_conf_line(g, "bind_dn"), g, "bind_dn",
		     "needs password_file = for a simple bind (only ldapi:// binds without a password, with SASL EXTERNAL)");
		return false;
	}
	/* Anonymous users may not add export tasks. */
	if (l->mode == KFS_LDAP_TASK && !l->bind_dn && !ldapi) {
		PERR(p, g->line, g, "bind_dn",
		     "missing, mode = task needs bind_dn and password_file (a DN allowed to add export tasks, such as cn=Directory Manager) or an ldapi:// uri (SASL EXTERNAL)");
		return false;
	}
	return true;
}

/* Every base once, each looking like a DN. */
static bool kfs_conf_check_ldap_bases(struct kfs_conf_parser *p,
				      const struct kfs_conf_group *g,
				      const struct kfs_ldap_conf *l,
				      GError **error)
{
	int line = kfs_conf_line(g, "bases");
	char **b, **o;

	for (b = l->bases; *b; b++) {
		if (!strchr(*b, '=') || kfs_conf_has_control(*b)) {
			g_autofree char *shown = g_strescape(*b, NULL);

			PERR(p, line, g, "bases",
			     "expected a ;-separated list of DNs such as dc=example,dc=org, got \"%s\"",
			     shown);
			return false;
		}
		for (o = l->bases; o < b; o++) {
			if (g_ascii_strcasecmp(*o, *b) == 0) {
				PERR(p, line, g, "bases",
				     "\"%s\" is listed twice", *b);
				return false;
			}
		}
	}
	return true;
}

static bool kfs_conf_parse_ldap_mode(struct kfs_conf_parser *p,
				     const struct kfs_conf_group *g,
				     struct kfs_ldap_conf *l, GError **error)
{
	/* In the order of enum kfs_ldap_mode. */
	static const char *const modes[] = { "task", "search", NULL };
	int mode;

	if (!kfs_conf_get_choice(p, g, "mode", modes, KFS_LDAP_TASK, &mode,
				 error))
		return false;
	l->mode = mode;
	if (l->mode == KFS_LDAP_TASK && kfs_conf_group_key(g, "bases")) {
		PERR(p, kfs_conf_line(g, "bases"), g, "bases",
		     "only valid with mode = search (mode = task exports every backend of the server)");
		return false;
	}
	if (!kfs_conf_get_list(p, g, "bases", KFS_CONF_MAY_BE_EMPTY,
			       "a ;-separated list of DNs", &l->bases, error))
		return false;
	/* "bases =": the default, the namingContexts of the root DSE. */
	if (l->bases && !l->bases[0])
		g_clear_pointer(&l->bases, g_strfreev);
	return !l->bases || kfs_conf_check_ldap_bases(p, g, l, error);
}

static bool kfs_conf_parse_ldap_starttls(struct kfs_conf_parser *p,
					 const struct kfs_conf_group *g,
					 struct kfs_ldap_conf *l,
					 GError **error)
{
	enum kfs_conf_ldap_scheme scheme = kfs_conf_ldap_scheme(l->uri);

	if (!kfs_conf_get_bool(p, g, "starttls", false, &l->starttls, error))
		return false;
	if (l->starttls && scheme != KFS_LDAP) {
		PERR(p, kfs_conf_line(g, "starttls"), g, "starttls",
		     "only valid with an ldap:// uri (%s)",
		     scheme == KFS_LDAPS ? "ldaps:// is TLS from the start" :
					   "ldapi:// is a local socket");
		return false;
	}
	return true;
}

static bool kfs_conf_parse_ldap(struct kfs_conf_parser *p,
				const struct kfs_conf_group *g,
				const char *name, GError **error)
{
	static const char *const known[] = {
		"uri", "bind_dn", "password_file", "mode", "bases", "starttls",
		"timeout", NULL
	};
	struct kfs_ldap_conf *l = &p->cfg->ldaps[p->n_ldaps++];

	l->name = g_strdup(name);
	l->line = g->line;
	return kfs_conf_claim_name(p, g, "ldap", name, &l->ino_space,
				   error) &&
	       kfs_conf_check_keys(p, g, known, error) &&
	       kfs_conf_parse_ldap_uri(p, g, l, error) &&
	       kfs_conf_parse_ldap_mode(p, g, l, error) &&
	       kfs_conf_parse_ldap_bind(p, g, l, error) &&
	       kfs_conf_parse_ldap_starttls(p, g, l, error) &&
	       kfs_conf_get_uint(p, g, "timeout", "a whole number of seconds",
				 1, 3600, 30, &l->timeout, error);
}

static bool kfs_conf_parse_group(struct kfs_conf_parser *p,
				 const struct kfs_conf_group *g,
				 GError **error)
{
	if (g_str_has_prefix(g->name, "volume:"))
		return kfs_conf_parse_volume(p, g, g->name + strlen("volume:"),
					     error);
	if (g_str_has_prefix(g->name, "copy:"))
		return kfs_conf_parse_copy(p, g, g->name + strlen("copy:"),
					   error);
	if (g_str_has_prefix(g->name, "ldap:"))
		return kfs_conf_parse_ldap(p, g, g->name + strlen("ldap:"),
					   error);
	if (strcmp(g->name, "mysql") == 0)
		return kfs_conf_parse_mysql(p, g, error);
	PERR(p, g->line, g, NULL,
	     "unknown group, expected [kolabfs], [mysql], [volume:NAME], [ldap:NAME] or [copy:NAME]");
	return false;
}

static bool kfs_conf_parse_groups(struct kfs_conf_parser *p, GError **error)
{
	const struct kfs_conf_group *top;
	struct kfs_config *cfg = p->cfg;
	guint i;

	for (i = 0; i < p->idx.groups->len; i++) {
		const struct kfs_conf_group *g = p->idx.groups->pdata[i];

		if (g_str_has_prefix(g->name, "volume:"))
			cfg->n_volumes++;
		else if (g_str_has_prefix(g->name, "copy:"))
			cfg->n_copies++;
		else if (g_str_has_prefix(g->name, "ldap:"))
			cfg->n_ldaps++;
	}
	cfg->volumes = g_new0(struct kfs_volume_conf, cfg->n_volumes);
	cfg->copies = g_new0(struct kfs_copy_conf, cfg->n_copies);
	cfg->ldaps = g_new0(struct kfs_ldap_conf, cfg->n_ldaps);

	/* [kolabfs] first: copies are checked against its state_dir. */
	top = g_hash_table_lookup(p->idx.by_name, "kolabfs");
	if (top && !kfs_conf_parse_main(p, top, error))
		return false;
	for (i = 0; i < p->idx.groups->len; i++) {
		const struct kfs_conf_group *g = p->idx.groups->pdata[i];

		if (g != top && !kfs_conf_parse_group(p, g, error))
			return false;
	}
	if (cfg->n_volumes + cfg->n_ldaps + cfg->n_copies == 0) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, p->file, 0,
			       NULL, NULL,
			       "nothing to back up: expected at least one [volume:NAME], [ldap:NAME] or [copy:NAME] group");
		return false;
	}
	return true;
}

/* TEXT: LEN bytes and a NUL after them. */
static struct kfs_config *kfs_conf_parse_text(const char *file, const char *text,
					      gsize len, GError **error)
{
	struct kfs_conf_parser p = { .file = file };
	struct kfs_config *cfg;
	GError *local = NULL;

	cfg = g_new0(struct kfs_config, 1);
	cfg->file = g_strdup(file);
	cfg->state_dir = g_strdup(KFS_DEFAULT_STATE_DIR);
	cfg->name_format = g_strdup(KFS_DEFAULT_NAME_FORMAT);
	p.cfg = cfg;
	p.kf = g_key_file_new();
	p.names = g_hash_table_new(g_str_hash, g_str_equal);
	p.spaces = g_hash_table_new(NULL, NULL);
	kfs_conf_index_init(&p.idx, file);

	if (!kfs_conf_index_text(&p.idx, text, len, error))
		goto destroy_cfg;
	/* The indexer let through only what GKeyFile accepts; a failure
	 * here is a bug, but still reported rather than trusted away. */
	if (!g_key_file_load_from_data(p.kf, p.idx.clean->str, p.idx.clean->len,
				       G_KEY_FILE_NONE, &local)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, file, 0, NULL,
			       NULL, "%s", local->message);
		g_error_free(local);
		goto destroy_cfg;
	}
	if (!kfs_conf_parse_groups(&p, error))
		goto destroy_cfg;
	goto free_parser;

destroy_cfg:
	kfs_config_destroy(cfg);
	cfg = NULL;
free_parser:
	kfs_conf_index_clear(&p.idx);
	g_hash_table_unref(p.spaces);
	g_hash_table_unref(p.names);
	g_key_file_unref(p.kf);
	return cfg;
}

struct kfs_config *kfs_config_parse(const char *file, const char *text,
				    size_t len, GError **error)
{
	char *copy = g_malloc(len + 1);
	struct kfs_config *cfg;

	memcpy(copy, text, len);
	copy[len] = '\0';
	cfg = kfs_conf_parse_text(file, copy, len, error);
	g_free(copy);
	return cfg;
}

struct kfs_config *kfs_config_load(const char *file, GError **error)
{
	struct kfs_config *cfg;
	GError *local = NULL;
	char *text;
	gsize len;

	if (!g_file_get_contents(file, &text, &len, &local)) {
		kfs_conf_error(error, KFS_CONFIG_ERROR_INVALID, file, 0, NULL,
			       NULL, "%s", local->message);
		g_error_free(local);
		return NULL;
	}
	cfg = kfs_conf_parse_text(file, text, len, error);
	g_free(text);
	return cfg;
}

static void kfs_conf_mysql_free(struct kfs_mysql_conf *m)
{
	if (!m)
		return;
	g_free(m->socket);
	g_free(m->host);
	g_free(m->user);
	g_free(m->password_file);
	g_free(m);
}

static void kfs_conf_ldap_clear(struct kfs_ldap_conf *l)
{
	g_free(l->name);
	g_free(l->uri);
	g_free(l->ldapi_path);
	g_free(l->bind_dn);
	g_free(l->password_file);
	g_strfreev(l->bases);
}

void kfs_config_destroy(struct kfs_config *cfg)
{
	size_t i;

	if (!cfg)
		return;
	for (i = 0; i < cfg->n_volumes; i++) {
		struct kfs_volume_conf *v = &cfg->volumes[i];

		g_free(v->name);
		g_free(v->path);
		g_free(v->lv);
		g_free(v->snapshot_size);
		g_free(v->subdir);
		g_free(v->preset);
		g_strfreev(v->exclude);
	}
	g_free(cfg->volumes);
	for (i = 0; i < cfg->n_copies; i++) {
		g_free(cfg->copies[i].name);
		g_strfreev(cfg->copies[i].paths);
	}
	g_free(cfg->copies);
	kfs_conf_mysql_free(cfg->mysql);
	for (i = 0; i < cfg->n_ldaps; i++)
		kfs_conf_ldap_clear(&cfg->ldaps[i]);
	g_free(cfg->ldaps);
	g_free(cfg->file);
	g_free(cfg->state_dir);
	g_free(cfg->name_format);
	g_free(cfg);
}
