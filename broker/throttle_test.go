package broker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestQuotaRefillsAtItsRate: a quota lets replication through while its
// bucket holds bytes, refills at its rate a second up to a second's worth,
// and an unlimited rate (Kafka's default, Long.MAX_VALUE) never stops it.
func TestQuotaRefillsAtItsRate(t *testing.T) {
	var q quota
	start := time.Unix(1000, 0)
	require.True(t, q.allow(1000, start), "a new bucket is full")
	q.spend(1500)
	require.False(t, q.allow(1000, start), "1500 bytes of a 1000 bytes/s bucket: spent, in debt")
	require.False(t, q.allow(1000, start.Add(400*time.Millisecond)), "400 ms refill 400 bytes: still 100 in debt")
	require.True(t, q.allow(1000, start.Add(600*time.Millisecond)), "600 ms refill 600 bytes: 100 left")
	require.True(t, q.allow(1000, start.Add(time.Hour)))
	q.spend(1001)
	require.False(t, q.allow(1000, start.Add(time.Hour)), "an hour idle refills one second's worth, not an hour's")
	require.True(t, q.allow(1<<63-1, start), "no limit")
}

// TestThrottledReplica reads leader/follower.replication.throttled.replicas
// as Kafka writes it: partition:broker pairs, or * for every replica.
func TestThrottledReplica(t *testing.T) {
	require.True(t, throttledReplica("*", 3, 7))
	require.True(t, throttledReplica("0:1, 3:7", 3, 7))
	require.False(t, throttledReplica("0:1,3:7", 3, 1))
	require.False(t, throttledReplica("13:7", 3, 7))
	require.False(t, throttledReplica("", 0, 1))
}
