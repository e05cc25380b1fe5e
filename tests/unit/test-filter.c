/* Unit tests: presets and exclude globs (fs/filter.c). */
#include "autoconf.h"

#include <errno.h>
#include <sys/stat.h>
#include <glib.h>

#include "fs/filter.h"

struct filter_case {
	const char *parent;
	const char *name;
	mode_t mode;
	bool hidden;
};

static void check_cases(const struct kfs_filter *f, const struct filter_case *c)
{
	for (; c->name; c++) {
		bool got = kfs_filter_hides(f, c->parent, c->name, c->mode);

		if (got != c->hidden)
			g_error("%s/%s (mode %o): expected %s", c->parent, c->name,
				c->mode, c->hidden ? "hidden" : "shown");
	}
}

static void test_cyrus_spool(void)
{
	static const struct filter_case cases[] = {
		{ "", "cyrus.squat", S_IFREG, true },
		{ "a/b/c", "cyrus.squat", S_IFREG, true },
		{ "user/john", "cyrus.cache.NEW", S_IFREG, true },
		{ "user/john", "cyrus.expunge.NEW", S_IFREG, true },
		{ "user/john", "cyrus.index.NEW", S_IFREG, true },
		{ "", "stage.", S_IFDIR, true },
		{ "x/y", "sync.", S_IFDIR, true },
		/* near misses stay */
		{ "", "cyrus.squatter", S_IFREG, false },
		{ "", "cyrus.cache", S_IFREG, false },
		{ "", "cyrus.index", S_IFREG, false },
		{ "", "xcyrus.squat", S_IFREG, false },
		{ "", "stage.old", S_IFDIR, false },
		{ "", "stage", S_IFDIR, false },
		{ "", "stage.", S_IFREG, false },
		{ "", "1.", S_IFREG, false },
		{ NULL, NULL, 0, false }
	};
	struct kfs_filter *f = kfs_filter_create("cyrus-spool", NULL);

	g_assert_nonnull(f);
	g_assert_true(kfs_filter_needs_type(f));
	check_cases(f, cases);
	kfs_filter_destroy(f);
}

static void test_cyrus_meta_and_mysql(void)
{
	static const struct filter_case meta[] = {
		{ "", "socket", S_IFDIR, true },
		{ "", "socket", S_IFREG, false },
		{ "lock", "user.lock", S_IFREG, true },
		{ "", "mailboxes.db.lock.1", S_IFREG, true },
		{ "", "mailboxes.db", S_IFREG, false },
		{ "", "sockets", S_IFDIR, false },
		{ NULL, NULL, 0, false }
	};
	static const struct filter_case my[] = {
		{ "", "mysql.sock", S_IFSOCK, true },
		{ "deep/er", "anything", S_IFSOCK, true },
		{ "", "db01.pid", S_IFREG, true },
		{ "", "mysql.sock", S_IFREG, false },
		{ "", "ibdata1", S_IFREG, false },
		{ "", "pid", S_IFREG, false },
		{ NULL, NULL, 0, false }
	};
	struct kfs_filter *f = kfs_filter_create("cyrus-meta", NULL);

	check_cases(f, meta);
	kfs_filter_destroy(f);
	f = kfs_filter_create("mysql", NULL);
	check_cases(f, my);
	kfs_filter_destroy(f);
}

static void test_globs(void)
{
	char *globs[] = { "*.tmp", "cache/", "/top/only", "a/*/c", NULL };
	static const struct filter_case cases[] = {
		{ "", "x.tmp", S_IFREG, true },
		{ "d/e", "y.tmp", S_IFDIR, true },
		{ "", "x.tmpl", S_IFREG, false },
		{ "q", "cache", S_IFDIR, true },
		{ "q", "cache", S_IFREG, false },
		{ "", "top", S_IFDIR, false },
		{ "top", "only", S_IFREG, true },
		{ "sub/top", "only", S_IFREG, false },
		{ "a/b", "c", S_IFREG, true },
		{ "a/b/x", "c", S_IFREG, false },
		{ "", ".kolabfs-snapshots", S_IFDIR, true },
		{ "sub", ".kolabfs-snapshots", S_IFDIR, false },
		{ NULL, NULL, 0, false }
	};
	struct kfs_filter *f = kfs_filter_create(NULL, globs);

	g_assert_nonnull(f);
	check_cases(f, cases);
	kfs_filter_destroy(f);
}

static void test_invalid(void)
{
	char *empty[] = { "ok", "", NULL };
	char *slash[] = { "/", NULL };

	errno = 0;
	g_assert_null(kfs_filter_create("cyrus", NULL));
	g_assert_cmpint(errno, ==, EINVAL);
	g_assert_null(kfs_filter_create(NULL, empty));
	g_assert_null(kfs_filter_create(NULL, slash));
	g_assert_false(kfs_filter_hides(NULL, "", "x", S_IFREG));
	/* what kolabfs.conf's exclude is checked with */
	g_assert_true(kfs_filter_glob_ok("x/"));
	g_assert_true(kfs_filter_glob_ok("/top/only"));
	g_assert_false(kfs_filter_glob_ok(""));
	g_assert_false(kfs_filter_glob_ok("/"));
	g_assert_false(kfs_filter_glob_ok("//"));
	g_assert_false(kfs_filter_glob_ok("///"));
	g_assert_null(kfs_filter_create(NULL, (char *[]){ "//", NULL }));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/filter/cyrus-spool", test_cyrus_spool);
	g_test_add_func("/filter/cyrus-meta-mysql", test_cyrus_meta_and_mysql);
	g_test_add_func("/filter/globs", test_globs);
	g_test_add_func("/filter/invalid", test_invalid);
	return g_test_run();
}
