/* kolabfs: the configuration file, kolabfs.conf(5). */
#ifndef KFS_CONFIG_H
#define KFS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <glib.h>

#define KFS_DEFAULT_CONFIG "/etc/kolabfs/kolabfs.conf"
#define KFS_DEFAULT_STATE_DIR "/var/lib/kolabfs"
#define KFS_DEFAULT_NAME_FORMAT "%Y-%m-%dT%H%M%SZ"
/* A classic LVM snapshot without snapshot_size: a fifth of its origin. */
#define KFS_DEFAULT_SNAPSHOT_PERCENT 20
#define KFS_DEFAULT_SNAPSHOT_SIZE "20%ORIGIN"
/* idle_timeout and max_age: at most a year, in seconds; 0 is off. */
#define KFS_MAX_LIFETIME_SECONDS (366u * 86400u)

enum kfs_backend_kind { KFS_BACKEND_BTRFS, KFS_BACKEND_LVM };

struct kfs_volume_conf {
	char *name;             /* [volume:NAME]: the directory in each set */
	enum kfs_backend_kind backend;
	char *path;             /* btrfs: the subvolume (absolute, canonical) */
	char *lv;               /* lvm: VG/LV, both of LVM's name characters */
	char *snapshot_size;    /* lvm classic: as written; NULL: the default */
	guint64 snapshot_bytes; /* snapshot_size = 10G: bytes; else 0 */
	unsigned int snapshot_percent;  /* snapshot_size = 20%ORIGIN: 1..100; else 0 */
	char *subdir;           /* NULL: the whole volume; else relative, no ".." */
	char *preset;           /* NULL or cyrus-spool | cyrus-meta | mysql */
	char **exclude;         /* NULL-terminated globs, never NULL */
	unsigned int ino_space; /* 1..0xfffe, stable for NAME: st_ino's top 16 bits */
	int line;               /* line of the group header, for messages */
	int path_line;          /* line of path =, for kfs_config_check_host */
	int lv_line;            /* line of lv = */
	int snapshot_size_line; /* line of snapshot_size =, 0 if absent */
	int subdir_line;        /* line of subdir =, 0 if absent */
};

struct kfs_copy_conf {
	char *name;             /* [copy:NAME] */
	char **paths;           /* NULL-terminated absolute paths (canonical) */
	unsigned int ino_space;
	int line;
	int paths_line;         /* line of paths = */
};

enum kfs_mysql_lock {
	KFS_MYSQL_LOCK_FTWRL,           /* FLUSH TABLES WITH READ LOCK (default) */
	KFS_MYSQL_LOCK_BACKUP_STAGE,    /* MariaDB >= 10.4: BACKUP STAGE ... BLOCK_COMMIT */
	KFS_MYSQL_LOCK_REPLICA,         /* STOP SLAVE SQL_THREAD on a replica */
	KFS_MYSQL_LOCK_NONE,            /* crash-consistent, said so in MANIFEST */
};

/* [mysql]: the lock held while every volume is snapshotted. */
struct kfs_mysql_conf {
	char *socket;           /* absolute; NULL: host/port or the default */
	char *host;             /* NULL with socket, and when neither is given:
				 * then libmysqlclient's default applies (the
				 * local socket it was built with) */
	unsigned int port;      /* default 3306; only given with host */
	char *user;             /* default root */
	char *password_file;    /* absolute; NULL: no password */
	enum kfs_mysql_lock lock;
	unsigned int lock_wait_timeout; /* seconds, 1..3600, default 30 */
	bool require_complete;  /* default true: refuse a set whose datadir,
				 * binlog or InnoDB logs lie outside the volumes */
	int line;               /* of the [mysql] header */
	int password_file_line; /* 0 without password_file */
};

enum kfs_ldap_mode {
	KFS_LDAP_TASK,          /* 389-ds online export task (default) */
	KFS_LDAP_SEARCH,        /* paged search, any server */
};

/* [ldap:NAME]: one directory server, exported to LDIF with every set. */
struct kfs_ldap_conf {
	char *name;
	char *uri;              /* ldap://, ldaps:// or ldapi://; one, no DN */
	char *ldapi_path;       /* ldapi://: the socket path, %-decoded; NULL:
				 * not ldapi, or libldap's default socket */
	/*
	 * bind_dn and password_file: simple bind.  Neither: anonymous
	 * (search mode only), SASL EXTERNAL over ldapi://.  bind_dn alone
	 * (ldapi:// only): SASL EXTERNAL, and bind_dn is the identity the
	 * server must map kolabfs to (check it with Who am I?).
	 */
	char *bind_dn;
	char *password_file;    /* absolute; NULL: none (then bind_dn too,
				 * except over ldapi://) */
	enum kfs_ldap_mode mode;
	char **bases;           /* search mode; NULL: namingContexts of the root
				 * DSE; always NULL in task mode */
	bool starttls;          /* ldap:// only: StartTLS, required to succeed */
	unsigned int timeout;   /* seconds for every network wait, default 30 */
	unsigned int ino_space; /* kfs_ino_space_of("ldap", name) */
	int line;
	int uri_line;
	int password_file_line; /* 0 without password_file */
};

struct kfs_config {
	char *file;             /* as given on the command line */
	char *state_dir;        /* absolute, canonical */
	int state_dir_line;     /* 0 when it is the default */
	char *name_format;
	unsigned int idle_timeout;      /* seconds without an open handle
					 * before kolabfs unmounts; 0: never */
	unsigned int max_age;           /* seconds a set lives; 0: until dropped */
	struct kfs_volume_conf *volumes;
	size_t n_volumes;
	struct kfs_copy_conf *copies;
	size_t n_copies;
	struct kfs_mysql_conf *mysql;   /* NULL without a [mysql] section */
	struct kfs_ldap_conf *ldaps;
	size_t n_ldaps;
};

/*
 * Parse and validate FILE (syntax, groups, keys, types, names, duplicates).
 * Touches nothing on disk but FILE itself.  On error returns NULL and sets
 * *error to a message that names the file, line, group and key.
 */
struct kfs_config *kfs_config_load(const char *file, GError **error);

/* The same for TEXT (LEN bytes, any content) as if read from FILE, which
 * messages name: what kfs_config_load does once it has read the file. */
struct kfs_config *kfs_config_parse(const char *file, const char *text,
				    size_t len, GError **error);

/*
 * Check the configuration against the machine: every btrfs path is a
 * subvolume, no two volumes share an origin, every LVM volume's LV can
 * be snapshotted (exists, active, thin without snapshot_size, room in its
 * VG, the snapshot's name free), the state_dir parent exists,
 * every copy path exists, every password_file passes kfs_secret_read(),
 * every ldapi:// socket exists.  Creates nothing, contacts no server.
 */
bool kfs_config_check_host(const struct kfs_config *cfg, GError **error);

void kfs_config_destroy(struct kfs_config *cfg);

/* A NAME usable as one path component: non-empty, valid UTF-8, no '/',
 * not "." or "..", no leading '.', no control characters, <= 255 bytes. */
bool kfs_name_is_safe(const char *name);

/* The 16-bit inode-number space of "volume:NAME", "ldap:NAME" or
 * "copy:NAME". */
unsigned int kfs_ino_space_of(const char *kind, const char *name);

#define KFS_CONFIG_ERROR (kfs_config_error_quark())
GQuark kfs_config_error_quark(void);
enum { KFS_CONFIG_ERROR_INVALID, KFS_CONFIG_ERROR_HOST };

#endif
