package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/offsets"
)

// DeleteGroups: delete groups and their committed offsets, as
// kafka-consumer-groups --delete does.
//
// Behavior: each group alone: the coordinator errors of JoinGroup;
// NON_EMPTY_GROUP while it has members; GROUP_ID_NOT_FOUND when it has
// neither members nor offsets. The offsets are deleted with tombstones in
// __consumer_offsets, written as commits are (acks=all).
//
// Version notes: v1 adds nothing but the throttle semantics, v2 is
// flexible.
func init() { register(kmsg.DeleteGroups, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		sg := kmsg.NewDeleteGroupsResponseGroup()
		sg.Group = id
		err := b.deleteGroup(ctx, id)
		sg.ErrorCode, sg.ErrorMessage = b.code(err), errorMessage(err)
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

func (b *Broker) deleteGroup(ctx context.Context, id string) error {
	op, err := b.coord.coordinating(id)
	if err != nil {
		return err
	}
	_, live := b.coord.groups.Lookup(id)
	if err := b.coord.groups.Delete(id); err != nil {
		return fmt.Errorf("%w: group %q has members", err, id)
	}
	if !live && !op.store.Has(id) {
		return fmt.Errorf("%w: %q", kerr.GroupIDNotFound, id)
	}
	_, err = b.coord.deleteOffsets(ctx, op, id, true, offsets.Sorted)
	return err
}
