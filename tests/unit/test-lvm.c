/* Unit tests: LVM names, sizes and the errno mapping (snap/lvm.h).  No
 * LVM is touched: these are the pure parts. */
#include "autoconf.h"

#include <errno.h>
#include <string.h>
#include <glib.h>
#include <lvm2cmd.h>

#include "snap/lvm.h"

static void test_name_ok(void)
{
	g_assert_true(kfs_lvm_name_ok("vg_db01"));
	g_assert_true(kfs_lvm_name_ok("a+b.c-d_e"));
	g_assert_false(kfs_lvm_name_ok(""));
	g_assert_false(kfs_lvm_name_ok("-lv"));
	g_assert_false(kfs_lvm_name_ok("."));
	g_assert_false(kfs_lvm_name_ok(".."));
	g_assert_false(kfs_lvm_name_ok("a b"));
	g_assert_false(kfs_lvm_name_ok("a/b"));
	g_assert_false(kfs_lvm_name_ok("caf\xc3\xa9"));
}

static void test_dm_name(void)
{
	g_autofree char *a = kfs_lvm_dm_name("vg", "lv");
	g_autofree char *b = kfs_lvm_dm_name("vg-1", "lv-kfs-x");

	g_assert_cmpstr(a, ==, "vg-lv");
	g_assert_cmpstr(b, ==, "vg--1-lv--kfs--x");
}

static void test_snapshot_name(void)
{
	g_autofree char *plain = kfs_lvm_snapshot_name("vg", "lv_mysql", "2026-11-27T043000Z");
	g_autofree char *odd = kfs_lvm_snapshot_name("vg", "lv", "before upgrade_tmeta");
	g_autofree char *odd2 = kfs_lvm_snapshot_name("vg", "lv", "before upgrade.tmeta");
	g_autofree char *lvname = g_strnfill(100, 'l');
	g_autofree char *setname = g_strnfill(200, 's');
	g_autofree char *longer = kfs_lvm_snapshot_name("vg", lvname, setname);
	g_autofree char *dm = kfs_lvm_dm_name("vg", longer);

	g_assert_cmpstr(plain, ==, "lv_mysql-kfs-2026-11-27T043000Z");
	/* changed characters: '.' and a hash, so the two stay apart */
	g_assert_true(g_str_has_prefix(odd, "lv-kfs-before.upgrade.tmeta."));
	g_assert_cmpuint(strlen(odd), ==, strlen("lv-kfs-before.upgrade.tmeta.") + 8);
	g_assert_true(kfs_lvm_name_ok(odd));
	g_assert_null(strchr(odd + 3, '_'));
	g_assert_cmpstr(odd, !=, odd2);
	/* too long: shortened to fit device-mapper's names, still ours */
	g_assert_true(kfs_lvm_name_ok(longer));
	g_assert_nonnull(strstr(longer, KFS_LVM_SNAPSHOT_INFIX));
	g_assert_cmpuint(strlen(dm), <=, 110);
}

static void test_snapshot_size(void)
{
	struct kfs_lvm_lv lv = { .size = 1000ULL << 20, .extent_size = 4 << 20 };

	g_assert_cmpuint(kfs_lvm_snapshot_size(10ULL << 20, 0, &lv), ==, 12ULL << 20);
	g_assert_cmpuint(kfs_lvm_snapshot_size(8ULL << 20, 0, &lv), ==, 8ULL << 20);
	/* 20% of 1000 MiB is 200 MiB: whole extents already */
	g_assert_cmpuint(kfs_lvm_snapshot_size(0, 20, &lv), ==, 200ULL << 20);
	g_assert_cmpuint(kfs_lvm_snapshot_size(0, 0, &lv), ==, 200ULL << 20);
	g_assert_cmpuint(kfs_lvm_snapshot_size(0, 1, &lv), ==, 12ULL << 20);
	g_assert_cmpuint(kfs_lvm_snapshot_size(0, 100, &lv), ==, 1000ULL << 20);
}

static void test_errno(void)
{
	g_assert_cmpint(kfs_lvm_errno(LVM2_COMMAND_SUCCEEDED, "anything"), ==, 0);
	g_assert_cmpint(kfs_lvm_errno(LVM2_NO_SUCH_COMMAND, NULL), ==, -EINVAL);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED,
				      "Failed to find logical volume \"vg/x\""), ==, -ENOENT);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED,
				      "Volume group \"vg\" not found"), ==, -ENOENT);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED,
				      "Logical volume vg/x in use."), ==, -EBUSY);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED,
				      "Volume group \"vg\" has insufficient free space (1 extents): 5 required."),
			==, -ENOSPC);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED,
				      "Logical Volume \"x\" already exists in volume group \"vg\""),
			==, -EEXIST);
	g_assert_cmpint(kfs_lvm_errno(LVM2_PROCESSING_FAILED, "something else"), ==, -EIO);
	g_assert_cmpint(kfs_lvm_errno(LVM2_INIT_FAILED, NULL), ==, -EIO);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/lvm/name-ok", test_name_ok);
	g_test_add_func("/lvm/dm-name", test_dm_name);
	g_test_add_func("/lvm/snapshot-name", test_snapshot_name);
	g_test_add_func("/lvm/snapshot-size", test_snapshot_size);
	g_test_add_func("/lvm/errno", test_errno);
	return g_test_run();
}
