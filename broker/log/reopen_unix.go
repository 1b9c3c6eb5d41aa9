//go:build unix

package log

import (
	"os"
	"syscall"
)

// reopen returns a second descriptor of f's open file (dup(2)), which
// stays valid when f is closed. Reads through it give offsets, so sharing
// f's file position does not matter.
func reopen(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(orig uintptr) {
		// Under ForkLock, as the standard library does it: a process
		// started between the dup and the close-on-exec would inherit it.
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		fd, dupErr = syscall.Dup(int(orig))
		if dupErr == nil {
			syscall.CloseOnExec(fd)
		}
	}); err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, &os.PathError{Op: "dup", Path: f.Name(), Err: dupErr}
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}
