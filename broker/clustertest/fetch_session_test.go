package clustertest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/clustertest"
)

// TestFetchSessionsAnswerOnlyNews: a Fetch with session epoch 0 opens a
// session (KIP-227); the incremental fetches that follow name only the
// partitions whose fetch position moved, and are answered with the
// partitions that have news only (records, a moved high watermark); a
// forgotten partition is no longer answered; a stale epoch and an unknown
// session are errors the fetcher recovers from with a full fetch; epoch
// -1 closes the session.
func TestFetchSessionsAnswerOnlyNews(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 1})
	c.CreateTopic("orders", 3, 1, nil, nil)
	leader := c.WaitLeader("orders", 0, 10*time.Second, nil)
	cl := c.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "orders")
	require.NoError(t, err)
	id := topics["orders"].ID

	// fetch asks for partitions at their offsets, and forgets others.
	fetch := func(sessionID, epoch int32, partitions map[int32]int64, forget []int32) *kmsg.FetchResponse {
		t.Helper()
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 20, 1<<20
		req.SessionID, req.SessionEpoch = sessionID, epoch
		if len(partitions) > 0 {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = "orders", id
			for p, offset := range partitions {
				rp := kmsg.NewFetchRequestTopicPartition()
				rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = p, offset, 1<<20, -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		if len(forget) > 0 {
			req.ForgottenTopics = append(req.ForgottenTopics, kmsg.FetchRequestForgottenTopic{Topic: "orders", TopicID: id, Partitions: forget})
		}
		raw, err := cl.Broker(int(leader)).Request(ctx, req)
		require.NoError(t, err)
		return raw.(*kmsg.FetchResponse)
	}
	answered := func(resp *kmsg.FetchResponse) map[int32]int {
		out := map[int32]int{}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				out[rp.Partition] = len(rp.RecordBatches)
			}
		}
		return out
	}

	open := fetch(0, 0, map[int32]int64{0: 0, 1: 0, 2: 0}, nil)
	require.Equal(t, int16(0), open.ErrorCode)
	require.NotZero(t, open.SessionID, "epoch 0 opens a session")
	assert.Len(t, answered(open), 3, "the opening fetch is a full one")

	require.NoError(t, c.ProduceTo(leader, "orders", 1, 1, "news"))
	inc := fetch(open.SessionID, 1, nil, nil)
	require.Equal(t, int16(0), inc.ErrorCode)
	require.Equal(t, open.SessionID, inc.SessionID)
	got := answered(inc)
	require.Len(t, got, 1, "only the partition with news: %v", got)
	assert.Positive(t, got[1], "with its record")

	// The fetcher moves its position past the record: that partition
	// alone is in the request.
	quiet := fetch(open.SessionID, 2, map[int32]int64{1: 1}, nil)
	assert.Empty(t, answered(quiet), "nothing new")

	stale := fetch(open.SessionID, 2, nil, nil)
	assert.Equal(t, kerr.InvalidFetchSessionEpoch.Code, stale.ErrorCode)

	require.NoError(t, c.ProduceTo(leader, "orders", 2, 1, "forgotten"))
	forgot := fetch(open.SessionID, 3, nil, []int32{2})
	assert.Empty(t, answered(forgot), "a forgotten partition is not answered")

	closed := fetch(open.SessionID, -1, map[int32]int64{0: 0}, nil)
	assert.Zero(t, closed.SessionID, "epoch -1 is a full fetch without a session")
	assert.Len(t, answered(closed), 1)
	gone := fetch(open.SessionID, 4, nil, nil)
	assert.Equal(t, kerr.FetchSessionIDNotFound.Code, gone.ErrorCode)
}
