/* Unit tests: st_ino mapping (fs/ino.h). */
#include "autoconf.h"

#include <glib.h>

#include "fs/ino.h"

static void test_roundtrip(void)
{
	uint64_t ino = kfs_ino_make(0x1234, 257);

	g_assert_cmpuint(kfs_ino_space(ino), ==, 0x1234);
	g_assert_cmpuint(kfs_ino_local(ino), ==, 257);
	/* different spaces never collide, even for the same local number */
	g_assert_cmpuint(kfs_ino_make(1, 257), !=, kfs_ino_make(2, 257));
	/* the same (space, local) is the same number: stable across sets */
	g_assert_cmpuint(kfs_ino_make(7, 99), ==, kfs_ino_make(7, 99));
}

static void test_limits(void)
{
	g_assert_cmpuint(kfs_ino_make(0xfffe, KFS_INO_LOCAL_MASK), !=, 0);
	g_assert_cmpuint(kfs_ino_space(kfs_ino_make(0xfffe, KFS_INO_LOCAL_MASK)), ==, 0xfffe);
	g_assert_cmpuint(kfs_ino_make(3, KFS_INO_LOCAL_MASK + 1), ==, 0);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ino/roundtrip", test_roundtrip);
	g_test_add_func("/ino/limits", test_limits);
	return g_test_run();
}
