package broker

import (
	"bufio"
	"errors"
	"net"
	"time"

	"klab.dev/klab/broker/bufpool"
	"klab.dev/klab/broker/log"
)

// sendfileMin is the smallest range of records sent by sendfile: below
// it, the two system calls (flushing the framing before it, then
// sendfile) cost more than reading the range into the write buffer, which
// goes out with the framing around it in one write.
const sendfileMin = 16 << 10

// sendRecords writes a range of a log file to the connection, after what
// w holds. On a TCP socket, where the platform can, the kernel sends it
// from the file (sendfile(2), which Kafka reaches through Java's
// FileChannel.transferTo): the bytes go from the page cache to the socket
// without a copy in the broker's memory. Otherwise, and for small ranges,
// they are read (pread) into w's buffer, a piece at a time. A range the
// log has cut meanwhile (a follower truncated) fails the write: the
// response would be short of what its size promised, so the connection
// closes and the client fetches again. (Cut and written past again before
// the send, the range holds the new bytes, and the client's checks of
// offsets and CRCs judge them, as with Kafka's slices.)
func sendRecords(w *bufio.Writer, nc net.Conn, s log.Slice, timeout time.Duration) error {
	if tc, ok := nc.(*net.TCPConn); ok && sendfileWorks && s.Len() >= sendfileMin {
		if err := w.Flush(); err != nil {
			return err
		}
		if err := sendfile(tc, s, timeout); !errors.Is(err, errNoSendfile) {
			return err
		}
	}
	for off := int64(0); off < int64(s.Len()); {
		n := min(int64(s.Len())-off, writePiece)
		if int64(w.Available()) >= n {
			// Straight into the write buffer: one copy, from the file.
			buf := w.AvailableBuffer()[:n]
			if _, err := s.ReadAt(buf, off); err != nil {
				return err
			}
			if _, err := w.Write(buf); err != nil {
				return err
			}
		} else {
			buf := bufpool.Get(int(n))
			_, err := s.ReadAt(buf, off)
			if err == nil {
				_, err = w.Write(buf)
			}
			bufpool.Put(buf)
			if err != nil {
				return err
			}
		}
		off += n
	}
	return nil
}
