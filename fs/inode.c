/* kolabfs: the node table.
 *
 * Node ids are the nodes' addresses (as in libfuse's passthrough_ll), so
 * the read path never takes a table lock; only lookup and forget do, each
 * on one of N_SHARDS shards chosen by the node's key. */
#include "autoconf.h"

#include <glib.h>
#include <string.h>

#include "../src/annotate.h"
#include "fs-int.h"
#include "inode.h"
#include "ino.h"

#define FUSE_ROOT_NODEID 1

/* Lookups from many threads (readdirplus takes one per entry) rarely meet
 * on one shard; a power of two. */
#define N_SHARDS 64

struct shard {
	GMutex lock;
	GHashTable *nodes;      /* struct kfs_node * (its key) -> itself */
};

struct kfs_inodes {
	struct shard shards[N_SHARDS];
	struct kfs_node fixed[KFS_NODE_LATEST + 1];
};

static guint key_hash(gconstpointer p)
{
	const struct kfs_node_key *k = p;
	uint64_t h = k->local_ino * 0x9e3779b97f4a7c15ull;

	h ^= (uintptr_t)k->owner + k->kind;
	return (guint)(h ^ (h >> 32));
}

static gboolean key_equal(gconstpointer a, gconstpointer b)
{
	const struct kfs_node_key *x = a, *y = b;

	return x->kind == y->kind && x->owner == y->owner && x->local_ino == y->local_ino;
}

static struct shard *shard_of(struct kfs_inodes *t, const struct kfs_node_key *key)
{
	return &t->shards[(key_hash(key) >> 7) & (N_SHARDS - 1)];
}

static void node_free(struct kfs_node *node)
{
	kfs_fs_dir_stream_free(node);
	kfs_set_unref(node->set);
	g_free(node->path);
	g_free(node);
}

struct kfs_inodes *kfs_inodes_create(void)
{
	struct kfs_inodes *t = g_new0(struct kfs_inodes, 1);
	int k;

	for (k = 0; k < N_SHARDS; k++) {
		g_mutex_init(&t->shards[k].lock);
		/* the key is the node's first member: it frees both */
		t->shards[k].nodes = g_hash_table_new(key_hash, key_equal);
	}
	for (k = KFS_NODE_ROOT; k <= KFS_NODE_LATEST; k++) {
		t->fixed[k].key.kind = t->fixed[k].kind = k;
		t->fixed[k].ino = kfs_ino_make(KFS_INO_SPACE_VIRTUAL, 1 + k);
	}
	return t;
}

void kfs_inodes_destroy(struct kfs_inodes *t)
{
	GHashTableIter it;
	gpointer node;
	int k;

	if (!t)
		return;
	for (k = 0; k < N_SHARDS; k++) {
		g_hash_table_iter_init(&it, t->shards[k].nodes);
		while (g_hash_table_iter_next(&it, &node, NULL))
			node_free(node);
		g_hash_table_destroy(t->shards[k].nodes);
		g_mutex_clear(&t->shards[k].lock);
	}
	g_free(t);
}

struct kfs_node *kfs_inodes_fixed(struct kfs_inodes *t, enum kfs_node_kind kind)
{
	return &t->fixed[kind];
}

struct kfs_node *kfs_inodes_get(struct kfs_inodes *t, uint64_t nodeid)
{
	struct kfs_node *node;

	if (nodeid == FUSE_ROOT_NODEID)
		return &t->fixed[KFS_NODE_ROOT];
	node = (struct kfs_node *)(uintptr_t)nodeid;
	/* made (or last looked up) by another thread: see ref_key */
	KFS_HAPPENS_AFTER(node);
	return node;
}

uint64_t kfs_inodes_nodeid(const struct kfs_node *node)
{
	if (node->kind == KFS_NODE_ROOT)
		return FUSE_ROOT_NODEID;
	return (uint64_t)(uintptr_t)node;
}

static struct kfs_node *ref_key(struct kfs_inodes *t, const struct kfs_node_key *key,
				struct kfs_set *set, struct kfs_source *src,
				uint64_t ino, const char *path)
{
	struct shard *sh = shard_of(t, key);
	struct kfs_node *node;

	g_mutex_lock(&sh->lock);
	node = g_hash_table_lookup(sh->nodes, key);
	if (!node) {
		node = g_new0(struct kfs_node, 1);
		node->key = *key;
		node->kind = key->kind;
		node->set = kfs_set_ref(set);
		node->path = g_strdup(path);
		node->src = src;
		node->ino = ino;
		KFS_BENIGN_RACE(node->cached, "a hint, set and read atomically (fs/file.c)");
		g_hash_table_add(sh->nodes, node);
	}
	node->nlookup++;
	/* Its id goes to the kernel, which may send it to any thread. */
	KFS_HAPPENS_BEFORE(node);
	g_mutex_unlock(&sh->lock);
	return node;
}

struct kfs_node *kfs_inodes_ref_set(struct kfs_inodes *t, struct kfs_set *set,
				    enum kfs_node_kind kind)
{
	struct kfs_node_key key = { kind, set, 0 };
	/* Virtual numbers: two per set, after the fixed nodes. */
	uint64_t ino = kfs_ino_make(KFS_INO_SPACE_VIRTUAL,
				    16 + 2 * set->seq + (kind == KFS_NODE_MANIFEST));

	return ref_key(t, &key, set, NULL, ino, NULL);
}

struct kfs_node *kfs_inodes_ref_pass(struct kfs_inodes *t, struct kfs_set *set,
				     struct kfs_source *src, uint64_t local_ino,
				     const char *path)
{
	struct kfs_node_key key = { KFS_NODE_PASS, src, local_ino };

	return ref_key(t, &key, set, src, kfs_ino_make(src->ino_space, local_ino), path);
}

GArray *kfs_inodes_select(struct kfs_inodes *t, bool (*pick)(const struct kfs_node *node))
{
	GArray *ids = g_array_new(false, false, sizeof(uint64_t));
	GHashTableIter it;
	struct kfs_node *node;
	uint64_t id;
	int i;

	for (i = 0; i < N_SHARDS; i++) {
		g_mutex_lock(&t->shards[i].lock);
		g_hash_table_iter_init(&it, t->shards[i].nodes);
		while (g_hash_table_iter_next(&it, (gpointer *)&node, NULL)) {
			if (!pick(node))
				continue;
			id = kfs_inodes_nodeid(node);
			g_array_append_val(ids, id);
		}
		g_mutex_unlock(&t->shards[i].lock);
	}
	return ids;
}

void kfs_inodes_forget(struct kfs_inodes *t, struct kfs_node *node, uint64_t n)
{
	struct shard *sh;

	if (node->kind <= KFS_NODE_LATEST)
		return;
	sh = shard_of(t, &node->key);
	g_mutex_lock(&sh->lock);
	if (n > node->nlookup)
		n = node->nlookup;
	node->nlookup -= n;
	if (node->nlookup == 0)
		g_hash_table_remove(sh->nodes, &node->key);
	else
		node = NULL;
	g_mutex_unlock(&sh->lock);
	if (node)
		node_free(node);
}
