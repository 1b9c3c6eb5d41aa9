//go:build !linux

package broker

import (
	"errors"
	"net"
	"time"

	"klab.dev/klab/broker/log"
)

// sendfileWorks: only the Linux sendfile is used; elsewhere records are
// read and written.
const sendfileWorks = false

// errNoSendfile: sendfile is never tried here.
var errNoSendfile = errors.New("sendfile: not on this platform")

func sendfile(*net.TCPConn, log.Slice, time.Duration) error { return errNoSendfile }
