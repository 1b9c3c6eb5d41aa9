package broker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// This file hands out producer ids to idempotent producers (InitProducerId).
// An id must be unique in the whole cluster, yet any broker may be asked for
// one, and asking the controller for each would put it on every producer's
// start. So, as Kafka's RPCProducerIdManager does, each broker takes a block
// of ids at a time from the active controller, which writes the block to the
// metadata log (AllocateProducerIds), and hands them out one by one from it.
// When 90% of the block is gone it asks for the next one in the background,
// so that InitProducerId seldom waits.

// producerIDPrefetchPercent is how much of a block is handed out before
// the next block is asked for (Kafka's PID_PREFETCH_THRESHOLD, 0.90).
const producerIDPrefetchPercent = 90

// producerIDWait bounds how long InitProducerId waits for a block before it
// answers COORDINATOR_LOAD_IN_PROGRESS, which clients retry: while the
// controller cannot be reached, a producer hears so in a few seconds
// rather than hanging. Kafka's broker answers it at once, and the client's
// retry finds the block; a short wait spares most clients that retry (the
// first producer on a broker, say), at the price of holding the
// connection's next requests, which are answered in order, a little longer.
const producerIDWait = 2 * time.Second

// allocateTimeout bounds one attempt to get a block from the controller,
// every way askController tries included.
const allocateTimeout = 5 * time.Second

// producerIDs hands out producer ids from blocks the controller allocated.
type producerIDs struct {
	// allocate asks the active controller for a new block.
	allocate func(ctx context.Context) (metadata.ProducerIDBlock, error)
	ctx      context.Context // ends when the broker stops
	bg       *sync.WaitGroup // the broker's background work, which Close waits for
	log      *slog.Logger

	mu    sync.Mutex
	block metadata.ProducerIDBlock // the block ids come from now
	next  int64                    // the next id of block to hand out; past its Last once used up
	// prefetched is the block after, once the controller gave it.
	prefetched *metadata.ProducerIDBlock
	// requesting is closed when the request for a block in flight ends; nil
	// while none is.
	requesting chan struct{}
	// requestErr is why the last request for a block failed; nil if it did not.
	requestErr error
}

// newProducerIDs returns an allocator with no block yet: it asks for its
// first when the first producer asks for an id.
func newProducerIDs(ctx context.Context, bg *sync.WaitGroup, log *slog.Logger, allocate func(context.Context) (metadata.ProducerIDBlock, error)) *producerIDs {
	return &producerIDs{allocate: allocate, ctx: ctx, bg: bg, log: log}
}

// generate returns a producer id that no producer in the cluster has had
// (Kafka's generateProducerId). With no id left it waits for a block, until
// ctx ends, and then fails with COORDINATOR_LOAD_IN_PROGRESS, which tells
// the client to retry.
func (p *producerIDs) generate(ctx context.Context) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	waited := false
	for {
		if p.next <= p.block.Last() {
			id := p.next
			p.next++
			if id >= p.block.First+int64(p.block.Size)*producerIDPrefetchPercent/100 && p.prefetched == nil {
				p.requestBlock()
			}
			return id, nil
		}
		if p.prefetched != nil {
			p.block, p.next, p.prefetched = *p.prefetched, p.prefetched.First, nil
			continue
		}
		if waited {
			return -1, p.noBlock()
		}
		done := p.requestBlock()
		p.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
		}
		p.mu.Lock()
		waited = true
	}
}

// noBlock is the error of a wait for a block that brought no id. The
// caller holds p.mu.
func (p *producerIDs) noBlock() error {
	var why string
	switch {
	case p.requesting != nil:
		why = "the controller has not answered yet"
	case p.requestErr != nil:
		why = p.requestErr.Error()
	default:
		why = "other producers took the whole new block first"
	}
	return fmt.Errorf("%w: no producer id to give: %s", kerr.CoordinatorLoadInProgress, why)
}

// requestBlock asks the controller for the next block, in the background, unless
// a request is in flight already, and returns the channel closed when that
// request ends. The caller holds p.mu.
func (p *producerIDs) requestBlock() <-chan struct{} {
	if p.requesting != nil {
		return p.requesting
	}
	done := make(chan struct{})
	p.requesting = done
	p.bg.Add(1)
	go func() {
		defer p.bg.Done()
		block, err := p.allocate(p.ctx)
		p.mu.Lock()
		defer p.mu.Unlock()
		if err == nil {
			err = checkBlock(p.block, block)
		}
		if err != nil {
			p.log.Warn("no new block of producer ids", "err", err)
		} else {
			p.prefetched = &block
		}
		p.requestErr = err
		p.requesting = nil
		close(done)
	}()
	return done
}

// checkBlock refuses a block that is empty or does not come after the
// current one, as Kafka's RPCProducerIdManager does: the controller only
// ever allocates upwards, so such a block is a bug, and its ids may have
// been handed out already.
func checkBlock(current, got metadata.ProducerIDBlock) error {
	switch {
	case got.Size <= 0 || got.First < 0:
		return fmt.Errorf("the controller gave an empty block of producer ids: %d from %d", got.Size, got.First)
	case current.Size > 0 && got.First <= current.Last():
		return fmt.Errorf("the controller gave producer ids from %d, not after the current block's last, %d", got.First, current.Last())
	}
	return nil
}

// allocateProducerIDs gets a block of producer ids from the active
// controller: from itself when this broker is the active controller, else
// with an AllocateProducerIds request carrying its incarnation as its
// broker epoch.
func (b *Broker) allocateProducerIDs(ctx context.Context) (metadata.ProducerIDBlock, error) {
	if b.ctrl.Active() {
		return b.ctrl.AllocateProducerIDs(b.cfg.NodeID, b.incarnation)
	}
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.incarnation
	raw, err := b.askController(ctx, req, func(r kmsg.Response) int16 { return r.(*kmsg.AllocateProducerIDsResponse).ErrorCode })
	if err != nil {
		return metadata.ProducerIDBlock{}, err
	}
	resp := raw.(*kmsg.AllocateProducerIDsResponse)
	return metadata.ProducerIDBlock{Broker: b.cfg.NodeID, First: resp.ProducerIDStart, Size: resp.ProducerIDLen}, nil
}
