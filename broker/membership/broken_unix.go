//go:build linux || darwin || freebsd

package membership

import (
	"net"
	"syscall"
)

// broken reports whether the peer has closed or reset conn, without
// waiting and without taking anything from it: a peek at what the kernel
// holds for it. It must not go through conn's Read, which the watch's
// goroutine holds while it waits.
func broken(conn *net.TCPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return true
	}
	gone := false
	err = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == nil:
			gone = n == 0 // end of stream: the peer closed it
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
			// nothing to read: still open
		default:
			gone = true // reset, or otherwise broken
		}
	})
	return gone || err != nil
}
