package controller

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/broker/metadata"
)

// ProducerIDBlockSize is how many producer ids a broker gets at a time:
// Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE. Larger blocks mean fewer
// trips to the controller, and more ids lost when a broker restarts with
// part of its block unused (64-bit ids: nobody runs out).
const ProducerIDBlockSize = 1000

// AllocateProducerIDs gives a broker the next block of producer ids
// (KIP-730), by writing it to the metadata log. incarnation is the broker's
// epoch, as it gave it in AllocateProducerIds: a broker that is not
// registered in that incarnation gets STALE_BROKER_EPOCH, as in Kafka's
// ProducerIdControlManager. Off the active controller, or before it has
// caught up with its predecessors' records, the answer is NOT_CONTROLLER.
//
// Why wait until it has caught up: raft's new leader has every committed
// record in its log, but may not have applied them all yet, and an image
// without its predecessor's last blocks would make it propose a block that
// overlaps one already handed out. Such a block could never be given:
// records apply in log order, the predecessor's first, and apply refuses a
// block that does not start at the image's next id (ErrStaleProducerIDs),
// on every broker alike. That is what keeps ids unique; waiting for the run
// loop's Barrier only saves a proposal that is bound to be refused. Should
// one be refused all the same (the leadership lost and won back between the
// check and the proposal), its propose returns once the record was applied
// here, after everything before it: a second try reads an image that has
// every earlier block, and lands.
func (c *Controller) AllocateProducerIDs(broker int32, incarnation int64) (metadata.ProducerIDBlock, error) {
	c.producerIDsMu.Lock()
	defer c.producerIDsMu.Unlock()
	if !c.caughtUp() {
		return metadata.ProducerIDBlock{}, ErrNotController
	}
	reg, ok := c.fsm.Image().Brokers[broker]
	switch {
	case !ok:
		return metadata.ProducerIDBlock{}, fmt.Errorf("%w: broker %d is not registered", kerr.StaleBrokerEpoch, broker)
	case reg.Incarnation != incarnation:
		return metadata.ProducerIDBlock{}, fmt.Errorf("%w: broker %d is registered in incarnation %d, not %d", kerr.StaleBrokerEpoch, broker, reg.Incarnation, incarnation)
	}
	for tries := 1; ; tries++ {
		block := metadata.ProducerIDBlock{Broker: broker, First: c.fsm.Image().NextProducerID, Size: ProducerIDBlockSize}
		err := c.propose(metadata.Record{AllocateProducerIDs: &block})
		if errors.Is(err, metadata.ErrStaleProducerIDs) && tries < 2 {
			continue
		}
		if err != nil {
			return metadata.ProducerIDBlock{}, err
		}
		return block, nil
	}
}
