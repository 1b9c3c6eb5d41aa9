package speaking_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
	return conn
}

// readResponse reads one size-prefixed response and returns it without the size.
func readResponse(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	var size [4]byte
	_, err := io.ReadFull(conn, size[:])
	require.NoError(t, err, "reading a response's size")
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(conn, resp)
	require.NoError(t, err, "reading a response")
	return resp
}
