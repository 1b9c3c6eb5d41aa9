package clustertest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/clustertest"
)

// TestEveryReplicaOfANewPartitionRecordsItsFirstEpoch: as a partition is
// created, every replica of it, follower as well as leader, records that
// leader epoch 0 starts at offset 0 (leader-epoch-checkpoint), and keeps
// that file as it is through the first acks=all writes. A follower has
// nothing to cut then (its log is empty, and its latest epoch is the one
// it follows in) and its first copied batch has nothing new to record:
// writing the file again, with its fsync, would be paid inside the new
// topic's first acks=all write, which waits for the followers' copies.
func TestEveryReplicaOfANewPartitionRecordsItsFirstEpoch(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{})
	const partitions = 2
	c.CreateTopic("fresh", partitions, 3, nil, nil)
	files := map[string]os.FileInfo{}
	for _, id := range c.IDs() {
		for p := range int32(partitions) {
			path := filepath.Join(c.LogDir(id, "fresh", p), "leader-epoch-checkpoint")
			c.WaitFor(10*time.Second, path+" records epoch 0 from offset 0", func() bool {
				b, err := os.ReadFile(path)
				return err == nil && string(b) == "0\n1\n0 0\n"
			})
			fi, err := os.Stat(path)
			require.NoError(t, err)
			files[path] = fi
		}
	}
	for p := range int32(partitions) {
		leader := c.WaitLeader("fresh", p, 10*time.Second, nil)
		for i := range 3 {
			require.NoError(t, c.ProduceTo(leader, "fresh", p, -1, fmt.Sprint(i)))
		}
	}
	for path, before := range files {
		after, err := os.Stat(path)
		require.NoError(t, err)
		assert.True(t, os.SameFile(before, after), "%s was written again", path)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "0\n1\n0 0\n", string(b), path)
	}
}
