package speaking_test

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// send writes one request frame: size, header (v1, or v2 with an empty tag
// section for a flexible version), body at the given version.
func send(t *testing.T, conn net.Conn, version int16, correlation int32, req kmsg.Request) {
	t.Helper()
	req.SetVersion(version)
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = binary.BigEndian.AppendUint16(frame, uint16(req.Key()))
	frame = binary.BigEndian.AppendUint16(frame, uint16(version))
	frame = binary.BigEndian.AppendUint32(frame, uint32(correlation))
	frame = binary.BigEndian.AppendUint16(frame, 4)
	frame = append(frame, "test"...)
	if req.IsFlexible() {
		frame = append(frame, 0) // no tagged fields
	}
	frame = req.AppendTo(frame)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	_, err := conn.Write(frame)
	require.NoError(t, err)
}

// requireClosed checks that the broker closed the connection without an
// answer: the next read ends, and no bytes come.
func requireClosed(t *testing.T, conn net.Conn, what string) {
	t.Helper()
	var b [1]byte
	n, err := conn.Read(b[:])
	require.Zero(t, n, "%s: the broker answered; it must close the connection", what)
	require.Error(t, err)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "%s: the connection stayed open; the broker must close it", what)
}

// TestAnUnsupportedApiVersionsIsAnsweredInVersion0: a client whose
// ApiVersions is newer than the broker's gets UNSUPPORTED_VERSION and the
// list, in version 0 (KIP-511), and may go on on the same connection.
func TestAnUnsupportedApiVersionsIsAnsweredInVersion0(t *testing.T) {
	b, _ := setup(t, 1, nil)
	for _, version := range []int16{4, 5, 9} { // 4 and 5 kmsg knows, 9 nobody does yet
		conn := dial(t, b.Addr())
		send(t, conn, version, 7, kmsg.NewPtrApiVersionsRequest())
		resp := readResponse(t, conn)
		require.Equal(t, uint32(7), binary.BigEndian.Uint32(resp), "version %d: the correlation id", version)
		var av kmsg.ApiVersionsResponse // version 0
		require.NoError(t, av.ReadFrom(resp[4:]), "version %d: the answer is ApiVersions v0", version)
		assert.Equal(t, kerr.UnsupportedVersion.Code, av.ErrorCode, "version %d: UNSUPPORTED_VERSION", version)
		found := false
		for _, k := range av.ApiKeys {
			if k.ApiKey == int16(kmsg.ApiVersions) {
				found = true
				assert.Equal(t, [2]int16{0, 3}, [2]int16{k.MinVersion, k.MaxVersion}, "the versions of ApiVersions the broker implements")
			}
		}
		require.True(t, found, "version %d: the list names ApiVersions itself", version)

		// The client retries with a version from the list; v3 names the
		// client's software (KIP-511).
		retry := kmsg.NewPtrApiVersionsRequest()
		retry.ClientSoftwareName, retry.ClientSoftwareVersion = "klab-test", "1"
		send(t, conn, 3, 8, retry)
		resp = readResponse(t, conn)
		require.Equal(t, uint32(8), binary.BigEndian.Uint32(resp))
		av = kmsg.ApiVersionsResponse{Version: 3}
		require.NoError(t, av.ReadFrom(resp[4:]))
		assert.Zero(t, av.ErrorCode, "ApiVersions v3 is implemented")
	}
}

// TestAnUnimplementedAPIIsAnsweredUnsupported: a request of an API klab
// does not implement (DescribeAcls: klab has no ACLs) is answered, with
// UNSUPPORTED_VERSION in its response's error code, so that a client that
// sent it without checking ApiVersions shows an error instead of waiting;
// the connection stays open.
func TestAnUnimplementedAPIIsAnsweredUnsupported(t *testing.T) {
	b, _ := setup(t, 1, nil)
	conn := dial(t, b.Addr())
	send(t, conn, 0, 5, kmsg.NewPtrDescribeACLsRequest())
	resp := readResponse(t, conn)
	require.Equal(t, uint32(5), binary.BigEndian.Uint32(resp), "the correlation id")
	var acls kmsg.DescribeACLsResponse // version 0
	require.NoError(t, acls.ReadFrom(resp[4:]), "the answer is a DescribeAcls v0 response")
	assert.Equal(t, kerr.UnsupportedVersion.Code, acls.ErrorCode)

	send(t, conn, 0, 6, kmsg.NewPtrApiVersionsRequest())
	resp = readResponse(t, conn)
	require.Equal(t, uint32(6), binary.BigEndian.Uint32(resp), "the connection is still served")
}

// TestAnUnadvertisedVersionClosesTheConnection: a version of an API
// outside what the broker advertises closes the connection unanswered, as
// Kafka does (only ApiVersions is answered regardless).
func TestAnUnadvertisedVersionClosesTheConnection(t *testing.T) {
	b, _ := setup(t, 1, nil)
	cases := []struct {
		what    string
		version int16
		req     kmsg.Request
	}{
		{"Metadata v13, above the 12 klab implements", 13, kmsg.NewPtrMetadataRequest()},
		{"Produce v2, below the 3 klab implements", 2, kmsg.NewPtrProduceRequest()},
		{"Fetch v3, below the 4 klab implements", 3, kmsg.NewPtrFetchRequest()},
	}
	for _, c := range cases {
		conn := dial(t, b.Addr())
		send(t, conn, c.version, 1, c.req)
		send(t, conn, 0, 2, kmsg.NewPtrApiVersionsRequest()) // must never be answered either
		requireClosed(t, conn, c.what)
	}
}

// TestTheVersionRangeIsInclusive: the lowest and the highest version each
// API advertises are served.
func TestTheVersionRangeIsInclusive(t *testing.T) {
	b, _ := setup(t, 1, nil)
	for _, version := range []int16{0, 12} {
		conn := dial(t, b.Addr())
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr("lesson")
		req.Topics = append(req.Topics, rt)
		send(t, conn, version, 3, req)
		resp := readResponse(t, conn)
		require.Equal(t, uint32(3), binary.BigEndian.Uint32(resp))
		body := resp[4:]
		if version >= 9 {
			body = body[1:] // the response header's tag section
		}
		md := kmsg.MetadataResponse{Version: version}
		require.NoError(t, md.ReadFrom(body), "Metadata v%d", version)
		require.Len(t, md.Topics, 1, "Metadata v%d", version)
		assert.Zero(t, md.Topics[0].ErrorCode, "Metadata v%d", version)
	}
}

// TestAnswersComeInRequestOrder: requests pipelined on one connection are
// answered in the order they were sent, which is how a client matches
// answers to requests (the correlation id confirms it). An acks=0 Produce
// among them gets no answer at all.
func TestAnswersComeInRequestOrder(t *testing.T) {
	b, _ := setup(t, 1, nil)
	conn := dial(t, b.Addr())
	send(t, conn, 3, 10, kmsg.NewPtrApiVersionsRequest())
	send(t, conn, 1, 11, kmsg.NewPtrMetadataRequest())
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = 0, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "lesson"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch("quiet")
	rt.Partitions = append(rt.Partitions, rp)
	pr.Topics = append(pr.Topics, rt)
	send(t, conn, 7, 12, pr)
	send(t, conn, 0, 13, kmsg.NewPtrApiVersionsRequest())
	for _, want := range []uint32{10, 11, 13} {
		resp := readResponse(t, conn)
		require.Equal(t, want, binary.BigEndian.Uint32(resp), "answers come in request order, and none for acks=0")
	}
}
