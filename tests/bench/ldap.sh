#!/bin/bash
# kolabfs: LDAP export benchmark (issue 4).  As root, after `make check`:
#
#	tests/bench/ldap.sh [ENTRIES]        (default 100000)
#	KFS_BENCH_ONLY=search tests/bench/ldap.sh   (skip 389-ds: its offline
#	                                     import of 100,000 entries takes 4 min)
#
# Search mode against `ldapsearch -E pr=1000/noprompt` of the same base to
# /dev/null (OpenLDAP slapd), task mode against `dsconf INSTANCE backend
# export` (389-ds), same data, same run.  Runs itself in a private mount
# and PID namespace: every server dies with it, TMP is removed on exit.
set -euo pipefail
N=${1:-100000}
HERE=$(cd "$(dirname "$0")" && pwd)
DRIVER=${KOLABFS_BUILDDIR:-$HERE/../..}/tests/bench/ldap-export
[ -x "$DRIVER" ] || { echo "build it first: make tests/bench/ldap-export" >&2; exit 2; }
if [ "${KFS_BENCH_INNER:-}" != 1 ]; then
	T=$(mktemp -d /tmp/kfs-ldap-bench-XXXXXX)
	chmod 0755 "$T"
	rc=0
	KFS_BENCH_INNER=1 KFS_BENCH_TMP=$T unshare -m -p -f --mount-proc "$0" "$N" || rc=$?
	rm -rf "$T"
	exit $rc
fi
T=$KFS_BENCH_TMP
mount --make-rprivate /

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
wait_up() {  # URI: poll, bounded, until an anonymous bind works
	for _ in $(seq 1 300); do
		ldapwhoami -x -H "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server $1 not up" >&2; exit 1
}
gen() {  # SUFFIX: N users under ou=People
	awk -v n="$N" -v s="$1" 'BEGIN {
		printf "dn: %s\nobjectClass: domain\ndc: example\n\n", s
		printf "dn: ou=People,%s\nobjectClass: organizationalUnit\nou: People\n\n", s
		for (i = 0; i < n; i++)
			printf "dn: uid=user%d,ou=People,%s\nobjectClass: inetOrgPerson\nuid: user%d\ncn: User %d\nsn: %d\nmail: user%d@example.org\nuserPassword: {SSHA}aGVsbG8gd29ybGQgc2FsdHk%d\ndescription: benchmark entry number %d with some text to make it look like a real one\n\n", i, s, i, i, i, i, i, i
	}'
}
# Passwords only in 0600 files, never on a command line.  kolabfs drops one
# trailing newline; ldapsearch -y sends the file whole: a copy without it.
install -m 600 /dev/null "$T/pw"; printf "bench-secret\n" > "$T/pw"
install -m 600 /dev/null "$T/pw.tool"; printf "bench-secret" > "$T/pw.tool"

# ---- OpenLDAP, search mode
O=$T/ol; mkdir -p "$O/db"
cat > "$O/slapd.conf" <<EOC
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 4294967296
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw bench-secret
directory $O/db
EOC
gen dc=example,dc=com > "$O/data.ldif"
slapadd -q -f "$O/slapd.conf" -l "$O/data.ldif"
PORT=$((20000 + RANDOM % 20000))
slapd -f "$O/slapd.conf" -h "ldap://127.0.0.1:$PORT/" -d 0 >"$O/log" 2>&1 &
wait_up "ldap://127.0.0.1:$PORT"
t=$(now)
ldapsearch -x -LLL -H "ldap://127.0.0.1:$PORT" -D cn=admin,dc=example,dc=com -y "$T/pw.tool" \
	-b dc=example,dc=com -E pr=1000/noprompt '*' '+' > /dev/null
s_ldapsearch=$(elapsed "$t")
mkdir -m 0700 "$O/out"
t=$(now)
"$DRIVER" -D cn=admin,dc=example,dc=com -y "$T/pw" "ldap://127.0.0.1:$PORT" search "$O/out"
s_kolabfs=$(elapsed "$t")

if [ "${KFS_BENCH_ONLY:-}" = search ]; then
	printf '%d entries\n' "$N"
	printf 'search: ldapsearch -E pr=1000 %.2f s, kolabfs %.2f s, ratio %.2f\n' \
		"$s_ldapsearch" "$s_kolabfs" "$(awk -v a="$s_kolabfs" -v b="$s_ldapsearch" 'BEGIN { print a / b }')"
	exit 0
fi

# ---- 389-ds, task mode
D=$T/ds; mkdir -p "$D"
sed -e 's/^with_systemd = 1/with_systemd = 0/' \
    -e "/^tmp_dir/!s|^\([a-z_]*\) = \(/[a-z]\)|\1 = $D\2|" \
    -e "s|^db_home_dir = .*|db_home_dir = $D/var/lib/dirsrv/slapd-{instance_name}/db|" \
    /usr/share/dirsrv/inf/defaults.inf > "$D/defaults.inf"
sed -i "s|^\([a-z_]*\) = $D/usr|\1 = /usr|" "$D/defaults.inf"
mount --bind "$D/defaults.inf" /usr/share/dirsrv/inf/defaults.inf
mkdir -p -m 0755 "$D/var/lib/dirsrv" "$D/var/log/dirsrv" "$D/run/lock/dirsrv" "$D/etc/dirsrv"
cp -a /etc/dirsrv/schema /etc/dirsrv/config "$D/etc/dirsrv/"
DPORT=$((PORT + 1))
install -m 600 /dev/null "$D/inst.inf"
cat > "$D/inst.inf" <<EOC
[general]
full_machine_name = localhost
start = False
[slapd]
instance_name = bench
port = $DPORT
secure_port = $((PORT + 2))
root_password = bench-secret
self_sign_cert = False
[backend-userroot]
suffix = dc=example,dc=org
EOC
dscreate from-file "$D/inst.inf" >"$D/dscreate.log" 2>&1
C=$D/etc/dirsrv/slapd-bench
sed -i '0,/^dn: cn=config$/s//dn: cn=config\nnsslapd-listenhost: 127.0.0.1/' "$C/dse.ldif"
LDIFDIR=$D/var/lib/dirsrv/slapd-bench/ldif
gen dc=example,dc=org > "$LDIFDIR/data.ldif"; chown dirsrv: "$LDIFDIR/data.ldif"
dsctl bench ldif2db userroot "$LDIFDIR/data.ldif" >"$D/ldif2db.log" 2>&1
rm "$LDIFDIR/data.ldif"
ns-slapd -D "$C" -i "$D/pid" -d 0 >"$D/log" 2>&1 &
wait_up "ldap://127.0.0.1:$DPORT"
t=$(now)
dsconf -D "cn=Directory Manager" -y "$T/pw.tool" "ldap://127.0.0.1:$DPORT" backend export userroot >"$D/dsconf.log" 2>&1
s_dsconf=$(elapsed "$t")
mkdir -m 0700 "$D/out"
t=$(now)
"$DRIVER" -D "cn=Directory Manager" -y "$T/pw" "ldap://127.0.0.1:$DPORT" task "$D/out"
s_task=$(elapsed "$t")

printf '%d entries\n' "$N"
printf 'search: ldapsearch -E pr=1000 %.2f s, kolabfs %.2f s, ratio %.2f\n' \
	"$s_ldapsearch" "$s_kolabfs" "$(awk -v a="$s_kolabfs" -v b="$s_ldapsearch" 'BEGIN { print a / b }')"
printf 'task:   dsconf backend export %.2f s, kolabfs %.2f s, ratio %.2f\n' \
	"$s_dsconf" "$s_task" "$(awk -v a="$s_task" -v b="$s_dsconf" 'BEGIN { print a / b }')"
