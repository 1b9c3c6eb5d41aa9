package group_test

import (
	"context"
	"fmt"
	"time"

	"klab.dev/klab/broker/group"
)

// A JoinGroup handler calls Join and waits with Await; the leader's
// SyncGroup carries the assignment, and every member's SyncGroup gets its
// share.
func Example() {
	cfg := group.DefaultConfig()
	cfg.InitialRebalanceDelay = 0 // join at once: no other member is coming
	groups := group.NewManager(cfg)
	g := groups.Group("orders")
	ctx := context.Background()

	joined, _ := group.Await(ctx, g.Join(group.JoinRequest{
		ClientID:         "consumer-1",
		ProtocolType:     "consumer",
		Protocols:        []group.Protocol{{Name: "range", Metadata: []byte("subscription")}},
		SessionTimeout:   45 * time.Second,
		RebalanceTimeout: 5 * time.Minute,
	}))
	fmt.Println(joined.Err, joined.Generation, joined.Protocol, joined.Leader == joined.MemberID, g.State())

	synced, _ := group.Await(ctx, g.Sync(group.SyncRequest{
		MemberID:    joined.MemberID,
		Generation:  joined.Generation,
		Assignments: map[string][]byte{joined.MemberID: []byte("orders-0,orders-1")},
	}))
	fmt.Println(synced.Err, string(synced.Assignment), g.State())
	fmt.Println(g.Heartbeat(joined.MemberID, "", joined.Generation))
	// Output:
	// <nil> 1 range true CompletingRebalance
	// <nil> orders-0,orders-1 Stable
	// <nil>
}
