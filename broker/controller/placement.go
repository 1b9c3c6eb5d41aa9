package controller

import (
	"fmt"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// Assign places the replicas of partitions new partitions on brokers, rf
// replicas each, as Kafka's rack-aware assignment does:
//
//   - brokers are put in a ring that alternates racks (a1 b1 c1 a2 b2 c2 ...),
//   - partition p's first replica, its preferred leader, is the ring's
//     (start+p)th broker, so leadership spreads evenly,
//   - its other replicas follow it on the ring, skipping brokers of a rack
//     the partition already uses while some rack is unused.
//
// Replicas of one partition thus sit on distinct racks whenever there are at
// least rf racks: losing a rack loses one copy, never all. Without racks the
// ring is the brokers by id.
func Assign(brokers []metadata.Broker, partitions int, rf int, start int) ([][]int32, error) {
	if rf < 1 || rf > len(brokers) {
		return nil, fmt.Errorf("%w: replication factor %d, but %d brokers are available",
			kerr.InvalidReplicationFactor, rf, len(brokers))
	}
	//klab:lesson 07 begin Assign
	ring := rackAlternating(brokers)
	n := len(ring)
	out := make([][]int32, partitions)
	for p := range partitions {
		first := (start + p) % n
		replicas := []int32{ring[first].ID}
		usedRacks := map[string]bool{ring[first].Rack: true}
		// Round the ring from the first replica: brokers on a rack the
		// partition does not use yet come first, the others after them.
		var later []int32
		for _, b := range slices.Concat(ring[first+1:], ring[:first]) {
			if usedRacks[b.Rack] {
				later = append(later, b.ID)
				continue
			}
			replicas = append(replicas, b.ID)
			usedRacks[b.Rack] = true
		}
		out[p] = append(replicas, later...)[:rf]
	}
	return out, nil
	//klab:lesson 07 stub
	// return nil, lessons.Todo("07", "Assign")
	//klab:lesson 07 end
}

// rackAlternating orders brokers so that consecutive ones are on different
// racks where possible: the first broker of each rack, then the second of
// each, and so on; racks by name, brokers by id within a rack.
func rackAlternating(brokers []metadata.Broker) []metadata.Broker {
	byRack := map[string][]metadata.Broker{}
	var racks []string
	for _, b := range brokers {
		if _, ok := byRack[b.Rack]; !ok {
			racks = append(racks, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	sort.Strings(racks)
	for _, r := range racks {
		sort.Slice(byRack[r], func(i, j int) bool { return byRack[r][i].ID < byRack[r][j].ID })
	}
	var ring []metadata.Broker
	for i := 0; len(ring) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				ring = append(ring, byRack[r][i])
			}
		}
	}
	return ring
}
