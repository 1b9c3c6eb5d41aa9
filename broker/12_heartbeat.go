package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: a member says it is alive, every heartbeat.interval.ms, from
// its client's background thread (KIP-62). A member whose heartbeats stop
// for session.timeout.ms is removed, and the others rebalance.
//
// Behavior: the coordinator errors of JoinGroup; REBALANCE_IN_PROGRESS
// while the group prepares a rebalance (how a member learns to rejoin);
// UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID as in
// SyncGroup.
//
// Version notes: v1 adds the throttle time, v3 group.instance.id, v4 is
// flexible.
func init() { register(kmsg.Heartbeat, 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	err := func() error {
		if _, err := b.coord.coordinating(req.Group); err != nil {
			return err
		}
		g, err := b.coord.group(req.Group)
		if err != nil {
			return err
		}
		b.coord.touch(req.Group)
		return g.Heartbeat(req.MemberID, deref(req.InstanceID), req.Generation)
	}()
	resp.ErrorCode = b.code(err)
	return resp, nil
}
