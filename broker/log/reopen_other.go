//go:build !unix

package log

import "os"

// reopen opens f's file again, for a descriptor that stays valid when f
// is closed.
func reopen(f *os.File) (*os.File, error) { return os.Open(f.Name()) }
