package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker"
)

// heapInUse is the test process's heap in use, the broker's included,
// after a garbage collection has dropped what nothing refers to.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// declare opens a connection and writes a request's size prefix, size,
// and then only the first bytes of its header.
func declare(t *testing.T, addr string, size uint32) net.Conn {
	t.Helper()
	c := dial(t, addr)
	_, err := c.Write(binary.BigEndian.AppendUint32(nil, size))
	require.NoError(t, err)
	_, err = c.Write([]byte{0, 18, 0, 0}) // ApiVersions v0, and then nothing
	require.NoError(t, err)
	return c
}

// readAnswer reads one response and returns its correlation id.
func readAnswer(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	var size [4]byte
	_, err := io.ReadFull(c, size[:])
	require.NoError(t, err)
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(c, resp)
	require.NoError(t, err)
	return binary.BigEndian.Uint32(resp)
}

// Eight connections that each declare a request of socket.request.max.bytes
// (100 MiB) and send next to nothing of it used to cost the broker 800 MiB
// of buffers. A request's buffer now grows as its bytes arrive: they cost
// 64 KiB each, and the broker serves other clients meanwhile.
func TestDeclaredButUnsentRequestsCostAlmostNothing(t *testing.T) {
	const conns = 8
	b := start(t, t.TempDir())
	adm := kadm.NewClient(client(t, b))
	_, err := adm.ListTopics(ctxT(t)) // the client's own buffers come before the measure
	require.NoError(t, err)

	before := heapInUse()
	var held []net.Conn
	for range conns {
		held = append(held, declare(t, b.Addr(), 100<<20))
	}
	require.Eventually(t, func() bool { return b.RequestBytesInUse() >= conns*64<<10 }, 10*time.Second, 5*time.Millisecond,
		"the broker reads each declaration and takes its first 64 KiB from queued.max.request.bytes")
	growth := int64(heapInUse()) - int64(before)
	t.Logf("heap in use grew by %.1f MiB with %d declarations of 100 MiB", float64(growth)/(1<<20), conns)
	assert.Less(t, growth, int64(32<<20), "declared but unsent requests must not be allocated")

	_, err = adm.ListTopics(ctxT(t))
	require.NoError(t, err, "a normal client is served while the declarations wait")

	for _, c := range held {
		c.Close()
	}
	require.Eventually(t, func() bool { return b.RequestBytesInUse() == 0 }, 10*time.Second, 5*time.Millisecond,
		"closed connections give their bytes back")
}

// flexibleFrame is frame for a request whose header is v2: a tagged-field
// byte after the client id.
func flexibleFrame(key kmsg.Key, version int16, body []byte) []byte {
	return frame(key, version, append([]byte{0}, body...))
}

// A request that finds queued.max.request.bytes taken waits, unread, and is
// served once the bytes are given back: nothing is lost.
func TestRequestsBeyondQueuedMaxRequestBytesWaitAndAreServed(t *testing.T) {
	const budget = 128 << 10
	b := start(t, t.TempDir(), "queued.max.request.bytes", fmt.Sprint(budget))

	// A 1 MiB request, larger than the whole budget, half sent: it holds
	// the budget and more (it is the one request allowed to overdraw).
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = strings.Repeat("a", 1<<20), "1"
	big := flexibleFrame(kmsg.ApiVersions, 3, req.AppendTo(nil))
	a := dial(t, b.Addr())
	_, err := a.Write(big[:len(big)/2])
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.RequestBytesInUse() > budget }, 10*time.Second, 5*time.Millisecond,
		"the large request takes the budget as its bytes arrive")

	// A small request on another connection waits for room: no answer yet.
	small := dial(t, b.Addr())
	_, err = small.Write(frame(kmsg.ApiVersions, 0, nil))
	require.NoError(t, err)
	require.NoError(t, small.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = small.Read(make([]byte, 1))
	require.ErrorIs(t, err, os.ErrDeadlineExceeded, "the small request must wait while the budget is taken")
	require.NoError(t, small.SetReadDeadline(time.Now().Add(10*time.Second)))

	// The rest of the large request arrives: both are answered.
	_, err = a.Write(big[len(big)/2:])
	require.NoError(t, err)
	assert.Equal(t, uint32(7), readAnswer(t, a), "the large request is answered")
	assert.Equal(t, uint32(7), readAnswer(t, small), "the small one, having waited, is answered too")
	require.Eventually(t, func() bool { return b.RequestBytesInUse() == 0 }, 10*time.Second, 5*time.Millisecond)

	// Producers whose requests (up to 1 MB each) are all larger than the
	// budget lose nothing: each waits its turn.
	cl := client(t, b, kgo.DefaultProduceTopic("t"), kgo.ConsumeTopics("t"), kgo.ProducerLinger(0))
	_, err = kadm.NewClient(cl).CreateTopic(ctxT(t), 3, 1, nil, "t")
	require.NoError(t, err)
	const records = 300
	value := make([]byte, 16<<10)
	errs := make(chan error, records)
	for i := range records {
		cl.Produce(ctxT(t), &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: value}, func(_ *kgo.Record, err error) { errs <- err })
	}
	for range records {
		require.NoError(t, <-errs)
	}
	seen := map[string]bool{}
	for len(seen) < records {
		fetches := cl.PollFetches(ctxT(t))
		require.NoError(t, fetches.Err())
		fetches.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
	}
	assert.Len(t, seen, records, "every record produced is read back")
}

// startWith runs a broker as start does, with cfg changed by set first:
// for the settings that have no Kafka name.
func startWith(t *testing.T, set func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(testLog{t}, nil))
	set(&cfg)
	b, err := broker.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// A client that sends Fetch requests and never reads the answers would
// hold the broker's writer, and the answers waiting for it, forever: after
// ResponseWriteTimeout without progress the connection is closed, and the
// broker serves the others on.
func TestAClientThatDoesNotReadIsClosedAfterTheWriteTimeout(t *testing.T) {
	const timeout = 500 * time.Millisecond
	b := startWith(t, func(c *broker.Config) { c.ResponseWriteTimeout = timeout })
	cl := client(t, b, kgo.DefaultProduceTopic("t"))
	_, err := kadm.NewClient(cl).CreateTopic(ctxT(t), 1, 1, nil, "t")
	require.NoError(t, err)
	for range 64 {
		require.NoError(t, cl.ProduceSync(ctxT(t), &kgo.Record{Value: make([]byte, 16<<10)}).FirstErr())
	}

	fetch := kmsg.NewPtrFetchRequest()
	fetch.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetch.SetVersion(11)
	request := frame(kmsg.Fetch, 11, fetch.AppendTo(nil))

	c, err := net.DialTimeout("tcp", b.Addr(), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.(*net.TCPConn).SetReadBuffer(4<<10)) // fill up sooner
	// Fetch after Fetch, each answered with 1 MiB, none read: the socket's
	// buffers fill, the broker's writes stop, and after the timeout the
	// broker closes the connection, which fails the client's writes.
	failed := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		for {
			if _, err := c.Write(request); err != nil {
				failed <- err
				return
			}
		}
	}()
	select {
	case err := <-failed:
		assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the broker must close the connection, got %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the broker kept a connection whose client does not read")
	}
	require.Eventually(t, func() bool { return b.RequestBytesInUse() == 0 }, 10*time.Second, 5*time.Millisecond,
		"the closed connection's reader gave its request back")
	_, err = kadm.NewClient(client(t, b)).ListTopics(ctxT(t))
	require.NoError(t, err, "other clients are served")
}

// connections.max.idle.ms closes a connection on which no request, nor
// any byte of one, arrives for that long; one in use stays open.
func TestIdleConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := start(t, t.TempDir(), "connections.max.idle.ms", fmt.Sprint(idle.Milliseconds()))

	t.Run("a connection that never sends", func(t *testing.T) {
		c := dial(t, b.Addr())
		opened := time.Now()
		assertClosed(t, c, "silent connection")
		assert.GreaterOrEqual(t, time.Since(opened), idle-50*time.Millisecond, "not before connections.max.idle.ms")
	})
	t.Run("a connection idle after a request", func(t *testing.T) {
		c := dial(t, b.Addr())
		_, err := c.Write(frame(kmsg.ApiVersions, 0, nil))
		require.NoError(t, err)
		assert.Equal(t, uint32(7), readAnswer(t, c))
		assertClosed(t, c, "idle connection")
	})
	t.Run("a connection idle within a request", func(t *testing.T) {
		c := declare(t, b.Addr(), 1<<20)
		assertClosed(t, c, "half-sent request")
		require.Eventually(t, func() bool { return b.RequestBytesInUse() == 0 }, 10*time.Second, 5*time.Millisecond,
			"its bytes are given back")
	})
	t.Run("a connection in use", func(t *testing.T) {
		c := dial(t, b.Addr())
		tick := time.NewTicker(idle / 3)
		defer tick.Stop()
		for range 9 { // three times connections.max.idle.ms, a request every third of it
			<-tick.C
			_, err := c.Write(frame(kmsg.ApiVersions, 0, nil))
			require.NoError(t, err)
			require.Equal(t, uint32(7), readAnswer(t, c), "a connection in use stays open")
		}
	})
}
