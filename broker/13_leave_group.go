package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: members leave a group, as a consumer does when it closes,
// so that the others take its partitions at once rather than after its
// session times out.
//
// Behavior: the coordinator errors of JoinGroup, for the whole request;
// each member leaves alone (v3+): UNKNOWN_MEMBER_ID for one the group does
// not have, FENCED_INSTANCE_ID for a static member named with another
// incarnation's member id.
//
// Version notes: v3 names many members, each by member id or
// group.instance.id (KIP-345); v4 is flexible; v5 adds a reason (logged).
func init() { register(kmsg.LeaveGroup, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if _, err := b.coord.coordinating(req.Group); err != nil {
		resp.ErrorCode = b.code(err)
		return resp, nil
	}
	// A group this coordinator does not know has none of the members:
	// UNKNOWN_MEMBER_ID, for the request before v3, for each member since.
	g, err := b.coord.group(req.Group)
	leave := func(memberID, instanceID string) error {
		if err != nil {
			return err
		}
		return g.Leave(memberID, instanceID)
	}
	if r.version < 3 {
		resp.ErrorCode = b.code(leave(req.MemberID, ""))
		return resp, nil
	}
	for _, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		rm.ErrorCode = b.code(leave(m.MemberID, deref(m.InstanceID)))
		if m.Reason != nil {
			b.log.Info("member left its group", "group", req.Group, "member", m.MemberID, "reason", *m.Reason)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
