package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/cmd/klab/internal/brokerproc"
)

// TestBrokerProcessesSurviveSIGKILL runs three `klab broker` processes with
// the same --seeds and nothing else: they form a cluster. One is killed
// with SIGKILL and started again with the same flags: it comes back with
// its data, catches up and rejoins the ISR.
func TestBrokerProcessesSurviveSIGKILL(t *testing.T) {
	bin := buildKlab(t)
	dir := t.TempDir()
	c, err := brokerproc.StartLoopback(bin, dir, 3)
	require.NoError(t, err)
	t.Cleanup(func() {
		c.Stop()
		for _, id := range []string{"1", "2", "3"} {
			if log, err := os.ReadFile(filepath.Join(dir, "broker-"+id+".log")); err == nil && t.Failed() {
				t.Logf("broker %s's output:\n%s", id, log)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs...), kgo.DefaultProduceTopic("orders"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite())
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	require.NoError(t, c.WaitBrokers(ctx))
	resp, err := adm.CreateTopics(ctx, 1, 3, nil, "orders")
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	produce := func(n int) {
		for range n {
			require.NoError(t, cl.ProduceSync(ctx, kgo.StringRecord("r")).FirstErr())
		}
	}
	produce(10)

	_, err = c.Kill(2)
	require.NoError(t, err)
	produce(10)
	segment := filepath.Join(dir, "broker-2", "orders-0", "00000000000000000000.log")
	st, err := os.Stat(segment)
	require.NoError(t, err)
	require.Positive(t, st.Size(), "broker 2 had the first records on disk")

	_, err = c.Start(2) // the same flags
	require.NoError(t, err)
	_, err = c.WaitFullISR(ctx, "orders")
	require.NoError(t, err)

	// Broker 2 holds all 20 records: ask it directly, as a consumer may
	// since Fetch v11 (KIP-392).
	one, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs[1]))
	require.NoError(t, err)
	defer one.Close()
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 100, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	topics, err := kadm.NewClient(one).ListTopics(ctx, "orders")
	require.NoError(t, err)
	rt.Topic, rt.TopicID = "orders", topics["orders"].ID // the name up to Fetch v12, the id from v13
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	var got kmsg.FetchResponseTopicPartition
	require.Eventually(t, func() bool {
		resp, err := req.RequestWith(ctx, one)
		if err != nil || kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode) != nil {
			return false
		}
		got = resp.Topics[0].Partitions[0]
		return got.HighWatermark == 20
	}, 20*time.Second, 50*time.Millisecond)
	require.NotEmpty(t, got.RecordBatches)
}

// buildKlab builds the klab binary for a test that runs broker processes;
// under -short such tests are skipped.
func buildKlab(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the klab binary and runs three processes")
	}
	bin := filepath.Join(t.TempDir(), "klab")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	return bin
}
