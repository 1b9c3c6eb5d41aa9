package clustertest_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/clustertest"
)

// TestAClientWaitsForARestartingBroker: a broker that has started, but not
// caught up with the metadata log, answers no client yet. A client that
// connects to it then (it is in the client's seed list, or the client's
// last metadata) waits for its first answer, rather than having its
// connection closed: franz-go takes a connection closed before its first
// answer for a missing SASL login, and fails the records it was for
// (TestRollingRestartUnderLoad failed in CI that way).
func TestAClientWaitsForARestartingBroker(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3})
	for _, id := range c.IDs() {
		c.Stop(id)
	}
	// Broker 1 alone has no quorum of the metadata log: it starts
	// listening but cannot catch up.
	restarted := make(chan struct{})
	go func() {
		defer close(restarted)
		c.Restart(1)
	}()
	var conn net.Conn
	c.WaitFor(10*time.Second, "broker 1 to listen", func() bool {
		var err error
		conn, err = net.Dial("tcp", c.Addr(1))
		return err == nil
	})
	defer conn.Close()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "klab-test", "1"
	frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("early")).AppendRequest(nil, req, 7)
	_, err := conn.Write(frame)
	require.NoError(t, err)

	// With broker 2 back, the two have a quorum and catch up.
	c.Restart(2)
	<-restarted
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	_, err = io.ReadFull(conn, size[:])
	require.NoError(t, err, "the connection was kept, and answered once the broker caught up")
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(conn, body)
	require.NoError(t, err)
	require.Equal(t, uint32(7), binary.BigEndian.Uint32(body), "the answer to the request sent while it caught up")
}
