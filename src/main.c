/* kolabfs: start-up and shut-down, as a staged sequence.
 *
 * Mounting is the backup's pre-script and unmounting its post-script: the
 * process does not detach (so mount(8) does not return) until the first
 * set exists, and whatever fails before that is torn down again. */
#include "autoconf.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "../fs/bdi.h"
#include "../fs/passthrough.h"
#include "../fs/fs.h"
#include "../snap/ldap.h"
#include "../snap/lvm.h"
#include "../snap/mysql.h"
#include "../snap/sets.h"
#include "config.h"
#include "expire.h"
#include "log.h"
#include "options.h"

struct kfs_main {
	struct kfs_options opts;
	struct kfs_config *cfg;
	struct kfs_sets *sets;
	struct kfs_fs *fs;
	struct fuse_session *se;
	struct kfs_expire *expire;      /* idle_timeout, max_age; NULL if off */
	struct kfs_bdi *bdi;            /* raises read_ahead_kb; NULL if not */
};

/* Open files hold a descriptor each; tools like restic open many. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int stage_config(struct kfs_main *m)
{
	GError *error = NULL;

	m->cfg = kfs_config_load(m->opts.config, &error);
	if (m->cfg && !kfs_config_check_host(m->cfg, &error)) {
		kfs_config_destroy(m->cfg);
		m->cfg = NULL;
	}
	if (!m->cfg) {
		kfs_err("%s", error->message);
		g_error_free(error);
		return -1;
	}
	return 0;
}

static int check_ldaps(const struct kfs_config *cfg)
{
	GError *error = NULL;
	size_t i;

	for (i = 0; i < cfg->n_ldaps; i++) {
		g_autoptr(GString) report = g_string_new(NULL);

		if (!kfs_ldap_check(&cfg->ldaps[i], report, &error)) {
			kfs_err("%s", error->message);
			g_error_free(error);
			return -1;
		}
		printf("ldap %s: %s\n%s", cfg->ldaps[i].name, cfg->ldaps[i].uri, report->str);
	}
	return 0;
}

/* --check reaches every server it would use, and takes nothing. */
static int check_servers(const struct kfs_config *cfg)
{
	g_autoptr(GPtrArray) warnings = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *line = NULL;
	struct kfs_mysql *my;
	GError *error = NULL;
	guint i;

	if (check_ldaps(cfg) < 0)
		return -1;
	if (!cfg->mysql || cfg->mysql->lock == KFS_MYSQL_LOCK_NONE)
		return 0;
	my = kfs_mysql_connect(cfg, &error);
	if (!my || !kfs_mysql_check(my, warnings, &error)) {
		kfs_err("%s", error->message);
		g_error_free(error);
		kfs_mysql_destroy(my);
		return -1;
	}
	line = kfs_mysql_describe(my);
	printf("%s\n", line);
	for (i = 0; i < warnings->len; i++)
		printf("warning: %s\n", (char *)g_ptr_array_index(warnings, i));
	kfs_mysql_destroy(my);
	return 0;
}

static void print_volume(const struct kfs_volume_conf *v, struct kfs_lvm **lvm)
{
	g_autofree char *what = NULL;

	if (v->backend == KFS_BACKEND_LVM && (*lvm || (*lvm = kfs_lvm_create(NULL))))
		what = kfs_lvm_volume_describe(*lvm, v);
	else
		what = g_strdup_printf("btrfs subvolume %s", v->path);
	printf("volume %s: %s%s%s\n", v->name, what, v->subdir ? ", subdir " : "",
	       v->subdir ? v->subdir : "");
}

static void print_version(void)
{
	printf("kolabfs %s\nFUSE library version %s\n", PACKAGE_VERSION, fuse_pkgversion());
	printf("FUSE passthrough: %s\n", kfs_passthrough_built() ?
	       "built in (used where the kernel offers it)" : "not built in (libfuse < 3.17)");
#ifdef HAVE_FUSE_REQ_IS_URING
	printf("FUSE over io_uring: built in (used where the kernel allows it: "
	       "/sys/module/fuse/parameters/enable_uring)\n");
#else
	printf("FUSE over io_uring: not built in (libfuse < 3.18)\n");
#endif
}

static void print_check(const struct kfs_config *cfg)
{
	struct kfs_lvm *lvm = NULL;
	size_t i;

	printf("%s: OK\n", cfg->file);
	printf("state_dir: %s\n", cfg->state_dir);
	if (cfg->idle_timeout)
		printf("idle_timeout: %u s without an open file, then unmount\n", cfg->idle_timeout);
	if (cfg->max_age)
		printf("max_age: %u s, then a set is dropped\n", cfg->max_age);
	for (i = 0; i < cfg->n_volumes; i++)
		print_volume(&cfg->volumes[i], &lvm);
	kfs_lvm_destroy(lvm);
	for (i = 0; i < cfg->n_copies; i++) {
		g_autofree char *paths = g_strjoinv(", ", cfg->copies[i].paths);

		printf("copy %s: %s\n", cfg->copies[i].name, paths);
	}
}

static int stage_first_set(struct kfs_main *m)
{
	GError *error = NULL;

	m->sets = kfs_sets_create(m->cfg, &error);
	if (m->sets && kfs_sets_take(m->sets, NULL, NULL, &error) == 0)
		return 0;
	kfs_err("%s", error->message);
	g_error_free(error);
	return -1;
}

static int stage_mount(struct kfs_main *m)
{
	m->fs = kfs_fs_create(m->cfg, m->sets);
	if (!m->fs)
		return -1;
	m->se = fuse_session_new(&m->opts.fuse_args, kfs_fs_ops(), sizeof(struct fuse_lowlevel_ops),
				 m->fs);
	if (!m->se)
		return -1;
	kfs_fs_set_session(m->fs, m->se);
	if (fuse_set_signal_handlers(m->se) != 0)
		return -1;
	if (fuse_session_mount(m->se, m->opts.mountpoint) != 0) {
		kfs_err("cannot mount on %s", m->opts.mountpoint);
		return -1;
	}
	return 0;
}

/*
 * The loop returns the (positive) number of the signal that ended it:
 * SIGTERM, SIGINT and SIGHUP ask for an unmount, as umount(8) does, and
 * that is no failure.
 */
static int serve_result(int ret)
{
	if (ret > 0) {
		kfs_info("%s: unmounting", strsignal(ret));
		return 0;
	}
	return ret;
}

static int stage_serve(struct kfs_main *m)
{
	struct fuse_loop_config *lc;
	int ret;

	if (fuse_daemonize(m->opts.foreground) != 0)
		return -1;
	if (!m->opts.foreground)
		kfs_log_to_syslog();
	kfs_sets_daemonized(m->sets);
	m->expire = kfs_expire_start(m->cfg, m->sets, m->opts.mountpoint);
	m->bdi = kfs_bdi_tune_start(m->opts.mountpoint, KFS_READ_AHEAD_KB);
	kfs_info("mounted on %s", m->opts.mountpoint);
	if (m->opts.singlethread)
		return serve_result(fuse_session_loop(m->se));
	lc = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(lc, m->opts.clone_fd);
	fuse_loop_cfg_set_max_threads(lc, m->opts.max_threads);
	if (m->opts.max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(lc, m->opts.max_idle_threads);
	ret = fuse_session_loop_mt(m->se, lc);
	fuse_loop_cfg_destroy(lc);
	return serve_result(ret);
}

/*
 * A second SIGTERM (kolabfs-hook and systemd both send one to the process
 * and one to its group) must not kill kolabfs half-way through dropping
 * its sets; any thread could take it once libfuse's handlers are gone.
 */
static void ignore_signals(void)
{
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* fuse_remove_signal_handlers() put SIGPIPE back to the default. */
	signal(SIGPIPE, SIG_IGN);
}

/* Undo every stage that was reached; the sets go last, after the kernel
 * has let go of the mount.  false if a snapshot could not be removed:
 * the exit status must tell the backup software (the record stays for
 * the next start to reap). */
static bool stage_teardown(struct kfs_main *m, bool mounted)
{
	bool complete;

	/* First: it must not drop a set or unmount while this tears down. */
	kfs_expire_stop(m->expire);
	if (m->se) {
		kfs_fs_set_session(m->fs, NULL);
		if (mounted)
			fuse_session_unmount(m->se);
		fuse_remove_signal_handlers(m->se);
		fuse_session_destroy(m->se);
	}
	kfs_bdi_tune_stop(m->bdi);
	ignore_signals();
	kfs_fs_destroy(m->fs);
	complete = kfs_sets_destroy(m->sets);
	kfs_config_destroy(m->cfg);
	kfs_options_clear(&m->opts);
	return complete;
}

/*
 * SIGTERM, SIGINT and SIGHUP wait while the first set is taken: dying in
 * the middle would leave snapshots (and, briefly, a MySQL lock) for the
 * next start to reap.  Once libfuse's handlers are in place they are let
 * through, and a signal that came meanwhile ends the loop at once.
 */
static void hold_signals(bool hold)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

int main(int argc, char **argv)
{
	struct kfs_main m = { 0 };
	GError *error = NULL;
	bool mounted = false;
	int ret = 1;

	umask(022);
	/*
	 * A server that resets its connection (an LDAP server that died
	 * between two pages of a search) must fail the set, not kill the
	 * process half-way through it: libldap writes with write(2), so
	 * its next request raises SIGPIPE.  libmariadb ignores SIGPIPE when
	 * it starts and libfuse once mounted, but the first set without
	 * [mysql], and --check, had nothing.
	 */
	signal(SIGPIPE, SIG_IGN);
	kfs_log_init(false);
	if (!kfs_options_parse(argc, argv, &m.opts, &error)) {
		kfs_err("%s (try --help)", error->message);
		g_error_free(error);
		kfs_options_clear(&m.opts);
		return 2;
	}
	kfs_log_init(m.opts.debug);
	if (m.opts.help || m.opts.version) {
		if (m.opts.help)
			kfs_options_usage(argv[0]);
		else
			print_version();
		ret = 0;
		goto out;
	}
	if (stage_config(&m) < 0)
		goto out;
	if (m.opts.check) {
		print_check(m.cfg);
		ret = check_servers(m.cfg) == 0 ? 0 : 1;
		goto out;
	}
	raise_fd_limit();
	hold_signals(true);
	if (stage_first_set(&m) < 0 || stage_mount(&m) < 0)
		goto out;
	mounted = true;
	hold_signals(false);
	ret = stage_serve(&m) == 0 ? 0 : 1;
out:
	if (!stage_teardown(&m, mounted))
		ret = 1;
	return ret;
}
