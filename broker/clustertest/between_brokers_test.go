package clustertest_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/clustertest"
)

// TestBrokerToControllerAPIsAreNotAdvertised: ApiVersions lists only the
// APIs clients send. AlterPartition, BrokerHeartbeat and
// AllocateProducerIds, which brokers send the active controller, are in no
// broker's answer, and the brokers still send them to each other: a broker
// that is not the controller gets a block of producer ids
// (AllocateProducerIds), a leader that is not the controller drops a
// follower it cannot reach from the ISR (AlterPartition), and a broker
// shuts down under control, its leadership moved first (BrokerHeartbeat).
func TestBrokerToControllerAPIsAreNotAdvertised(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: clustertest.LagTime(2 * time.Second)})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(id int32) *client.Conn {
		t.Helper()
		conn, err := client.Dial(ctx, c.Addr(id), "test")
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	for _, id := range c.IDs() {
		conn := dial(id)
		for _, key := range []kmsg.Key{kmsg.AlterPartition, kmsg.BrokerHeartbeat, kmsg.AllocateProducerIDs} {
			assert.Equal(t, int16(-1), conn.Version(int16(key)), "broker %d lists %s", id, key.Name())
		}
		assert.Equal(t, int16(12), conn.Version(int16(kmsg.Metadata)), "broker %d lists what clients send", id)
	}

	ctrl := c.Broker(c.IDs()[0]).ActiveController()
	var others []int32
	for _, id := range c.IDs() {
		if id != ctrl {
			others = append(others, id)
		}
	}
	leader, follower := others[0], others[1]
	c.CreateTopic("t", 0, 0, [][]int32{{leader, follower, ctrl}}, nil)
	c.WaitFullISR("t", 0, 20*time.Second)

	// AllocateProducerIds: the leader has no block of ids yet.
	raw, err := dial(leader).Request(ctx, kmsg.NewPtrInitProducerIDRequest())
	require.NoError(t, err)
	init := raw.(*kmsg.InitProducerIDResponse)
	require.NoError(t, kerr.ErrorForCode(init.ErrorCode), "InitProducerId on broker %d, not the controller", leader)
	assert.GreaterOrEqual(t, init.ProducerID, int64(0))

	// AlterPartition: the follower can no longer fetch from the leader,
	// but is alive to the controller; only the leader can drop it.
	c.Isolate(follower, leader)
	c.WaitFor(20*time.Second, "the leader to drop the follower from the ISR", func() bool {
		p, _ := c.Partition(ctrl, "t", 0)
		return p.Leader == leader && !slices.Contains(p.ISR, follower)
	})

	// BrokerHeartbeat: the leader stops under control, and the controller
	// moves its leadership before it is gone.
	c.Stop(leader)
	p, _ := c.Partition(ctrl, "t", 0)
	assert.Equal(t, ctrl, p.Leader, "leadership moved to the last in-sync replica during the controlled shutdown")
}
