package broker_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// frame builds a request frame by hand: size, key, version, correlation id,
// a null client id, then body.
func frame(key kmsg.Key, version int16, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(10+len(body)))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 7)
	b = binary.BigEndian.AppendUint16(b, 0xffff)
	return append(b, body...)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
	return c
}

// assertClosed checks that the broker closed the connection without
// answering.
func assertClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	n, err := c.Read(make([]byte, 1))
	assert.Zero(t, n, "%s: the broker must not answer", what)
	assert.True(t, errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err), "%s: want the connection closed, got %v", what, err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	b := start(t, t.TempDir(), "socket.request.max.bytes", "1024")
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"a size over socket.request.max.bytes", binary.BigEndian.AppendUint32(nil, 1025)},
		{"a size of 2 GiB", binary.BigEndian.AppendUint32(nil, 0x7fffffff)},
		{"a negative size", binary.BigEndian.AppendUint32(nil, 0xffffffff)},
		{"a header cut short", append(binary.BigEndian.AppendUint32(nil, 3), 0, 18, 0)},
		{"an unknown API key", frame(kmsg.Key(999), 0, nil)},
		{"JoinGroup v10, newer than klab implements", frame(kmsg.JoinGroup, 10, nil)},
		{"Produce v2, older than record batches", frame(kmsg.Produce, 2, nil)},
		{"a body that does not decode", frame(kmsg.Metadata, 1, []byte{0, 0, 0, 5, 0})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b.Addr())
			_, err := c.Write(tc.data)
			require.NoError(t, err)
			assertClosed(t, c, tc.name)
		})
	}
	// Other connections are unaffected.
	topics, err := kadm.NewClient(client(t, b)).ListTopics(ctxT(t))
	require.NoError(t, err, "a good client after the bad ones")
	assert.Empty(t, topics)
}

func TestApiVersionsOfAnUnknownVersionIsAnswered(t *testing.T) {
	b := start(t, t.TempDir())
	c := dial(t, b.Addr())
	_, err := c.Write(frame(kmsg.ApiVersions, 99, nil))
	require.NoError(t, err)
	var size [4]byte
	_, err = io.ReadFull(c, size[:])
	require.NoError(t, err, "ApiVersions v99 must get an answer, not a closed connection")
	resp := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(c, resp)
	require.NoError(t, err)
	assert.Equal(t, uint32(7), binary.BigEndian.Uint32(resp), "correlation id")
	var av kmsg.ApiVersionsResponse // version 0, as the answer to an unknown version is
	require.NoError(t, av.ReadFrom(resp[4:]))
	assert.Equal(t, kerr.UnsupportedVersion.Code, av.ErrorCode)
	assert.NotEmpty(t, av.ApiKeys, "the answer lists what the broker does implement")
}

func TestRequestsOnOneConnectionAreAnsweredInOrder(t *testing.T) {
	b := start(t, t.TempDir())
	c := dial(t, b.Addr())
	// Ten requests written back to back, before reading any answer.
	var out []byte
	for i := range 10 {
		f := frame(kmsg.ApiVersions, 0, nil)
		binary.BigEndian.PutUint32(f[8:], uint32(100+i))
		out = append(out, f...)
	}
	_, err := c.Write(out)
	require.NoError(t, err)
	for i := range 10 {
		var size [4]byte
		_, err := io.ReadFull(c, size[:])
		require.NoError(t, err)
		resp := make([]byte, binary.BigEndian.Uint32(size[:]))
		_, err = io.ReadFull(c, resp)
		require.NoError(t, err)
		assert.Equal(t, uint32(100+i), binary.BigEndian.Uint32(resp), "answer %d", i)
	}
}

// DeleteRecords and DescribeLogDirs with what no client sends: offsets
// below -1, partitions that do not exist, thousands of entries, arrays
// that claim more entries than the frame holds. Each partition gets its
// error code; a body that does not decode closes the connection; nothing
// panics, and the broker serves on.
func TestDeleteRecordsAndDescribeLogDirsTakeBadInput(t *testing.T) {
	b := start(t, t.TempDir())
	cl := client(t, b, kgo.DisableIdempotentWrite())
	_, err := kadm.NewClient(cl).CreateTopic(ctxT(t), 1, 1, nil, "t")
	require.NoError(t, err)

	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 1000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "t"
	for i := range 20000 {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = int32(i%7)-3, -int64(i) // -3 to 3, of which only 0 exists; offsets 0, -1, -2, ...
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Straight to the broker: kgo would refuse the partitions it does not know.
	raw, err := requestVersion(t, b.Addr(), req, 2)
	require.NoError(t, err)
	resp := raw.(*kmsg.DeleteRecordsResponse)
	require.Len(t, resp.Topics[0].Partitions, 20000, "every entry answered")
	for i, sp := range resp.Topics[0].Partitions {
		want := kerr.UnknownTopicOrPartition
		if sp.Partition == 0 {
			want = kerr.OffsetOutOfRange // its offsets are -3, -10, -17, ...
		}
		assert.Equal(t, want.Code, sp.ErrorCode, "entry %d", i)
	}

	lots := kmsg.NewPtrDescribeLogDirsRequest()
	for range 20000 {
		dt := kmsg.NewDescribeLogDirsRequestTopic()
		dt.Topic, dt.Partitions = "t", []int32{0, -1, 1 << 30}
		lots.Topics = append(lots.Topics, dt)
	}
	raw, err = requestVersion(t, b.Addr(), lots, 4)
	require.NoError(t, err)
	described := raw.(*kmsg.DescribeLogDirsResponse)
	require.Len(t, described.Dirs, 1)
	require.Len(t, described.Dirs[0].Topics, 1, "t, once")
	assert.Len(t, described.Dirs[0].Topics[0].Partitions, 1, "t-0, once")

	for _, tc := range []struct {
		name string
		data []byte
	}{
		// A topics array of 2^31-1 entries, then nothing.
		{"DeleteRecords v0 claiming 2^31-1 topics", frame(kmsg.DeleteRecords, 0, []byte{0x7f, 0xff, 0xff, 0xff})},
		{"DeleteRecords v2 claiming 2^31-1 topics", frame(kmsg.DeleteRecords, 2, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x07})},
		{"DescribeLogDirs v0 claiming 2^31-1 topics", frame(kmsg.DescribeLogDirs, 0, []byte{0x7f, 0xff, 0xff, 0xff})},
		{"DescribeLogDirs v4 claiming 2^31-1 topics", frame(kmsg.DescribeLogDirs, 4, []byte{0, 0xff, 0xff, 0xff, 0xff, 0x07})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, b.Addr())
			_, err := c.Write(tc.data)
			require.NoError(t, err)
			assertClosed(t, c, tc.name)
		})
	}
	ends, err := kadm.NewClient(client(t, b)).ListEndOffsets(ctxT(t), "t")
	require.NoError(t, err, "the broker serves on")
	assert.NoError(t, ends.Error())
}
