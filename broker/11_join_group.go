package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
)

// JoinGroup: a consumer asks to be in a group, with the assignors it
// supports (the protocols, each with its subscription as metadata). The
// first phase of a rebalance (package group's doc draws it): the answer
// waits until every member has rejoined, or the rebalance timeout passed,
// and tells each member the new generation, the chosen assignor and the
// leader; the leader's answer also carries every member's subscription,
// from which it computes the assignment it sends in SyncGroup.
//
// Behavior: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS or
// COORDINATOR_NOT_AVAILABLE when this broker cannot answer for the group
// (coordinator.go); INVALID_SESSION_TIMEOUT outside
// group.min/max.session.timeout.ms; INCONSISTENT_GROUP_PROTOCOL when the
// member shares no assignor with the group; MEMBER_ID_REQUIRED (v4+) on a
// first join, with the member id to join again with; GROUP_MAX_SIZE_REACHED
// over group.max.size; FENCED_INSTANCE_ID and UNKNOWN_MEMBER_ID as the
// state machine decides.
//
// Version notes: v1 adds the rebalance timeout (v0 uses the session
// timeout for both), v4 requires a known member id (KIP-394), v5 adds
// group.instance.id (KIP-345), v6 is flexible, v7 returns the protocol
// type, v8 a reason for the join (logged), v9 may tell a static leader to
// skip the assignment (KIP-814).
func init() { register(kmsg.JoinGroup, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.JoinGroupRequest)
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = -1
	if _, err := b.coord.coordinating(req.Group); err != nil {
		resp.ErrorCode, resp.MemberID = b.code(err), req.MemberID
		return resp, nil
	}
	jr := group.JoinRequest{
		MemberID:               req.MemberID,
		InstanceID:             deref(req.InstanceID),
		ClientHost:             r.clientHost,
		ProtocolType:           req.ProtocolType,
		SessionTimeout:         time.Duration(req.SessionTimeoutMillis) * time.Millisecond,
		RebalanceTimeout:       time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond,
		ClientID:               deref(r.clientID),
		RequireKnownMemberID:   r.version >= 4,
		SupportsSkipAssignment: r.version >= 9,
	}
	if r.version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	if jr.SessionTimeout < b.cfg.Groups.MinSessionTimeout || jr.SessionTimeout > b.cfg.Groups.MaxSessionTimeout {
		// Refused before the group is looked up, so that a bad join does
		// not leave an empty group behind (the state machine checks again).
		resp.ErrorCode, resp.MemberID = kerr.InvalidSessionTimeout.Code, req.MemberID
		return resp, nil
	}
	b.coord.touch(req.Group)
	for _, p := range req.Protocols {
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: p.Metadata})
	}
	res, err := group.Await(ctx, b.coord.groups.Group(req.Group).Join(jr))
	if err != nil {
		return nil, err // the broker is stopping
	}
	resp.ErrorCode = b.code(res.Err)
	resp.Generation, resp.MemberID, resp.LeaderID = res.Generation, res.MemberID, res.Leader
	resp.SkipAssignment = res.SkipAssignment
	if res.Err == nil {
		resp.ProtocolType, resp.Protocol = kmsg.StringPtr(res.ProtocolType), kmsg.StringPtr(res.Protocol)
	}
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID, rm.ProtocolMetadata = m.MemberID, m.Metadata
		if m.InstanceID != "" {
			rm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

// deref is a nullable string's value, "" for null.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
