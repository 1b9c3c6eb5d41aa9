package broker

import (
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"klab.dev/klab/broker/log"
)

// sendfileWorks: Linux has sendfile(2) from a file to a socket.
const sendfileWorks = true

// errNoSendfile says the kernel refused sendfile for this file or socket
// before a byte was sent: the caller writes the range another way.
var errNoSendfile = errors.New("sendfile: not for this file or socket")

// sendfile sends the range from its file to the socket in pieces of
// writePiece bytes, each under a write deadline of timeout, as
// progressWriter writes: a client that stops reading is cut off, a slow
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
	start, end := position, position+size
	for position < end {
		pieceEnd := min(end, position+writePiece)
		tc.SetWriteDeadline(time.Now().Add(timeout))
		var sendErr error
		err := src.Control(func(in uintptr) {
			err := dst.Write(func(out uintptr) bool {
				for position < pieceEnd {
					n, err := syscall.Sendfile(int(out), int(in), &position, int(pieceEnd-position))
					switch {
					case err == syscall.EINTR:
						continue
					case err == syscall.EAGAIN:
						return false // the socket's buffer is full: wait until it drains
					case (err == syscall.EINVAL || err == syscall.ENOSYS || err == syscall.EOPNOTSUPP) && position == start:
						sendErr = errNoSendfile
						return true
					case err != nil:
						sendErr = err
						return true
					case n == 0:
						// The file ends before the range: the log was cut.
						sendErr = fmt.Errorf("sending records: the file ends %d bytes short: %w", end-position, io.ErrUnexpectedEOF)
						return true
					}
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
