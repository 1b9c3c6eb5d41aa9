package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AllocateProducerIds: a broker asks the active controller for a block of
// producer ids (KIP-730), which it then hands out one by one to producers
// that ask for one with InitProducerId (producer_ids.go). The controller
// writes the block to the metadata log before it answers, so no other
// broker, and no later controller, ever gets the same ids.
//
// Behavior: a broker that is not the active controller forwards the
// request to it and relays the answer, as for AlterPartition; a forwarded
// request is not forwarded again: NOT_CONTROLLER. A controller that has
// just been elected answers NOT_CONTROLLER too until it has applied every
// record its predecessors committed (controller.AllocateProducerIDs says
// why). The broker epoch must be the incarnation the broker is registered
// with (klab's broker epoch: the start of this run of the broker, which the
// controller registers), else STALE_BROKER_EPOCH, as in Kafka: a broker the
// controller does not know in this life gets no ids. The answer is the
// block's first id and its length, 1000.
//
// Only brokers send it: ApiVersions does not list it to clients
// (registerBetweenBrokers).
//
// Version notes: v0 is the only version, and flexible.
func init() { registerBetweenBrokers(kmsg.AllocateProducerIDs, 0, 0, handleAllocateProducerIDs) }

func handleAllocateProducerIDs(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			return resp
		})
	}
	block, err := b.ctrl.AllocateProducerIDs(req.BrokerID, req.BrokerEpoch)
	resp.ErrorCode = b.code(err)
	resp.ProducerIDStart, resp.ProducerIDLen = block.First, block.Size
	return resp, nil
}
