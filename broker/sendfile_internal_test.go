package broker

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/log"
)

// connPair is a connected pair: over loopback TCP (where records go by
// sendfile) or in memory (net.Pipe, as through the fault-injecting
// network, where they are read and written).
func connPair(t *testing.T, tcp bool) (server, client net.Conn) {
	t.Helper()
	if !tcp {
		server, client = net.Pipe()
		return server, client
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	server, err = ln.Accept()
	require.NoError(t, err)
	return server, client
}

// logOf is a log of n one-record batches whose values are size bytes
// (the i-th all byte i), closed when the test ends.
func logOf(t *testing.T, n, size int) *log.Log {
	t.Helper()
	l, err := log.Open(t.TempDir(), log.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	for i := range n {
		_, err := l.Append(log.EncodeBatch(log.Record{Value: bytes.Repeat([]byte{byte(i)}, size)}))
		require.NoError(t, err)
	}
	return l
}

// TestSendRecordsSendsTheRange: framing, a range of a log file, framing:
// the client reads exactly those bytes, in order, whether the range goes
// by sendfile (large, on TCP) or through the write buffer (small, or not
// a TCP socket), and whether it is larger than one write's piece.
func TestSendRecordsSendsTheRange(t *testing.T) {
	l := logOf(t, 300, 10_000)
	for _, tcp := range []bool{true, false} {
		for _, maxBytes := range []int64{100, sendfileMin + 5000, 3 << 20} {
			s, err := l.Slice(7, maxBytes)
			require.NoError(t, err)
			want, err := l.Read(7, maxBytes)
			require.NoError(t, err)
			want = append(append([]byte("head"), want...), "tail"...)

			server, client := connPair(t, tcp)
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(client)
				got <- b
			}()
			w := bufio.NewWriterSize(progressWriter{server, 5 * time.Second}, 64<<10)
			w.WriteString("head")
			require.NoError(t, sendRecords(w, server, s, 5*time.Second))
			w.WriteString("tail")
			require.NoError(t, w.Flush())
			server.Close()
			require.True(t, bytes.Equal(want, <-got), "tcp %v, %d bytes", tcp, len(want))
			client.Close()
			s.Close()
		}
	}
}

// TestSendRecordsFailsOnACutLog: a follower truncates its log when its
// leader changes; a range named before that is shorter than the response
// promised. The write fails (the connection then closes) rather than
// sending fewer bytes than the frame's size says.
func TestSendRecordsFailsOnACutLog(t *testing.T) {
	for _, tcp := range []bool{true, false} {
		l := logOf(t, 10, 10_000)
		s, err := l.Slice(0, 1<<20)
		require.NoError(t, err)
		require.NoError(t, l.TruncateTo(2))
		server, client := connPair(t, tcp)
		go io.Copy(io.Discard, client)
		w := bufio.NewWriterSize(progressWriter{server, 5 * time.Second}, 64<<10)
		err = sendRecords(w, server, s, 5*time.Second)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF, "tcp %v", tcp)
		server.Close()
		client.Close()
		s.Close()
	}
}

// TestASlowReaderIsCutOffFromTheFileToo: a client that reads, but far
// slower than a writePiece per timeout (32 KB every 50 ms against 1 MiB
// per 300 ms), is cut off with a deadline error, whether the records go
// by sendfile or through the write buffer, as progressWriter cuts it off:
// a partial send does not buy a new deadline.
func TestASlowReaderIsCutOffFromTheFileToo(t *testing.T) {
	l := logOf(t, 300, 10_000)
	const timeout = 300 * time.Millisecond
	for _, tcp := range []bool{true, false} {
		s, err := l.Slice(0, 3<<20)
		require.NoError(t, err)
		server, client := connPair(t, tcp)
		if tcp {
			server.(*net.TCPConn).SetWriteBuffer(16 << 10)
			client.(*net.TCPConn).SetReadBuffer(16 << 10)
		}
		reading := make(chan struct{})
		go func() {
			defer close(reading)
			buf := make([]byte, 32<<10)
			for {
				time.Sleep(50 * time.Millisecond) // a slow client, not a wait for something
				if _, err := client.Read(buf); err != nil {
					return
				}
			}
		}()
		w := bufio.NewWriterSize(progressWriter{server, timeout}, 64<<10)
		err = sendRecords(w, server, s, timeout)
		if err == nil {
			err = w.Flush()
		}
		require.ErrorIs(t, err, os.ErrDeadlineExceeded, "tcp %v", tcp)
		server.Close()
		client.Close()
		<-reading
		s.Close()
	}
}
