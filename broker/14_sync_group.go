package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
)

// SyncGroup: the second phase of a rebalance. The leader sends the
// assignment it computed; every member, the leader included, gets its own
// share in the answer. A follower that syncs before the leader waits for
// it.
//
// Behavior: the coordinator errors of JoinGroup; UNKNOWN_MEMBER_ID,
// ILLEGAL_GENERATION and FENCED_INSTANCE_ID for a member that is not, or no
// longer, of this generation; REBALANCE_IN_PROGRESS when a new rebalance
// began meanwhile (the member joins again); INCONSISTENT_GROUP_PROTOCOL
// when the protocol type or name it names (v5+) is not the group's.
//
// Version notes: v3 adds group.instance.id, v4 is flexible, v5 carries
// the protocol type and name both ways.
func init() { register(kmsg.SyncGroup, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.SyncGroupRequest)
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	if _, err := b.coord.coordinating(req.Group); err != nil {
		resp.ErrorCode = b.code(err)
		return resp, nil
	}
	g, err := b.coord.group(req.Group)
	if err != nil {
		resp.ErrorCode = b.code(err)
		return resp, nil
	}
	b.coord.touch(req.Group)
	sr := group.SyncRequest{
		MemberID:     req.MemberID,
		InstanceID:   deref(req.InstanceID),
		Generation:   req.Generation,
		ProtocolType: deref(req.ProtocolType),
		Protocol:     deref(req.Protocol),
	}
	if len(req.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(req.GroupAssignment))
		for _, a := range req.GroupAssignment {
			sr.Assignments[a.MemberID] = a.MemberAssignment
		}
	}
	res, err := group.Await(ctx, g.Sync(sr))
	if err != nil {
		return nil, err // the broker is stopping
	}
	resp.ErrorCode = b.code(res.Err)
	resp.MemberAssignment = res.Assignment
	if res.Err == nil {
		resp.ProtocolType, resp.Protocol = kmsg.StringPtr(res.ProtocolType), kmsg.StringPtr(res.Protocol)
	}
	return resp, nil
}
