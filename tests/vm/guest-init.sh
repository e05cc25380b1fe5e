#!/bin/bash
# PID 1 of the test guest (see guest.py), started by the initramfs once this
# machine's root is mounted (9p, read-only, under a tmpfs overlay).  Sets up
# the guest, then serves commands: it runs every NNNN.req script the host puts
# into $KFS_VM_OUT/.kfs-vm and answers with NNNN.out, NNNN.err and NNNN.rc,
# until the host creates .kfs-vm/poweroff (or the time limit kfs.limit runs out).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
export DM_DISABLE_UDEV=1 LVM_SUPPRESS_FD_WARNINGS=1     # no udev in here
off() { echo "kfs-vm: $*"; sync; echo o > /proc/sysrq-trigger; sleep 60; }
arg() { sed -n "s/.*kfs\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }

mount -t proc proc /proc && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev || off "mounts failed"
mkdir -p /dev/pts /dev/shm && mount -t devpts devpts /dev/pts && mount -t tmpfs shm /dev/shm
mount -t tmpfs -o mode=0755 run /run && mkdir -p /run/lock   # none of this machine's pid files
OUT=$(arg out) LIMIT=$(arg limit) MODS=$(arg mods)
export KFS_VM_OUT=$OUT
# the guest kernel's modules, where modprobe (and the kernel's autoloading) look
mkdir -p "/lib/modules/${MODS##*/}" && mount --bind "$MODS" "/lib/modules/${MODS##*/}" || off "no modules"
modprobe -a virtio_blk dm-mod dm-snapshot dm-thin-pool loop fuse ext4 xfs btrfs || off "modprobe failed"
mkdir -p "$OUT" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out "$OUT" || off "no share"
# more read-write shares (kfs.shares=DIR,DIR,...: tags share0, share1, ...)
i=0
for d in $(arg shares | tr , ' '); do
	mkdir -p "$d" && mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 "share$i" "$d" \
		|| off "no share $d"
	i=$((i + 1))
done
hostname kfs-vm

# LVM without udev and without its daemons (lvmpolld, dmeventd): lvm creates
# the /dev nodes itself.  Replaces this machine's lvm.conf in the guest only.
mkdir -p /etc/lvm && cat > /etc/lvm/lvm.conf <<'EOF'
devices {
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
}
activation {
	udev_sync = 0
	udev_rules = 0
	verify_udev_operations = 0
	monitoring = 0
}
global {
	use_lvmpolld = 0
}
EOF

# watchdog: the guest never outlives its time limit
(sleep "${LIMIT:-3600}"; off "time limit (${LIMIT}s) reached") &

Q=$OUT/.kfs-vm
mkfifo /run/kfs-vm.tick && exec 9<>/run/kfs-vm.tick    # read -t on it: a sleep without a fork
: > "$Q/ready"
echo "kfs-vm: ready"
shopt -s nullglob
until [ -e "$Q/poweroff" ]; do
	for req in "$Q"/*.req; do
		n=${req%.req}
		read -r _ t < "$req"                # first line: "# timeout=SECONDS"
		timeout -k 10 "${t#timeout=}" bash "$req" > "$n.out" 2> "$n.err" < /dev/null
		echo $? > "$n.tmp" && mv "$n.tmp" "$n.rc" && rm -f "$req"
	done
	read -r -t 0.05 -u 9
done
off "power off"
