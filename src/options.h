/* kolabfs: the command line, kolabfs(8). */
#ifndef KFS_OPTIONS_H
#define KFS_OPTIONS_H

#include <stdbool.h>
#include <glib.h>

#include "../fs/fs.h"

struct kfs_options {
	char *config;           /* CONFIG, or -o config=FILE */
	char *mountpoint;       /* canonical */
	bool check;
	bool help;
	bool version;
	bool no_io_uring;       /* -o no_io_uring: requests by read/write */
	bool foreground;
	bool debug;
	bool singlethread;
	int clone_fd;
	unsigned int max_idle_threads;  /* UINT_MAX: libfuse's default */
	unsigned int max_threads;
	struct fuse_args fuse_args;     /* what goes to fuse_session_new() */
};

/*
 * Parse argv: `kolabfs [CONFIG] MOUNTPOINT [-o OPTS] [-f] [-d]`,
 * `kolabfs --check [CONFIG]`, `--help`, `--version`.  mount.fuse3 calls
 * us as `kolabfs CONFIG MOUNTPOINT -o OPTS`.  Returns false with *error
 * set on a usage error.
 */
bool kfs_options_parse(int argc, char **argv, struct kfs_options *opts, GError **error);
void kfs_options_clear(struct kfs_options *opts);
void kfs_options_usage(const char *prog);

#endif
