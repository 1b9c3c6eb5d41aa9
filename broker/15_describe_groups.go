package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
)

// DescribeGroups: groups' states, assignors and members, as
// kafka-consumer-groups --describe --members shows them.
//
// Behavior: the coordinator errors of JoinGroup, each group alone. A group
// with committed offsets but no members here is Empty; a group the
// coordinator knows nothing of is Dead, with no error, as in Kafka. The
// members' subscriptions and assignments are shown only when the group is
// Stable (package group's Describe says why).
//
// Version notes: v1 adds the throttle time, v3 the authorized operations
// (klab has no ACLs: the field says "not asked"), v4 group.instance.id,
// v5 is flexible.
func init() { register(kmsg.DescribeGroups, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		sg := kmsg.NewDescribeGroupsResponseGroup()
		sg.Group = id
		op, err := b.coord.coordinating(id)
		if err != nil {
			sg.ErrorCode = b.code(err) // and no state, as Kafka answers
			resp.Groups = append(resp.Groups, sg)
			continue
		}
		g, ok := b.coord.groups.Lookup(id)
		switch {
		case ok:
			d := g.Describe()
			sg.State, sg.ProtocolType, sg.Protocol = d.State.String(), d.ProtocolType, d.Protocol
			for _, m := range d.Members {
				sm := kmsg.NewDescribeGroupsResponseGroupMember()
				sm.MemberID, sm.ClientID, sm.ClientHost = m.MemberID, m.ClientID, m.ClientHost
				sm.ProtocolMetadata, sm.MemberAssignment = m.Metadata, m.Assignment
				if m.InstanceID != "" {
					sm.InstanceID = kmsg.StringPtr(m.InstanceID)
				}
				sg.Members = append(sg.Members, sm)
			}
		case op.store.Has(id):
			sg.State = group.Empty.String()
		default:
			sg.State = group.Dead.String()
		}
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}
