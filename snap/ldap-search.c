/*
 * kolabfs: mode = search, a paged subtree search of each base, any server.
 *
 * The output must go back in with the server's offline import (slapadd,
 * ldif2db), which needs two things a plain ldapsearch does not give:
 *
 * - Parents before children.  Servers return entries in their own order
 *   (OpenLDAP's mdb: entry ID order, so an entry moved under a newer
 *   parent comes first).  An entry whose parent has not been written yet
 *   is held back until it is; one whose parent never comes (hidden by an
 *   ACL, say) fails the export, since the import would fail on it.
 *
 * - Only the operational attributes the import takes.  Which attributes
 *   are operational is read from the server's schema (USAGE other than
 *   userApplications); of those only KEEP_OPERATIONAL are written, the
 *   ones slapcat writes and slapadd/ldif2db take back.  Computed ones
 *   (entryDN, hasSubordinates, subschemaSubentry, ...) are dropped.
 *
 * Values are written by libldap's own ldif_put_wrap(): base64 for values
 * that need it and for userPassword, lines folded at 78 like slapcat.
 * A server-side limit (size, time, admin limit) or a missing right is an
 * error, never a short file.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldap.h>
#include <ldap_schema.h>
#include <ldif.h>
#include <glib.h>

#include "../src/testpoint.h"
#include "ldap-int.h"

#define PAGE_SIZE 1000
#define WRITE_BUF (1 << 20)

static const char *const KEEP_OPERATIONAL[] = {
	"structuralObjectClass", "entryUUID", "entryCSN", "contextCSN",
	"creatorsName", "createTimestamp", "modifiersName", "modifyTimestamp",
	"nsUniqueId", "memberOf",
	"pwdChangedTime", "pwdAccountLockedTime", "pwdFailureTime",
	"pwdHistory", "pwdGraceUseTime", "pwdReset", "pwdLastSuccess",
	NULL
};

/* An entry held back until its parent is written. */
struct pend {
	char *key;
	GString *ldif;
};

static void pend_free(struct pend *p)
{
	g_free(p->key);
	g_string_free(p->ldif, TRUE);
	g_free(p);
}

/* The export of one base. */
struct search {
	struct kfs_ldap *l;
	GHashTable *operational;        /* lower-case names to drop */
	const char *base;
	char *base_key;
	FILE *fp;
	GString *ldif;                  /* the entry being converted */
	GHashTable *written;            /* keys of the entries written */
	GHashTable *pending;            /* parent key -> GPtrArray of pend */
	guint n_pending;
	guint64 entries;
};

/* A DN that is its own LDAPv3 string form but for the case of its types. */
static bool dn_is_plain(const char *dn)
{
	for (const char *p = dn; *p; p++)
		if (!g_ascii_isalnum(*p) && !strchr("=,-._@", *p))
			return false;
	return *dn && *dn != ',' && *dn != '=';
}

/*
 * The comparison key of DN (LDAPv3 string form, ASCII case-folded: good
 * enough to match a child with its parent; a mismatch fails the export
 * loudly, never silently) and, when PARENT is not NULL, its parent's key
 * (NULL for a DN of one RDN's parent "", and for "").
 */
static int dn_keys(const char *dn, char **key, char **parent)
{
	LDAPDN ldn = NULL;
	char *s = NULL;
	const char *p;

	if (dn_is_plain(dn)) {
		*key = g_ascii_strdown(dn, -1);
	} else {
		if (ldap_str2dn(dn, &ldn, LDAP_DN_FORMAT_LDAP) != LDAP_SUCCESS)
			return -EINVAL;
		ldap_dn2str(ldn, &s, LDAP_DN_FORMAT_LDAPV3);
		ldap_dnfree(ldn);
		*key = g_ascii_strdown(s ? s : "", -1);
		ldap_memfree(s);
	}
	if (!parent)
		return 0;
	/* In the LDAPv3 form a ',' inside a value is escaped. */
	for (p = *key; *p && *p != ','; p++)
		if (*p == '\\' && p[1])
			p++;
	*parent = *p ? g_strdup(p + 1) : NULL;
	return 0;
}

/* The lower-case names (and OIDs) of every operational attribute type. */
static int schema_operational(struct kfs_ldap *l, GHashTable **out,
			      GError **error)
{
	char *dse_attrs[] = { "subschemaSubentry", NULL };
	char *attrs[] = { "attributeTypes", NULL };
	g_autofree char *subschema = NULL;
	struct berval **vals = NULL;
	LDAPMessage *res, *e;
	GHashTable *ops;
	int err;

	err = kfs_ldap_search(l, "", LDAP_SCOPE_BASE, "(objectClass=*)",
			      dse_attrs, &res, error);
	if (!err && (e = ldap_first_entry(l->ld, res)))
		subschema = kfs_ldap_get(l, e, "subschemaSubentry");
	ldap_msgfree(res);
	if (err)
		return err;
	if (!subschema)
		return kfs_ldap_fail(error, l, -ENOENT, "the root DSE names no subschemaSubentry: cannot tell operational attributes");
	err = kfs_ldap_search(l, subschema, LDAP_SCOPE_BASE,
			      "(objectClass=subschema)", attrs, &res, error);
	if (!err && (e = ldap_first_entry(l->ld, res)))
		vals = ldap_get_values_len(l->ld, e, "attributeTypes");
	ldap_msgfree(res);
	if (err)
		return err;
	if (!vals)
		return kfs_ldap_fail(error, l, -EACCES, "no attributeTypes readable in %s", subschema);
	ops = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for (int i = 0; vals[i]; i++) {
		g_autofree char *def = g_strndup(vals[i]->bv_val, vals[i]->bv_len);
		LDAPAttributeType *at;
		const char *ep;
		int code;

		at = ldap_str2attributetype(def, &code, &ep, LDAP_SCHEMA_ALLOW_ALL);
		if (!at)
			continue;
		if (at->at_usage != LDAP_SCHEMA_USER_APPLICATIONS) {
			for (char **n = at->at_names; n && *n; n++)
				g_hash_table_add(ops, g_ascii_strdown(*n, -1));
			g_hash_table_add(ops, g_ascii_strdown(at->at_oid, -1));
		}
		ldap_attributetype_free(at);
	}
	ldap_value_free_len(vals);
	for (const char *const *k = KEEP_OPERATIONAL; *k; k++) {
		g_autofree char *lower = g_ascii_strdown(*k, -1);

		g_hash_table_remove(ops, lower);
	}
	*out = ops;
	return 0;
}

/* Whether attribute NAME (with options, maybe) goes into the LDIF. */
static bool keep_attr(struct search *s, const char *name, size_t len)
{
	char lower[256];
	size_t n = 0;

	while (n < len && name[n] != ';' && n < sizeof(lower) - 1) {
		lower[n] = g_ascii_tolower(name[n]);
		n++;
	}
	lower[n] = '\0';
	return !g_hash_table_contains(s->operational, lower);
}

/* Append "NAME: VALUE" (or "NAME:: base64") to OUT, folded. */
static void put(GString *out, const char *name, const char *val, size_t len)
{
	gsize at = out->len;
	char *p;

	g_string_set_size(out, at + LDIF_SIZE_NEEDED_WRAP(strlen(name), len,
							  LDIF_LINE_WIDTH) + 1);
	p = out->str + at;
	ldif_sput_wrap(&p, LDIF_PUT_VALUE, name, val, len, LDIF_LINE_WIDTH);
	g_string_truncate(out, p - out->str);
}

/* The LDIF of one entry into s->ldif, and its DN. */
static int entry_ldif(struct search *s, LDAPMessage *msg, char **dn)
{
	struct berval bv, *vals = NULL;
	BerElement *ber = NULL;
	int rc;

	g_string_truncate(s->ldif, 0);
	rc = ldap_get_dn_ber(s->l->ld, msg, &ber, &bv);
	if (rc != LDAP_SUCCESS)
		return rc;
	*dn = g_strndup(bv.bv_val, bv.bv_len);
	put(s->ldif, "dn", *dn, bv.bv_len);
	for (rc = ldap_get_attribute_ber(s->l->ld, msg, ber, &bv, &vals);
	     rc == LDAP_SUCCESS && bv.bv_val;
	     rc = ldap_get_attribute_ber(s->l->ld, msg, ber, &bv, &vals)) {
		/* bv is the type, NUL-terminated in place by libldap */
		if (vals && keep_attr(s, bv.bv_val, bv.bv_len)) {
			for (int i = 0; vals[i].bv_val; i++)
				put(s->ldif, bv.bv_val, vals[i].bv_val, vals[i].bv_len);
		}
		ber_memfree(vals);
		vals = NULL;
	}
	ber_free(ber, 0);
	g_string_append_c(s->ldif, '\n');
	return rc;
}

static int write_one(struct search *s, const GString *ldif, char *key)
{
	s->entries++;
	g_hash_table_add(s->written, key);
	if (fwrite(ldif->str, 1, ldif->len, s->fp) != ldif->len)
		return errno ? -errno : -EIO;
	return 0;
}

/* Write the held-back entries that waited for KEY, and theirs. */
static int write_waiting(struct search *s, const char *key)
{
	g_autoptr(GPtrArray) stack = g_ptr_array_new();
	int err = 0;

	for (;;) {
		GPtrArray *kids = NULL;
		char *parent = NULL;
		struct pend *p;

		if (g_hash_table_steal_extended(s->pending, key, (gpointer *)&parent,
						(gpointer *)&kids)) {
			s->n_pending -= kids->len;
			for (guint i = 0; i < kids->len; i++)
				g_ptr_array_add(stack, kids->pdata[i]);
			g_ptr_array_set_free_func(kids, NULL);
			g_ptr_array_unref(kids);
			g_free(parent);
		}
		if (!stack->len)
			return err;
		p = g_ptr_array_steal_index(stack, stack->len - 1);
		if (err) {
			pend_free(p);
			continue;
		}
		err = write_one(s, p->ldif, p->key);
		key = p->key;   /* now owned by s->written */
		g_string_free(p->ldif, TRUE);
		g_free(p);
	}
}

static int search_entry(struct search *s, LDAPMessage *msg, GError **error)
{
	g_autofree char *dn = NULL;
	char *key = NULL, *parent = NULL;
	struct pend *p;
	GPtrArray *kids;
	int rc, err;

	rc = entry_ldif(s, msg, &dn);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, s->l, rc, "base %s: decoding an entry", s->base);
	if (dn_keys(dn, &key, &parent) < 0)
		return kfs_ldap_fail(error, s->l, -EPROTO, "base %s: bad DN \"%s\"", s->base, dn);
	if (!parent || strcmp(key, s->base_key) == 0 ||
	    g_hash_table_contains(s->written, parent)) {
		g_free(parent);
		err = write_one(s, s->ldif, key);
		if (!err && s->n_pending)
			err = write_waiting(s, key);
		if (err)
			return kfs_ldap_fail(error, s->l, err, "base %s: writing: %s",
					     s->base, g_strerror(-err));
		return 0;
	}
	p = g_new(struct pend, 1);
	p->key = key;
	p->ldif = g_string_new_len(s->ldif->str, s->ldif->len);
	kids = g_hash_table_lookup(s->pending, parent);
	if (!kids) {
		kids = g_ptr_array_new_with_free_func((GDestroyNotify)pend_free);
		g_hash_table_insert(s->pending, parent, kids);
	} else {
		g_free(parent);
	}
	g_ptr_array_add(kids, p);
	s->n_pending++;
	return 0;
}

static int search_result(struct search *s, LDAPMessage *msg,
			 struct berval *cookie, GError **error)
{
	LDAPControl **ctrls = NULL, *page;
	char *text = NULL;
	ber_int_t count;
	int rc, err = 0;

	rc = ldap_parse_result(s->l->ld, msg, &err, NULL, &text, NULL, &ctrls, 0);
	if (rc == LDAP_SUCCESS && err != LDAP_SUCCESS) {
		ldap_set_option(s->l->ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, text);
		rc = err;
	}
	ldap_memfree(text);
	if (rc != LDAP_SUCCESS) {
		ldap_controls_free(ctrls);
		if (rc == LDAP_NO_SUCH_OBJECT)
			return kfs_ldap_fail_rc(error, s->l, rc, "base %s does not exist", s->base);
		return kfs_ldap_fail_rc(error, s->l, rc,
					"base %s: the search ended early after %" G_GUINT64_FORMAT " entries, the export would be incomplete",
					s->base, s->entries + s->n_pending);
	}
	ber_memfree(cookie->bv_val);
	cookie->bv_val = NULL;
	cookie->bv_len = 0;
	page = ldap_control_find(LDAP_CONTROL_PAGEDRESULTS, ctrls, NULL);
	if (page)
		rc = ldap_parse_pageresponse_control(s->l->ld, page, &count, cookie);
	ldap_controls_free(ctrls);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, s->l, rc, "base %s: bad paged results response", s->base);
	return 0;
}

/* One page: send the search, then handle messages until its result. */
static int search_page(struct search *s, struct berval *cookie, GError **error)
{
	char *attrs[] = { LDAP_ALL_USER_ATTRIBUTES, LDAP_ALL_OPERATIONAL_ATTRIBUTES, NULL };
	struct timeval tv = { .tv_sec = s->l->timeout };
	LDAPControl *page = NULL, *manage = NULL, *ctrls[3];
	LDAPMessage *msg;
	int rc, msgid, err = 0;

	rc = ldap_create_page_control(s->l->ld, PAGE_SIZE, cookie, 0, &page);
	if (rc == LDAP_SUCCESS)
		rc = ldap_control_create(LDAP_CONTROL_MANAGEDSAIT, 0, NULL, 0, &manage);
	ctrls[0] = page;
	ctrls[1] = manage;
	ctrls[2] = NULL;
	if (rc == LDAP_SUCCESS)
		rc = ldap_search_ext(s->l->ld, s->base, LDAP_SCOPE_SUBTREE,
				     "(objectClass=*)", attrs, 0, ctrls, NULL,
				     &tv, LDAP_NO_LIMIT, &msgid);
	ldap_control_free(page);
	ldap_control_free(manage);
	if (rc != LDAP_SUCCESS)
		return kfs_ldap_fail_rc(error, s->l, rc, "base %s: search", s->base);
	for (;;) {
		rc = ldap_result(s->l->ld, msgid, LDAP_MSG_ONE, &tv, &msg);
		if (rc <= 0) {
			if (rc == 0)
				ldap_abandon_ext(s->l->ld, msgid, NULL, NULL);
			ldap_get_option(s->l->ld, LDAP_OPT_RESULT_CODE, &rc);
			return kfs_ldap_fail_rc(error, s->l, rc ? rc : LDAP_TIMEOUT,
						"base %s: waiting for the server", s->base);
		}
		if (rc == LDAP_RES_SEARCH_ENTRY)
			err = search_entry(s, msg, error);
		else if (rc == LDAP_RES_SEARCH_REFERENCE)
			err = kfs_ldap_fail(error, s->l, -EPROTO, "base %s: the server sent a referral, not an entry", s->base);
		else if (rc == LDAP_RES_SEARCH_RESULT)
			err = search_result(s, msg, cookie, error);
		ldap_msgfree(msg);
		if (err && rc != LDAP_RES_SEARCH_RESULT)
			ldap_abandon_ext(s->l->ld, msgid, NULL, NULL);
		if (err || rc == LDAP_RES_SEARCH_RESULT)
			return err;
	}
}

static int search_orphans(struct search *s, GError **error)
{
	GHashTableIter it;
	gpointer parent, kids;
	struct pend *p;

	g_hash_table_iter_init(&it, s->pending);
	if (!g_hash_table_iter_next(&it, &parent, &kids))
		return 0;
	p = ((GPtrArray *)kids)->pdata[0];
	return kfs_ldap_fail(error, s->l, -EACCES,
			     "base %s: %u entries without their parent in the search result (not readable?), e.g. \"%s\" under \"%s\"",
			     s->base, s->n_pending, p->key, (char *)parent);
}

/* Run the paged search of S->base into S->fp. */
static int search_base(struct search *s, GError **error)
{
	struct berval cookie = { 0, NULL };
	int err;

	if (dn_keys(s->base, &s->base_key, NULL) < 0)
		return kfs_ldap_fail(error, s->l, -EINVAL, "bad base DN \"%s\"", s->base);
	s->ldif = g_string_sized_new(4096);
	s->written = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	s->pending = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					   (GDestroyNotify)g_ptr_array_unref);
	/*
	 * No "version: 1" line: slapadd takes a version line followed by a
	 * blank line for an entry without a DN.  Like slapcat, then.
	 */
	err = 0;
	while (!err) {
		err = search_page(s, &cookie, error);
		if (err)
			break;
		/* A page is in and the next not asked for: where a server
		 * that goes away leaves a file half-written. */
		kfs_test_point("ldap-page");
		if (!cookie.bv_len)
			break;
	}
	ber_memfree(cookie.bv_val);
	if (!err)
		err = search_orphans(s, error);
	g_hash_table_unref(s->pending);
	g_hash_table_unref(s->written);
	g_string_free(s->ldif, TRUE);
	g_free(s->base_key);
	return err;
}

/* "dc=example,dc=org.ldif": '/', '%', control characters, a leading '.' escaped. */
static char *base_file_name(const char *base)
{
	GString *n = g_string_new(NULL);

	for (const unsigned char *p = (const unsigned char *)base; *p; p++) {
		if (*p == '/' || *p == '%' || *p < 0x20 || *p == 0x7f ||
		    (*p == '.' && p == (const unsigned char *)base))
			g_string_append_printf(n, "%%%02X", *p);
		else
			g_string_append_c(n, *p);
	}
	g_string_append(n, ".ldif");
	return g_string_free(n, FALSE);
}

static int export_base(struct kfs_ldap *l, GHashTable *ops, const char *base,
		       int dirfd, const char *dir, GPtrArray *out,
		       GPtrArray *created, GError **error)
{
	g_autofree char *name = base_file_name(base);
	struct search s = { .l = l, .operational = ops, .base = base };
	gint64 t0 = g_get_monotonic_time();
	struct kfs_ldap_export *e;
	uid_t uid;
	gid_t gid;
	int fd, err;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return kfs_ldap_fail(error, l, -errno, "%s/%s: %s", dir, name,
				     g_strerror(errno));
	g_ptr_array_add(created, g_strdup(name));
	kfs_test_point("ldap");
	s.fp = fdopen(fd, "w");
	if (!s.fp) {
		close(fd);
		return kfs_ldap_fail(error, l, -errno, "%s/%s: %s", dir, name, g_strerror(errno));
	}
	setvbuf(s.fp, NULL, _IOFBF, WRITE_BUF);
	err = search_base(&s, error);
	kfs_ldap_server_owner(l->conf, &uid, &gid);
	if (!err && (fflush(s.fp) != 0 || fchown(fd, uid, gid) < 0 ||
		     fchmod(fd, 0600) < 0 || fsync(fd) < 0))
		err = kfs_ldap_fail(error, l, -errno, "%s/%s: %s", dir, name,
				    g_strerror(errno));
	e = kfs_ldap_export_new(base, base, name);
	e->entries = s.entries;
	e->bytes = ftello(s.fp);
	if (fclose(s.fp) != 0 && !err)
		err = kfs_ldap_fail(error, l, -errno, "%s/%s: %s", dir, name,
				    g_strerror(errno));
	e->duration_ms = (g_get_monotonic_time() - t0) / 1000.0;
	if (err)
		kfs_ldap_export_free(e);
	else
		g_ptr_array_add(out, e);
	return err;
}

/* conf->bases, or the namingContexts of the root DSE. */
static int search_bases(struct kfs_ldap *l, char ***bases, GError **error)
{
	char *attrs[] = { "namingContexts", NULL };
	struct berval **vals = NULL;
	LDAPMessage *res, *e;
	GPtrArray *list;
	int err;

	if (l->conf->bases && l->conf->bases[0]) {
		*bases = g_strdupv(l->conf->bases);
		return 0;
	}
	err = kfs_ldap_search(l, "", LDAP_SCOPE_BASE, "(objectClass=*)", attrs,
			      &res, error);
	if (!err && (e = ldap_first_entry(l->ld, res)))
		vals = ldap_get_values_len(l->ld, e, "namingContexts");
	ldap_msgfree(res);
	if (err)
		return err;
	list = g_ptr_array_new();
	for (int i = 0; vals && vals[i]; i++)
		if (vals[i]->bv_len)
			g_ptr_array_add(list, g_strndup(vals[i]->bv_val, vals[i]->bv_len));
	ldap_value_free_len(vals);
	g_ptr_array_add(list, NULL);
	*bases = (char **)g_ptr_array_free(list, FALSE);
	if (!(*bases)[0]) {
		g_clear_pointer(bases, g_strfreev);
		return kfs_ldap_fail(error, l, -ENOENT, "the root DSE lists no namingContexts: set bases =");
	}
	return 0;
}

int kfs_ldap_search_export(struct kfs_ldap *l, int dirfd, const char *dir,
			   GPtrArray *out, GPtrArray *created, GError **error)
{
	g_auto(GStrv) bases = NULL;
	GHashTable *ops;
	int err;

	err = search_bases(l, &bases, error);
	if (err)
		return err;
	err = schema_operational(l, &ops, error);
	if (err)
		return err;
	for (int i = 0; !err && bases[i]; i++)
		err = export_base(l, ops, bases[i], dirfd, dir, out, created,
				  error);
	g_hash_table_unref(ops);
	return err;
}

int kfs_ldap_search_check(struct kfs_ldap *l, GString *report, GError **error)
{
	char *attrs[] = { LDAP_NO_ATTRS, NULL };
	g_auto(GStrv) bases = NULL;
	GHashTable *ops;
	int err;

	err = search_bases(l, &bases, error);
	if (err)
		return err;
	err = schema_operational(l, &ops, error);
	if (err)
		return err;
	g_hash_table_unref(ops);
	for (int i = 0; !err && bases[i]; i++) {
		g_autofree char *name = base_file_name(bases[i]);
		LDAPMessage *res;

		err = kfs_ldap_search(l, bases[i], LDAP_SCOPE_BASE,
				      "(objectClass=*)", attrs, &res, error);
		if (!err && !ldap_first_entry(l->ld, res))
			err = kfs_ldap_fail(error, l, -EACCES, "base %s: not readable", bases[i]);
		ldap_msgfree(res);
		if (!err)
			g_string_append_printf(report, "[ldap:%s] base %s -> %s\n",
					       l->conf->name, bases[i], name);
	}
	if (!err) {
		uid_t uid;
		gid_t gid;

		kfs_ldap_server_owner(l->conf, &uid, &gid);
		g_string_append_printf(report, "[ldap:%s] files will be owned by %u:%u%s\n",
				       l->conf->name, (unsigned int)uid, (unsigned int)gid,
				       uid ? " (the server's user)" : "");
	}
	return err;
}
