package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// BrokerHeartbeat: in KRaft, each broker heartbeats the active controller;
// klab's brokers learn who is alive by gossip instead, and send it only to
// shut down under control: with WantShutDown, the broker asks the
// controller to move its partitions' leadership to other in-sync replicas
// and to take it out of their ISRs, and ShouldShutDown answers whether it
// has (controller.ControlledShutdown). The broker asks until it has, then
// stops.
//
// Behavior: the broker epoch is the broker's incarnation, the one it
// gossips and registered with; a request from an earlier life is
// STALE_BROKER_EPOCH. A broker that is not the active controller passes
// the request on to it. A heartbeat without WantShutDown changes nothing:
// it answers whether the broker is registered (IsFenced when it is not,
// or not in this incarnation).
//
// Only brokers send it: ApiVersions does not list it to clients
// (registerBetweenBrokers).
//
// Version notes: v1 adds the broker's offline log dirs (KIP-858), unused.
func init() { registerBetweenBrokers(kmsg.BrokerHeartbeat, 0, 1, handleBrokerHeartbeat) }

func handleBrokerHeartbeat(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.BrokerHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	if !b.ctrl.Active() {
		return b.forwardToController(ctx, r, func(code int16) kmsg.Response {
			resp.ErrorCode = code
			return resp
		})
	}
	reg, ok := b.ctrl.Image().Brokers[req.BrokerID]
	resp.IsFenced = !ok || reg.Incarnation != req.BrokerEpoch
	resp.IsCaughtUp = !resp.IsFenced
	if req.WantShutdown {
		done, err := b.ctrl.ControlledShutdown(req.BrokerID, req.BrokerEpoch)
		resp.ErrorCode, resp.ShouldShutdown = b.code(err), done
	}
	return resp, nil
}
