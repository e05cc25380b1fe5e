/* Unit tests of src/secret.c: which password files are read, which are
 * refused and how.  Run as root and as another user: what needs one of
 * them is skipped, with the reason, under the other. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "src/secret.h"

/* Never to appear in a message. */
#define PASSWORD "s3cr3t-Pa55"
#define NOBODY 65534

struct secret_dir {
	char *dir;
	char *path;             /* dir/pw, not yet created */
};

static void secret_dir_init(struct secret_dir *d)
{
	GError *error = NULL;

	d->dir = g_dir_make_tmp("kfs-test-secret-XXXXXX", &error);
	g_assert_no_error(error);
	d->path = g_build_filename(d->dir, "pw", NULL);
}

/* Removes dir/pw whatever it became (file, directory, link). */
static void secret_dir_clear(struct secret_dir *d)
{
	if (g_rmdir(d->path) < 0)
		g_unlink(d->path);
	g_assert_cmpint(g_rmdir(d->dir), ==, 0);
	g_free(d->path);
	g_free(d->dir);
}

/* Write LEN bytes of TEXT (-1: a string) to PATH with MODE. */
static void write_file(const char *path, const char *text, gssize len,
		       mode_t mode)
{
	GError *error = NULL;

	g_file_set_contents(path, text, len, &error);
	g_assert_no_error(error);
	/* g_file_set_contents() honours the umask: set the mode exactly. */
	g_assert_cmpint(chmod(path, mode), ==, 0);
}

/* Read D's file, expecting a refusal saying WHAT (with G_FILE_ERROR CODE)
 * that names the file and never shows the password. */
static void assert_refused(const struct secret_dir *d, GFileError code,
			   const char *what)
{
	GError *error = NULL;

	g_assert_null(kfs_secret_read(d->path, &error));
	g_assert_error(error, G_FILE_ERROR, (int)code);
	if (!g_str_has_prefix(error->message, d->path))
		g_error("the message does not start with the file: %s",
			error->message);
	if (!strstr(error->message, what))
		g_error("the message lacks \"%s\": %s", what, error->message);
	if (strstr(error->message, PASSWORD) || strstr(error->message, "s3cr3t"))
		g_error("the message shows the password: %s", error->message);
	g_error_free(error);
}

static void assert_reads(const struct secret_dir *d, const char *expect)
{
	GError *error = NULL;
	char *secret = kfs_secret_read(d->path, &error);

	g_assert_no_error(error);
	g_assert_cmpstr(secret, ==, expect);
	kfs_secret_free(secret);
}

static void test_ok(void)
{
	struct secret_dir d;
	char *big;

	secret_dir_init(&d);
	write_file(d.path, PASSWORD, -1, 0600);
	assert_reads(&d, PASSWORD);
	write_file(d.path, PASSWORD, -1, 0400);
	assert_reads(&d, PASSWORD);
	/* Spaces may be part of a password: kept. */
	write_file(d.path, " " PASSWORD " ", -1, 0600);
	assert_reads(&d, " " PASSWORD " ");
	/* 4096 bytes are allowed. */
	big = g_strnfill(4096, 'x');
	write_file(d.path, big, -1, 0600);
	assert_reads(&d, big);
	g_free(big);
	kfs_secret_free(NULL);
	secret_dir_clear(&d);
}

static void test_trailing_newline(void)
{
	struct secret_dir d;

	secret_dir_init(&d);
	write_file(d.path, PASSWORD "\n", -1, 0600);
	assert_reads(&d, PASSWORD);
	write_file(d.path, PASSWORD "\r\n", -1, 0600);
	assert_reads(&d, PASSWORD);
	/* Only one is dropped: a second line is refused, not sent. */
	write_file(d.path, PASSWORD "\n\n", -1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "has more than one line");
	write_file(d.path, PASSWORD "\n# the MySQL password\n", -1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "has more than one line");
	secret_dir_clear(&d);
}

static void test_mode(void)
{
	/* 0 ends the list. */
	static const mode_t modes[] = {
		0640, 0604, 0660, 0606, 0610, 0601, 0644, 0
	};
	struct secret_dir d;
	size_t i;

	secret_dir_init(&d);
	for (i = 0; modes[i]; i++) {
		char *what = g_strdup_printf("has mode %04o: its group or others may read or change it; expected no access for them (chmod 600 %s)",
					     (unsigned int)modes[i], d.path);

		write_file(d.path, PASSWORD, -1, modes[i]);
		assert_refused(&d, G_FILE_ERROR_PERM, what);
		g_free(what);
	}
	secret_dir_clear(&d);
}

static void test_directory(void)
{
	struct secret_dir d;

	secret_dir_init(&d);
	g_assert_cmpint(g_mkdir(d.path, 0700), ==, 0);
	assert_refused(&d, G_FILE_ERROR_INVAL,
		       "is a directory; expected a regular file");
	secret_dir_clear(&d);
}

static void test_fifo(void)
{
	struct secret_dir d;

	secret_dir_init(&d);
	g_assert_cmpint(mkfifo(d.path, 0600), ==, 0);
	/* Must not block waiting for a writer. */
	assert_refused(&d, G_FILE_ERROR_INVAL,
		       "is a FIFO; expected a regular file");
	secret_dir_clear(&d);
}

static void test_symlink(void)
{
	struct secret_dir d;
	char *target;

	secret_dir_init(&d);
	target = g_build_filename(d.dir, "target", NULL);
	write_file(target, PASSWORD, -1, 0600);
	g_assert_cmpint(symlink(target, d.path), ==, 0);
	assert_refused(&d, G_FILE_ERROR_LOOP, "is a symbolic link");
	g_unlink(target);
	g_free(target);
	secret_dir_clear(&d);
}

static void test_missing(void)
{
	struct secret_dir d;

	secret_dir_init(&d);
	assert_refused(&d, G_FILE_ERROR_NOENT, "does not exist");
	secret_dir_clear(&d);
}

static void test_empty(void)
{
	struct secret_dir d;

	secret_dir_init(&d);
	write_file(d.path, "", 0, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "is empty");
	/* A lone newline is empty too. */
	write_file(d.path, "\n", -1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "is empty");
	write_file(d.path, "\r\n", -1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "is empty");
	secret_dir_clear(&d);
}

static void test_too_big(void)
{
	struct secret_dir d;
	char *big = g_strnfill(4097, 'x');

	secret_dir_init(&d);
	write_file(d.path, big, -1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL,
		       "has 4097 bytes; expected a password of at most 4096 bytes");
	g_free(big);
	secret_dir_clear(&d);
}

static void test_nul(void)
{
	static const char text[] = PASSWORD "\0more";
	struct secret_dir d;

	secret_dir_init(&d);
	write_file(d.path, text, sizeof(text) - 1, 0600);
	assert_refused(&d, G_FILE_ERROR_INVAL, "contains a NUL byte");
	secret_dir_clear(&d);
}

/* Owned by someone else: only root can make such a file. */
static void test_owner(void)
{
	struct secret_dir d;
	char *what;

	if (geteuid() != 0) {
		g_test_skip("needs root to give a file to another user");
		return;
	}
	secret_dir_init(&d);
	write_file(d.path, PASSWORD, -1, 0600);
	g_assert_cmpint(chown(d.path, NOBODY, NOBODY), ==, 0);
	what = g_strdup_printf("is owned by uid %d; expected root (chown root %s)",
			       NOBODY, d.path);
	assert_refused(&d, G_FILE_ERROR_PERM, what);
	g_free(what);
	secret_dir_clear(&d);
}

/* A file we may not read: root reads everything. */
static void test_unreadable(void)
{
	struct secret_dir d;

	if (geteuid() == 0) {
		g_test_skip("root may read any file");
		return;
	}
	secret_dir_init(&d);
	write_file(d.path, PASSWORD, -1, 0000);
	assert_refused(&d, G_FILE_ERROR_ACCES,
		       "cannot be opened: Permission denied");
	secret_dir_clear(&d);
}

/* Files of our own are fine when we are not root (tests, rootless use). */
static void test_own_file(void)
{
	struct secret_dir d;
	struct stat st;

	secret_dir_init(&d);
	write_file(d.path, PASSWORD, -1, 0600);
	g_assert_cmpint(stat(d.path, &st), ==, 0);
	g_assert_cmpuint(st.st_uid, ==, geteuid());
	assert_reads(&d, PASSWORD);
	secret_dir_clear(&d);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/secret/ok", test_ok);
	g_test_add_func("/secret/trailing-newline", test_trailing_newline);
	g_test_add_func("/secret/mode", test_mode);
	g_test_add_func("/secret/directory", test_directory);
	g_test_add_func("/secret/fifo", test_fifo);
	g_test_add_func("/secret/symlink", test_symlink);
	g_test_add_func("/secret/missing", test_missing);
	g_test_add_func("/secret/empty", test_empty);
	g_test_add_func("/secret/too-big", test_too_big);
	g_test_add_func("/secret/nul", test_nul);
	g_test_add_func("/secret/owner", test_owner);
	g_test_add_func("/secret/unreadable", test_unreadable);
	g_test_add_func("/secret/own-file", test_own_file);
	return g_test_run();
}
