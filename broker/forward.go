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
)

// This file is how requests that only the active controller can answer
// (AlterPartition, AllocateProducerIds) reach it. The sender tries the
// active controller first and then, if it cannot reach it, every other
// broker (askController); a broker that is not the controller passes such a
// request on to it (forwardToController). A broker cut off from the
// controller, but not from every broker, is so still heard.

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
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fail := func(err error) (kmsg.Response, error) {
		b.log.Warn("forwarding to the controller", "request", r.key.Name(), "err", err)
		return refuse(errorCode(err)), nil
	}
	ctrl, ok := b.ctrl.Image().Brokers[b.ctrl.ActiveID()]
	if !ok {
		return fail(kerr.NotController)
	}
	conn, err := client.DialVia(ctx, b.dial, ctrl.Addr, forwardClientID)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", kerr.NotController, err))
	}
	defer conn.Close()
	resp, err := conn.RequestAt(ctx, r.body, r.version)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", kerr.NotController, err))
	}
	return resp, nil
}

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
	conn, err := client.DialVia(ctx, b.dial, addr, "klab-broker-"+strconv.Itoa(int(b.cfg.NodeID)))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.Request(ctx, req)
}
