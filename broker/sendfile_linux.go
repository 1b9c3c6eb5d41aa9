package broker

import (
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"klab.dev/klab/broker/log"
)

// sendfileWorks: Linux has sendfile(2) from a file to a socket.
const sendfileWorks = true

// sendfile sends the range from its file to the socket, writePiece bytes
// at most per call, each under a write deadline of timeout (as
// progressWriter writes): a client that stops reading is cut off, a slow
// one that keeps reading is not. The offset is given to the kernel, so
// the file's own position, shared with the log, does not move.
func sendfile(tc *net.TCPConn, s log.Slice, timeout time.Duration) error {
	f, position, size := s.File()
	src, err := f.SyscallConn()
	if err != nil {
		return err
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	end := position + size
	for position < end {
		tc.SetWriteDeadline(time.Now().Add(timeout))
		var sendErr error
		err := src.Control(func(in uintptr) {
			err := dst.Write(func(out uintptr) bool {
				n, err := syscall.Sendfile(int(out), int(in), &position, int(min(end-position, writePiece)))
				switch {
				case err == syscall.EAGAIN:
					return false // the socket's buffer is full: wait until it drains
				case err == syscall.EINTR:
					return false
				case err != nil:
					sendErr = err
				case n == 0:
					// The file ends before the range: the log was cut.
					sendErr = fmt.Errorf("sending records: the file ends %d bytes short: %w", end-position, io.ErrUnexpectedEOF)
				}
				return true
			})
			if sendErr == nil {
				sendErr = err
			}
		})
		if err != nil {
			return err
		}
		if sendErr != nil {
			return sendErr
		}
	}
	return nil
}
