package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/client"
	"klab.dev/klab/broker/metadata"
)

// This file is how requests that only the active controller can answer
// reach it. Brokers' own requests (AlterPartition, AllocateProducerIds,
// BrokerHeartbeat) try the active controller first and then, if it cannot
// be reached, every other broker (askController), so that a broker cut off
// from the controller, but not from every broker, is still heard. A broker
// that is not the controller passes such a request on to it
// (forwardToController) — and clients' admin requests that change
// metadata (CreateTopics, DeleteTopics, CreatePartitions, ElectLeaders,
// AlterConfigs, AlterPartitionReassignments) the same way, as KRaft
// brokers forward them (KIP-590): a client may send them to any broker.

// forwardClientID marks a request one broker forwarded to another.
const forwardClientID = "klab-forwarded"

// forwardToController passes a request on to the active controller, at the
// version it came in, and returns the controller's answer. A request that
// was forwarded already is not passed on again, so that two brokers that
// each take the other for the controller cannot bounce it between them.
// refuse builds the answer when the request cannot reach the controller:
// the request's response with the given top-level error code, which is
// NOT_CONTROLLER (retriable: the sender tries again, or another way).
func (b *Broker) forwardToController(ctx context.Context, r *request, refuse func(code int16) kmsg.Response) (kmsg.Response, error) {
	if r.clientID != nil && *r.clientID == forwardClientID {
		return refuse(kerr.NotController.Code), nil
	}
	fail := func(err error) (kmsg.Response, error) {
		b.log.Warn("forwarding to the controller", "request", r.key.Name(), "err", err)
		return refuse(errorCode(err)), nil
	}
	ctrl, ok := b.ctrl.Image().Brokers[b.ctrl.ActiveID()]
	if !ok {
		return fail(kerr.NotController)
	}
	dialCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := b.dialPeer(dialCtx, ctrl.Addr, forwardClientID)
	cancel()
	if err != nil {
		// Nothing was sent: the client may safely ask again, elsewhere.
		return fail(fmt.Errorf("%w: %v", kerr.NotController, err))
	}
	defer conn.Close()
	// The controller's work (a metadata record committed by the quorum,
	// then waits of its own) can take seconds. Once the request is sent,
	// a failure is REQUEST_TIMED_OUT, as Kafka's forwarding answers: the
	// change may have been made, and the client must look before it
	// repeats it.
	reqCtx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	resp, err := conn.RequestAt(reqCtx, r.body, r.version)
	switch {
	case errors.Is(err, kerr.UnsupportedVersion):
		return fail(fmt.Errorf("%w: %v", kerr.NotController, err))
	case err != nil:
		return fail(fmt.Errorf("%w: forwarded to broker %d, no answer: %v", kerr.RequestTimedOut, ctrl.ID, err))
	}
	return resp, nil
}

// forwardTimeout bounds how long a forwarded request waits for the
// controller's answer.
const forwardTimeout = 30 * time.Second

// askController sends a request to the active controller or, if it cannot
// be reached or answers NOT_CONTROLLER, to each other broker in turn, which
// forwards it. It returns the first other answer, with the error its
// top-level error code (read by codeOf) stands for; or, when every way
// failed, the last failure.
func (b *Broker) askController(ctx context.Context, req kmsg.Request, codeOf func(kmsg.Response) int16) (kmsg.Response, error) {
	im := b.ctrl.Image()
	active := b.ctrl.ActiveID()
	route := []int32{active}
	for _, br := range im.SortedBrokers() {
		if br.ID != active && br.ID != b.cfg.NodeID {
			route = append(route, br.ID)
		}
	}
	var err error
	for _, id := range route {
		peer, ok := im.Brokers[id]
		if !ok {
			continue
		}
		var resp kmsg.Response
		if resp, err = b.requestPeer(ctx, peer.Addr, req); err != nil {
			continue
		}
		if err = kerr.ErrorForCode(codeOf(resp)); errors.Is(err, kerr.NotController) {
			continue
		}
		return resp, err
	}
	if err == nil {
		err = kerr.NotController
	}
	return nil, err
}

// requestPeer sends one request to another broker, on a connection of its
// own, and returns the answer.
func (b *Broker) requestPeer(ctx context.Context, addr string, req kmsg.Request) (kmsg.Response, error) {
	conn, err := b.dialPeer(ctx, addr, "klab-broker-"+strconv.Itoa(int(b.cfg.NodeID)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Request(ctx, req)
}

// dialPeer connects to another broker to send it requests of the APIs
// brokers send each other, besides those clients send. Its ApiVersions
// answer does not list the former (registerBetweenBrokers): the connection
// is told that the peer speaks them at the versions this broker does,
// since every broker of the cluster runs the same code.
func (b *Broker) dialPeer(ctx context.Context, addr, clientID string) (*client.Conn, error) {
	conn, err := client.DialVia(ctx, b.dial, addr, clientID)
	if err != nil {
		return nil, err
	}
	for _, a := range apis {
		if a.betweenBrokers {
			conn.Assume(a.key, a.max)
		}
	}
	return conn, nil
}

// awaitImage waits, a few seconds at most, until this broker's metadata
// satisfies done. A change forwarded to the controller is committed when
// the controller answers, but reaches this broker's image a moment later:
// the forwarding broker waits for it before answering, so that a client's
// next request here (Metadata after CreateTopics, say) sees the change.
func (b *Broker) awaitImage(ctx context.Context, done func(*metadata.Image) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		changed := b.ctrl.Changed()
		if done(b.ctrl.Image()) {
			return b.caughtUp()
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: the change is made, but has not reached broker %d yet", kerr.RequestTimedOut, b.cfg.NodeID)
		}
	}
}
