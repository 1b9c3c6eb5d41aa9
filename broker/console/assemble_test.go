package console

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// image is a cluster of three registered brokers with one topic, orders,
// of two partitions: orders-0 led by 1 with 1 and 2 in sync (3 fell out),
// orders-1 offline.
func image() *metadata.Image {
	im := metadata.Empty()
	im.ClusterID, im.Offset = "c1", 42
	for id := int32(1); id <= 3; id++ {
		im.Brokers[id] = metadata.Broker{ID: id, Addr: "b" + string(rune('0'+id)), Incarnation: int64(id) * 100}
	}
	im.Topics["orders"] = &metadata.Topic{Name: "orders", Partitions: []metadata.Partition{
		{Replicas: []int32{1, 2, 3}, Leader: 1, LeaderEpoch: 4, ISR: []int32{1, 2}},
		{Replicas: []int32{3}, Leader: -1, LeaderEpoch: 2, ISR: []int32{3}},
	}}
	im.Topics["__consumer_offsets"] = &metadata.Topic{Name: "__consumer_offsets", Partitions: []metadata.Partition{
		{Replicas: []int32{2}, Leader: 2, ISR: []int32{2}},
	}}
	return im
}

func TestAssemblePartitions(t *testing.T) {
	alive := map[int32]membership.Member{1: {ID: 1, Console: "c1"}, 2: {ID: 2, Console: "c2"}}
	locals := map[int32]Local{
		1: {Broker: 1, Replicas: []Replica{{Topic: "orders", Partition: 0, Leader: true, LeaderEpoch: 4, LogEnd: 120, HighWatermark: 100, Followers: map[int32]int64{2: 110, 3: 90}}}},
		2: {Broker: 2, Replicas: []Replica{{Topic: "orders", Partition: 0, LogEnd: 112, HighWatermark: 95}}},
	}
	c := Assemble(image(), alive, 2, 1, locals, map[int32]string{3: "connection refused"})

	assert.Equal(t, "c1", c.ClusterID)
	assert.Equal(t, uint64(42), c.MetadataOffset)
	assert.Equal(t, int32(1), c.Served)
	require.Len(t, c.Topics, 2)
	assert.Equal(t, "__consumer_offsets", c.Topics[0].Name)
	assert.True(t, c.Topics[0].Internal)
	orders := c.Topics[1]
	require.Len(t, orders.Partitions, 2)

	p0 := orders.Partitions[0]
	assert.Equal(t, int64(100), p0.HighWatermark, "the leader's high watermark, not a follower's")
	assert.True(t, p0.UnderReplicated)
	assert.False(t, p0.Offline)
	assert.Equal(t, []ReplicaView{
		{Broker: 1, InISR: true, Alive: true, LogEnd: 120},
		{Broker: 2, InISR: true, Alive: true, LogEnd: 112},                    // its own report
		{Broker: 3, InISR: false, Alive: false, LogEnd: 90, FromLeader: true}, // dead: as the leader saw it
	}, p0.States)

	p1 := orders.Partitions[1]
	assert.True(t, p1.Offline)
	assert.Equal(t, int64(-1), p1.HighWatermark, "no leader, no high watermark")
	assert.Equal(t, int64(-1), p1.States[0].LogEnd)
}

func TestAssembleBrokers(t *testing.T) {
	alive := map[int32]membership.Member{
		1: {ID: 1, Console: "c1"}, 2: {ID: 2, Console: "c2"},
		4: {ID: 4, Addr: "b4", Incarnation: 400}, // alive, not registered yet
	}
	im := image()
	b2 := im.Brokers[2]
	b2.InControlledShutdown = true
	im.Brokers[2] = b2
	c := Assemble(im, alive, 2, 1, map[int32]Local{}, map[int32]string{3: "connection refused"})
	require.Len(t, c.Brokers, 4)
	assert.Equal(t, Broker{ID: 1, Addr: "b1", Alive: true, Registered: true, Incarnation: 100, Console: "c1", Leads: 1}, c.Brokers[0])
	assert.Equal(t, Broker{ID: 2, Addr: "b2", Alive: true, Registered: true, Incarnation: 200, ShuttingDown: true, Controller: true, Console: "c2", Leads: 1}, c.Brokers[1])
	assert.Equal(t, Broker{ID: 3, Addr: "b3", Registered: true, Incarnation: 300, Unreachable: "connection refused"}, c.Brokers[2])
	assert.Equal(t, Broker{ID: 4, Addr: "b4", Alive: true, Incarnation: 400}, c.Brokers[3])
}

func TestAssembleGroupLag(t *testing.T) {
	alive := map[int32]membership.Member{1: {ID: 1}, 2: {ID: 2}}
	locals := map[int32]Local{
		1: {Broker: 1, Replicas: []Replica{{Topic: "orders", Partition: 0, Leader: true, LogEnd: 120, HighWatermark: 100}}},
		2: {Broker: 2, Groups: []Group{
			{ID: "billing", State: "Stable", ProtocolType: "consumer", Protocol: "range",
				Members:   []Member{{ID: "m1", ClientID: "app", ClientHost: "/10.0.0.1", Assigned: map[string][]int32{"orders": {0, 1}}}},
				Committed: []Committed{{Topic: "orders", Partition: 0, Offset: 70}}},
			{ID: "audit", State: "Empty", Committed: []Committed{{Topic: "orders", Partition: 0, Offset: 130}}},
		}},
	}
	c := Assemble(image(), alive, 1, 1, locals, nil)
	require.Len(t, c.Groups, 2)

	audit := c.Groups[0]
	assert.Equal(t, "audit", audit.ID)
	assert.Equal(t, []LagRow{{Topic: "orders", Partition: 0, Committed: 130, LogEnd: 100, Lag: 0}}, audit.Lag,
		"a commit past the high watermark (the log was truncated under it) is no negative lag")

	billing := c.Groups[1]
	assert.Equal(t, int32(2), billing.Coordinator)
	assert.Equal(t, []LagRow{
		// The lag is to the high watermark, not the leader's log end (120):
		// a consumer cannot read past it.
		{Topic: "orders", Partition: 0, Committed: 70, LogEnd: 100, Lag: 30, MemberID: "m1", Host: "/10.0.0.1", ClientID: "app"},
		// Owned, never committed, and its leader unknown (offline).
		{Topic: "orders", Partition: 1, Committed: -1, LogEnd: -1, Lag: -1, MemberID: "m1", Host: "/10.0.0.1", ClientID: "app"},
	}, billing.Lag)
	assert.Equal(t, int64(30), billing.TotalLag)
}
