package controller

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
)

// A controlled shutdown is a broker leaving on purpose (SIGTERM, `klab
// broker stop`), as KRaft brokers do: before it stops serving, it asks the
// active controller to take its work away, and waits until it has.
//
//	broker                        controller
//	  │ BrokerHeartbeat               │
//	  │   WantShutDown ──────────────▶│ record ControlledShutdown(id, incarnation):
//	  │                               │ the broker is no longer Eligible, so the
//	  │                               │ control loop (Decide) moves each partition
//	  │                               │ it leads to another in-sync replica and
//	  │                               │ takes it out of every ISR it is in
//	  │◀──────── ShouldShutDown=false │
//	  │   ... asks again ...          │
//	  │◀──────── ShouldShutDown=true  │ once ShutdownDone
//	  │ stops: clients already moved to the new leaders, no acks=all waits on it
//
// A crash gets the same moves, but only after gossip has declared the
// broker dead; meanwhile its partitions have no leader, and producers with
// acks=all wait for it. That wait is what a controlled shutdown saves.

// Eligible says whether broker id may lead partitions and be in their ISRs
// now, in image im, given the brokers gossip says are alive: it must be
// alive, registered in the life gossip shows (a broker that started again
// since it registered is new, and whatever its previous life had may be
// lost), and not shutting down.
func Eligible(im *metadata.Image, alive map[int32]membership.Member, id int32) bool {
	//klab:lesson 11 begin Eligible
	m, ok := alive[id]
	if !ok {
		return false
	}
	reg, ok := im.Brokers[id]
	if ok && reg.Incarnation != m.Incarnation {
		return false
	}
	return !reg.InControlledShutdown
	//klab:lesson 11 stub
	// panic(lessons.Todo("11", "Eligible")) // Eligible returns no error: the stub panics
	//klab:lesson 11 end
}

// ShutdownDone says whether broker id, shutting down, has handed over all
// its work in image im and may stop: it leads no partition, and is in no
// partition's ISR that has another member still serving (one not shutting
// down) to take its place. Where it is the last member, or every other
// member is stopping too (a whole cluster stopped at once), nobody can:
// the ISR keeps them, and the partition waits for them to come back, as it
// would after a crash — no other replica has every acknowledged record.
func ShutdownDone(im *metadata.Image, id int32) bool {
	//klab:lesson 11 begin ShutdownDone
	serving := func(m int32) bool { return m != id && !im.Brokers[m].InControlledShutdown }
	for _, t := range im.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id || p.InSync(id) && slices.ContainsFunc(p.ISR, serving) {
				return false
			}
		}
	}
	return true
	//klab:lesson 11 stub
	// panic(lessons.Todo("11", "ShutdownDone")) // ShutdownDone returns no error: the stub panics
	//klab:lesson 11 end
}

// eligible is Eligible for image im and who is alive now.
func (c *Controller) eligible(im *metadata.Image) func(int32) bool {
	alive := c.cfg.Members.Alive()
	return func(id int32) bool { return Eligible(im, alive, id) }
}

// ControlledShutdown is a broker's request to stop, in its life
// incarnation: the first one records that it is shutting down, which the
// control loop acts on; each answers whether it is done (ShutdownDone). A
// request from an earlier life of the broker is refused with
// STALE_BROKER_EPOCH.
func (c *Controller) ControlledShutdown(id int32, incarnation int64) (done bool, err error) {
	if !c.caughtUp() {
		return false, ErrNotController
	}
	b, ok := c.fsm.Image().Brokers[id]
	switch {
	case !ok || b.Incarnation != incarnation:
		return false, fmt.Errorf("%w: broker %d is not registered in incarnation %d", kerr.StaleBrokerEpoch, id, incarnation)
	case !b.InControlledShutdown:
		c.log.Info("controller: broker shutting down; moving its leadership", "id", id)
		if err := c.propose(metadata.Record{ControlledShutdown: &metadata.BrokerShutdown{ID: id, Incarnation: incarnation}}); err != nil {
			return false, err
		}
	}
	return ShutdownDone(c.fsm.Image(), id), nil
}
