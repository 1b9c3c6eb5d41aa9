package assign

import (
	"fmt"
	"maps"
	"slices"
)

// The leader's part of a rebalance: decode every member's subscription
// from the JoinGroup answer, assign, and encode each member's share for
// SyncGroup; each member decodes its own from the SyncGroup answer.
func Example() {
	// What the JoinGroup answer holds for the leader: member id to the
	// metadata each member sent for the chosen protocol.
	joined := map[string][]byte{
		"m-1": EncodeSubscription(Subscription{Topics: []string{"orders"}, Generation: -1}, SubscriptionVersion),
		"m-2": EncodeSubscription(Subscription{Topics: []string{"orders", "refunds"}, Generation: -1}, SubscriptionVersion),
	}
	var members []Member
	for id, b := range joined {
		s, err := DecodeSubscription(b)
		if err != nil {
			panic(err) // a real leader fails the rebalance
		}
		members = append(members, s.Member(id, ""))
	}
	assignor, _ := ByName("range") // the protocol JoinGroup chose
	plan := assignor.Assign(members, map[string]int32{"orders": 3, "refunds": 2})

	for _, id := range slices.Sorted(maps.Keys(plan)) {
		sync := EncodeAssignment(plan[id], nil) // in the leader's SyncGroup
		got, _, _ := DecodeAssignment(sync)     // in the member's answer
		fmt.Println(id, got)
	}
	// Output:
	// m-1 map[orders:[0 1]]
	// m-2 map[orders:[2] refunds:[0 1]]
}
