package broker_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// openSegmentFiles lists the .log files under dir this process holds
// open, from /proc (Linux only).
func openSegmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	var open []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) && strings.HasSuffix(target, ".log") {
			open = append(open, target)
		}
	}
	return open
}

// TestAPartitionNamedTwiceIsAnsweredOnce: a Fetch that names a partition
// twice gets one answer for it, from the first fetch offset, as Kafka,
// which reads the request's partitions into a map, gives one. Each answer
// holds its segment file open until it is sent; none is left open once
// the broker has stopped.
func TestAPartitionNamedTwiceIsAnsweredOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts open files in /proc/self/fd")
	}
	dir := t.TempDir()
	b := start(t, dir)
	ctx := ctxT(t)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctx, 1, 1, nil, "twice")
	require.NoError(t, err)
	p := client(t, b, kgo.DefaultProduceTopic("twice"), kgo.ProducerLinger(0))
	for range 10 {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 100))}).FirstErr())
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 1<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "twice"
	for _, offset := range []int64{0, 5} {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.FetchOffset, rp.PartitionMaxBytes, rp.LogStartOffset = offset, 1<<20, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	// Kafka 2.8 speaks Fetch up to v12, which names topics by name.
	resp, err := req.RequestWith(ctx, client(t, b, kgo.MaxVersions(kversion.V2_8_0())))
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, 1, "one answer for the partition")
	var batch kmsg.RecordBatch
	require.NoError(t, batch.ReadFrom(resp.Topics[0].Partitions[0].RecordBatches))
	require.Equal(t, int64(0), batch.FirstOffset, "from the first fetch offset named")

	require.NoError(t, b.Close())
	require.Empty(t, openSegmentFiles(t, dir), "segment files left open after the broker stopped")
}
