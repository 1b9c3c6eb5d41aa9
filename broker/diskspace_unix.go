//go:build linux || darwin || freebsd

package broker

import "syscall"

// diskSpace is the total and usable bytes of the filesystem dir is on, as
// Java's File.getTotalSpace and getUsableSpace, which Kafka reports:
// usable is what an unprivileged writer may still use. -1, -1 if the
// filesystem does not say.
func diskSpace(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * int64(st.Bsize), int64(st.Bavail) * int64(st.Bsize)
}
