package controller_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/controller"
	"klab.dev/klab/broker/metadata"
)

// TestImbalancedBrokers: a broker's leaderships come back only once more
// than leader.imbalance.per.broker.percentage of the partitions it is the
// preferred leader of are led by others, and only while it may lead.
func TestImbalancedBrokers(t *testing.T) {
	im := metadata.Empty()
	var parts []metadata.Partition
	// Broker 1 is the preferred leader of ten partitions, and leads nine.
	for i := range 10 {
		leader := int32(1)
		if i == 0 {
			leader = 2
		}
		parts = append(parts, metadata.Partition{Replicas: []int32{1, 2}, Leader: leader, ISR: []int32{1, 2}})
	}
	// Broker 2 is the preferred leader of two, and leads neither.
	for range 2 {
		parts = append(parts, metadata.Partition{Replicas: []int32{2, 1}, Leader: 1, ISR: []int32{1, 2}})
	}
	im.Topics["t"] = &metadata.Topic{Name: "t", Partitions: parts}
	all := func(int32) bool { return true }

	require.Equal(t, map[int32]bool{2: true}, controller.ImbalancedBrokers(im, all, 10),
		"1 of broker 1's 10 is led by another: 10% is not more than 10%; broker 2 has 2 of 2")
	require.Equal(t, map[int32]bool{1: true, 2: true}, controller.ImbalancedBrokers(im, all, 9))
	require.Equal(t, map[int32]bool{}, controller.ImbalancedBrokers(im, func(id int32) bool { return id != 2 }, 10),
		"a broker that may not lead gets nothing back")
	require.Equal(t, map[int32]bool{1: true, 2: true}, controller.ImbalancedBrokers(im, all, 0),
		"0%: any partition led by another counts")
}
