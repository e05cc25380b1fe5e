/* Unit tests: paths below a source root longer than PATH_MAX (fs/path.c). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib.h>

#include "fs/path.h"
#include "snap/rmtree.h"

static void test_piece(void)
{
	/* shorter than MAX: all of it */
	g_assert_cmpuint(kfs_path_piece("", 8), ==, 0);
	g_assert_cmpuint(kfs_path_piece("abc/def", 8), ==, 7);
	/* MAX or longer: up to the last '/' that leaves a piece < MAX */
	g_assert_cmpuint(kfs_path_piece("abc/defg", 8), ==, 3);
	g_assert_cmpuint(kfs_path_piece("abcdefg/h", 8), ==, 7);
	g_assert_cmpuint(kfs_path_piece("ab/cd/ef/gh", 8), ==, 5);
	/* a component that long, or a leading '/': no piece */
	g_assert_cmpuint(kfs_path_piece("abcdefgh/i", 8), ==, 0);
	g_assert_cmpuint(kfs_path_piece("/abc", 8), ==, 0);
	g_assert_cmpuint(kfs_path_piece("/", 8), ==, 0);
}

struct deep {
	char *tmp;
	int root_fd;
	GString *path;          /* from root_fd to the file "leaf" */
};

/* DEPTH directories of 200-byte names below a new temporary directory,
 * made one level at a time (the kernel would refuse the whole path). */
static void deep_make(struct deep *d, int depth)
{
	char name[201];
	int fd, next, i;

	d->tmp = g_dir_make_tmp("kfs-path-XXXXXX", NULL);
	g_assert_nonnull(d->tmp);
	d->root_fd = open(d->tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(d->root_fd, >=, 0);
	d->path = g_string_new(NULL);
	fd = dup(d->root_fd);
	for (i = 0; i < depth; i++) {
		memset(name, 'a' + i % 26, 200);
		name[200] = '\0';
		g_assert_cmpint(mkdirat(fd, name, 0755), ==, 0);
		next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		g_assert_cmpint(next, >=, 0);
		close(fd);
		fd = next;
		g_string_append_printf(d->path, "%s/", name);
	}
	next = openat(fd, "leaf", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	g_assert_cmpint(next, >=, 0);
	g_assert_cmpint(write(next, "bottom", 6), ==, 6);
	close(next);
	close(fd);
	g_string_append(d->path, "leaf");
}

static void deep_clear(struct deep *d)
{
	close(d->root_fd);
	g_assert_cmpint(kfs_rmtree(d->tmp), ==, 0);
	g_free(d->tmp);
	g_string_free(d->path, TRUE);
}

/* Short paths are ROOT_FD itself and the path unchanged. */
static void test_at_short(void)
{
	struct deep d;
	const char *rest;
	struct stat st;

	deep_make(&d, 3);
	g_assert_cmpint(kfs_path_at(d.root_fd, d.path->str, &rest), ==, d.root_fd);
	g_assert_true(rest == d.path->str);
	g_assert_cmpint(fstatat(d.root_fd, rest, &st, AT_SYMLINK_NOFOLLOW), ==, 0);
	g_assert_cmpint(st.st_size, ==, 6);
	kfs_path_at_put(d.root_fd, d.root_fd);
	g_assert_cmpint(fcntl(d.root_fd, F_GETFD), >=, 0);     /* still open */
	g_assert_cmpint(kfs_path_at(d.root_fd, "", &rest), ==, d.root_fd);
	g_assert_cmpstr(rest, ==, "");
	g_assert_cmpint(kfs_path_at(d.root_fd, "/etc/passwd", &rest), ==, -EINVAL);
	deep_clear(&d);
}

static void test_at_deep(void)
{
	struct deep d;
	const char *rest;
	struct stat st;
	char buf[8];
	int at, fd;

	deep_make(&d, 45);      /* 9049 bytes */
	g_assert_cmpuint(d.path->len, >, 2 * PATH_MAX);
	/* the premise: the kernel refuses it in one piece */
	g_assert_cmpint(fstatat(d.root_fd, d.path->str, &st, AT_SYMLINK_NOFOLLOW), ==, -1);
	g_assert_cmpint(errno, ==, ENAMETOOLONG);

	at = kfs_path_at(d.root_fd, d.path->str, &rest);
	g_assert_cmpint(at, >=, 0);
	g_assert_cmpint(at, !=, d.root_fd);
	g_assert_cmpuint(strlen(rest), <, PATH_MAX);
	g_assert_true(g_str_has_suffix(d.path->str, rest));
	g_assert_cmpint(d.path->str[d.path->len - strlen(rest) - 1], ==, '/');
	fd = openat(at, rest, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(read(fd, buf, sizeof(buf)), ==, 6);
	g_assert_cmpmem(buf, 6, "bottom", 6);
	close(fd);
	kfs_path_at_put(d.root_fd, at);
	g_assert_cmpint(fcntl(at, F_GETFD), ==, -1);    /* closed */

	/* a missing directory on the way, in the first piece and later */
	d.path->str[300] = 'Z';
	g_assert_cmpint(kfs_path_at(d.root_fd, d.path->str, &rest), ==, -ENOENT);
	d.path->str[300] = d.path->str[299];
	d.path->str[5000] = 'Z';
	g_assert_cmpint(kfs_path_at(d.root_fd, d.path->str, &rest), ==, -ENOENT);
	deep_clear(&d);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/path/piece", test_piece);
	g_test_add_func("/path/at/short", test_at_short);
	g_test_add_func("/path/at/deep", test_at_deep);
	return g_test_run();
}
