package broker_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsV3 sends ApiVersions v3 with the given software name and
// version on conn, header v2 (flexible), and reads the answer, whose header
// is v0 whatever the version.
func apiVersionsV3(t *testing.T, conn net.Conn, name, version string) kmsg.ApiVersionsResponse {
	t.Helper()
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = name, version
	b := binary.BigEndian.AppendUint32(nil, 0) // the size, set below
	b = binary.BigEndian.AppendUint16(b, uint16(kmsg.ApiVersions))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = binary.BigEndian.AppendUint32(b, 7)      // correlation id
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	b = append(b, 0)                             // no tagged fields
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := conn.Write(b)
	require.NoError(t, err)

	var size [4]byte
	_, err = io.ReadFull(conn, size[:])
	require.NoError(t, err, "ApiVersions must be answered")
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err = io.ReadFull(conn, body)
	require.NoError(t, err)
	require.Equal(t, uint32(7), binary.BigEndian.Uint32(body), "correlation id")
	resp := kmsg.ApiVersionsResponse{Version: 3}
	require.NoError(t, resp.ReadFrom(body[4:]))
	return resp
}

// ApiVersions v3 carries the client's software name and version
// (KIP-511), which Kafka checks: each must match
// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?, and a request that breaks the
// rule is INVALID_REQUEST, with no list of APIs. The connection goes on.
func TestApiVersionsV3NeedsAValidSoftwareNameAndVersion(t *testing.T) {
	b := start(t, t.TempDir())
	conn := dial(t, b.Addr())
	for _, tc := range []struct{ name, version string }{
		{"", ""},
		{"", "1.0"},
		{"klab", ""},
		{"-klab", "1.0"},
		{"klab", "1.0."},
		{"kl ab", "1.0"},
	} {
		resp := apiVersionsV3(t, conn, tc.name, tc.version)
		assert.Equal(t, kerr.InvalidRequest.Code, resp.ErrorCode, "name %q, version %q", tc.name, tc.version)
		assert.Empty(t, resp.ApiKeys, "name %q, version %q: Kafka sends no list with INVALID_REQUEST", tc.name, tc.version)
	}
	for _, tc := range []struct{ name, version string }{
		{"k", "1"},
		{"apache-kafka-java", "3.9.0"},
		{"franz-go", "v1.22.3"},
	} {
		resp := apiVersionsV3(t, conn, tc.name, tc.version)
		assert.Zero(t, resp.ErrorCode, "name %q, version %q", tc.name, tc.version)
		assert.NotEmpty(t, resp.ApiKeys, "name %q, version %q", tc.name, tc.version)
	}
}

// The APIs brokers send the active controller are served, but not listed
// to clients, as Kafka lists on its client listener only what clients may
// send (clustertest's TestBrokerToControllerAPIsAreNotAdvertised shows the
// brokers still use them).
func TestApiVersionsListsNoBrokerToControllerAPI(t *testing.T) {
	b := start(t, t.TempDir())
	resp := apiVersionsV3(t, dial(t, b.Addr()), "klab-test", "1")
	require.Zero(t, resp.ErrorCode)
	listed := map[int16]bool{}
	for _, k := range resp.ApiKeys {
		listed[k.ApiKey] = true
	}
	for _, key := range []kmsg.Key{kmsg.AlterPartition, kmsg.BrokerHeartbeat, kmsg.AllocateProducerIDs} {
		assert.False(t, listed[int16(key)], "%s is listed", key.Name())
	}
	for _, key := range []kmsg.Key{kmsg.Produce, kmsg.Fetch, kmsg.Metadata, kmsg.ApiVersions, kmsg.OffsetForLeaderEpoch, kmsg.DescribeCluster} {
		assert.True(t, listed[int16(key)], "%s is not listed", key.Name())
	}
}
