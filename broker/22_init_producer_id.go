package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId: an idempotent producer's first request (KIP-98). It gets
// a producer id, unique in the cluster, and an epoch; it stamps both on
// every batch it sends, with a sequence number per partition, so that the
// partition's leader can tell a retried batch it already has from a new
// one, and drop the duplicate.
//
// Behavior: any broker answers, not only a coordinator: producer ids come
// from the block this broker holds (producer_ids.go). A request without a
// transactional id always gets a new producer id and epoch 0, whatever
// producer id and epoch it carries (v3+), as Kafka's TransactionCoordinator
// does: an idempotent producer that lost track of its sequence numbers
// starts afresh under a new id. While the broker has no id left and cannot
// get a block from the controller it answers COORDINATOR_LOAD_IN_PROGRESS
// after a short wait, and the client retries. A transactional id is
// refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED (an empty one with
// INVALID_REQUEST, as Kafka does), as Produce refuses
// one: transactions arrive in lesson 16 (no version of the response has an
// error message to say so; the broker's log does).
//
// Version notes: v1 is v0; v2 is flexible; v3 carries the producer's
// current id and epoch, so that a transactional producer can recover from
// a fenced or unknown epoch (KIP-360); v4 and v5 only allow new errors
// (PRODUCER_FENCED, KIP-588; TRANSACTION_ABORTABLE, KIP-890), which
// concern transactions.
func init() { register(kmsg.InitProducerID, 0, 5, handleInitProducerID) }

func handleInitProducerID(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	var err error
	switch {
	case req.TransactionalID != nil && *req.TransactionalID == "":
		// An empty transactional id is neither idempotent nor transactional:
		// Kafka's TransactionCoordinator refuses it so.
		err = fmt.Errorf("%w: an empty transactional id; leave it out (null) for an idempotent producer", kerr.InvalidRequest)
	case req.TransactionalID != nil:
		err = fmt.Errorf("%w: transactional id %q: transactions arrive in lesson 16", kerr.TransactionalIDAuthorizationFailed, *req.TransactionalID)
	default:
		ctx, cancel := context.WithTimeout(ctx, producerIDWait)
		defer cancel()
		resp.ProducerID, err = b.producerIDs.generate(ctx)
	}
	if err != nil {
		b.log.Info("InitProducerId refused", "err", err)
		resp.ErrorCode = b.code(err)
		resp.ProducerID, resp.ProducerEpoch = -1, -1 // Kafka's NO_PRODUCER_ID and NO_PRODUCER_EPOCH
		return resp, nil
	}
	resp.ProducerEpoch = 0
	return resp, nil
}
