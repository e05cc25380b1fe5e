/* kolabfs: the command line.
 *
 * kolabfs's own arguments (CONFIG, --check, -o config=) are taken out
 * first; what is left is libfuse's (-f, -d, -s, -o ...), to which the
 * options every kolabfs mount needs are added. */
#include "autoconf.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "options.h"

enum { KEY_CHECK, KEY_HELP, KEY_VERSION, KEY_NO_IO_URING };

struct parse_state {
	struct kfs_options *opts;
	GPtrArray *positional;
	char *config_opt;
};

static const struct fuse_opt kfs_opt_spec[] = {
	{ "config=%s", offsetof(struct parse_state, config_opt), 0 },
	FUSE_OPT_KEY("--check", KEY_CHECK),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("no_io_uring", KEY_NO_IO_URING),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_state *ps = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		g_ptr_array_add(ps->positional, g_strdup(arg));
		return 0;
	case KEY_CHECK:
		ps->opts->check = true;
		return 0;
	case KEY_HELP:
		ps->opts->help = true;
		return 0;
	case KEY_VERSION:
		ps->opts->version = true;
		return 0;
	case KEY_NO_IO_URING:
		ps->opts->no_io_uring = true;
		return 0;
	default:
		return 1;
	}
}

static bool has_option(const struct fuse_args *args, const char *prefix)
{
	int i;

	for (i = 1; i < args->argc; i++)
		if (strstr(args->argv[i], prefix))
			return true;
	return false;
}

/* One positional argument is the mountpoint, except with --check, where
 * there is no mountpoint. */
static bool assign_positional(struct parse_state *ps, GError **error)
{
	struct kfs_options *o = ps->opts;
	GPtrArray *pos = ps->positional;
	const char *mp = NULL;

	if (pos->len > 2 || (o->check && pos->len > 1)) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED,
			    "too many arguments: %s", (char *)g_ptr_array_index(pos, pos->len - 1));
		return false;
	}
	if (pos->len == 2 || (o->check && pos->len == 1))
		o->config = g_strdup(g_ptr_array_index(pos, 0));
	if (!o->check && pos->len >= 1)
		mp = g_ptr_array_index(pos, pos->len - 1);
	if (ps->config_opt) {
		g_free(o->config);
		o->config = g_strdup(ps->config_opt);
	}
	if (!o->config)
		o->config = g_strdup(KFS_DEFAULT_CONFIG);
	if (o->check || o->help || o->version)
		return true;
	if (!mp) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "no mountpoint given");
		return false;
	}
	o->mountpoint = realpath(mp, NULL);
	if (!o->mountpoint) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "mountpoint %s: %s",
			    mp, g_strerror(errno));
		return false;
	}
	return true;
}

static bool fuse_part(struct kfs_options *o, GError **error)
{
	struct fuse_cmdline_opts c;
	g_autofree char *fsname = NULL;

	memset(&c, 0, sizeof(c));
	if (fuse_parse_cmdline(&o->fuse_args, &c) != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "invalid FUSE options");
		return false;
	}
	free(c.mountpoint);
	o->foreground = c.foreground;
	o->debug = c.debug;
	o->singlethread = c.singlethread;
	o->clone_fd = c.clone_fd;
	o->max_idle_threads = c.max_idle_threads;
	o->max_threads = c.max_threads;
	/* Every user sees the snapshots, each with the permissions of the
	 * files themselves; mkdir/rmdir need a read-write mount. */
	fuse_opt_add_arg(&o->fuse_args, "-odefault_permissions,allow_other");
	if (!has_option(&o->fuse_args, "fsname=")) {
		fsname = g_strdup_printf("-ofsname=%s", o->config);
		/* fuse_opt would split the name at a comma */
		g_strdelimit(fsname + 2, ",", '_');
		fuse_opt_add_arg(&o->fuse_args, fsname);
	}
	if (!has_option(&o->fuse_args, "subtype="))
		fuse_opt_add_arg(&o->fuse_args, "-osubtype=kolabfs");
#ifdef HAVE_FUSE_REQ_IS_URING
	/* Requests over io_uring, where the kernel allows it (the fuse
	 * module's enable_uring): no read/write syscall pair per request,
	 * which is most of a walk's cost (doc/design.md). */
	if (!o->no_io_uring && !has_option(&o->fuse_args, "io_uring"))
		fuse_opt_add_arg(&o->fuse_args, "-oio_uring");
#endif
	return true;
}

bool kfs_options_parse(int argc, char **argv, struct kfs_options *o, GError **error)
{
	struct parse_state ps = { o, g_ptr_array_new_with_free_func(g_free), NULL };
	bool ok = false;

	memset(o, 0, sizeof(*o));
	o->fuse_args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(&o->fuse_args, &ps, kfs_opt_spec, opt_proc) != 0) {
		g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_FAILED, "invalid arguments");
		goto out;
	}
	if (!assign_positional(&ps, error))
		goto out;
	ok = (o->check || o->help || o->version) ? true : fuse_part(o, error);
out:
	free(ps.config_opt);
	g_ptr_array_unref(ps.positional);
	return ok;
}

void kfs_options_clear(struct kfs_options *o)
{
	g_free(o->config);
	free(o->mountpoint);
	fuse_opt_free_args(&o->fuse_args);
}

void kfs_options_usage(const char *prog)
{
	printf("usage: %s [CONFIG] MOUNTPOINT [-o OPTIONS] [-f] [-d]\n"
	       "       %s --check [CONFIG]\n"
	       "       %s --version | --help\n"
	       "\n"
	       "Mounts consistent, dated snapshot sets of a Kolab server for backup.\n"
	       "CONFIG defaults to " KFS_DEFAULT_CONFIG ".\n"
	       "\n"
	       "    -o config=FILE   the configuration file (as CONFIG)\n"
	       "    -o no_io_uring   FUSE requests by read/write, not io_uring (libfuse >= 3.18)\n"
	       "    -f               stay in the foreground\n"
	       "    -d               debug output (implies -f)\n"
	       "    --check          validate CONFIG and the volumes; create nothing\n"
	       "    -o OPTIONS       other options go to FUSE (see mount.fuse3(8))\n"
	       "\n"
	       "See kolabfs(8) and kolabfs.conf(5).\n", prog, prog, prog);
}
