package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAwait(t *testing.T) {
	g, _ := newTestGroup(0)
	r, err := Await(context.Background(), g.Join(joinReq("", "range")))
	require.NoError(t, err)
	require.NoError(t, r.Err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch := g.Join(joinReq("", "range")) // waits for the first member to rejoin
	_, err = Await(ctx, ch)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestConcurrentMembers runs clients in goroutines, each looping
// join → sync → heartbeat as a consumer does, while another goroutine
// ticks; run with -race. Every client must end in one Stable generation.
func TestConcurrentMembers(t *testing.T) {
	g, _ := newTestGroup(0)
	const clients = 8
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	stopTicking := make(chan struct{})
	tickerDone := make(chan struct{})
	go func() { // the coordinator's tick; the fake clock never moves, so nothing expires
		defer close(tickerDone)
		for {
			select {
			case <-stopTicking:
				return
			default:
				g.Tick()
				_ = g.Describe()
			}
		}
	}()

	results := make([]SyncResult, clients)
	for i := range clients {
		wg.Go(func() {
			req := joinReq("", "range")
			req.ClientID = fmt.Sprintf("client-%d", i)
			req.RequireKnownMemberID = true
			for ctx.Err() == nil {
				jr, err := Await(ctx, g.Join(req))
				if err != nil {
					return
				}
				req.MemberID = jr.MemberID
				if jr.Err != nil {
					continue // MEMBER_ID_REQUIRED, or a rebalance interrupted us
				}
				sync := SyncRequest{MemberID: jr.MemberID, Generation: jr.Generation}
				if jr.Leader == jr.MemberID {
					sync.Assignments = map[string][]byte{}
					for _, m := range jr.Members {
						sync.Assignments[m.MemberID] = []byte(m.MemberID)
					}
				}
				sr, err := Await(ctx, g.Sync(sync))
				if err != nil {
					return
				}
				if sr.Err != nil {
					continue
				}
				// Heartbeat until told to rejoin, or until everyone is in.
				for ctx.Err() == nil {
					if err := g.Heartbeat(jr.MemberID, "", jr.Generation); err != nil {
						break
					}
					if d := g.Describe(); d.State == Stable && len(d.Members) == clients {
						results[i] = sr
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(stopTicking)
	<-tickerDone
	require.NoError(t, ctx.Err(), "the clients did not settle")

	d := g.Describe()
	require.Equal(t, Stable, d.State)
	require.Len(t, d.Members, clients)
	for _, m := range d.Members {
		assert.Equal(t, m.MemberID, string(m.Assignment))
	}
}
