package broker

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// FindCoordinator: which broker coordinates a consumer group. A group
// client asks any broker, then sends its JoinGroup, SyncGroup, Heartbeat,
// OffsetCommit and OffsetFetch requests to the answer.
//
// Behavior: the coordinator of a group is the leader of its partition of
// __consumer_offsets (coordinator.go), which the first FindCoordinator
// creates. COORDINATOR_NOT_AVAILABLE while that partition has no leader
// (the client asks again). Transaction coordinators (key type 1) arrive
// with transactions in lesson 16: TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
// as InitProducerId answers a transactional id, so a transactional client
// fails at once instead of retrying forever; any other key type is
// INVALID_REQUEST.
//
// Version notes: v1 adds the key type and an error message, v3 is
// flexible, v4 asks for many keys at once (KIP-699) and answers each
// alone.
func init() { register(kmsg.FindCoordinator, 0, 4, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	if r.version < 4 {
		co := b.findCoordinator(ctx, req.CoordinatorKey, req.CoordinatorType)
		resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
		return resp, nil
	}
	for _, key := range req.CoordinatorKeys {
		resp.Coordinators = append(resp.Coordinators, b.findCoordinator(ctx, key, req.CoordinatorType))
	}
	return resp, nil
}

// findCoordinator answers for one key.
func (b *Broker) findCoordinator(ctx context.Context, key string, keyType int8) kmsg.FindCoordinatorResponseCoordinator {
	co := kmsg.NewFindCoordinatorResponseCoordinator()
	co.Key, co.NodeID, co.Port = key, -1, -1
	err := func() error {
		switch keyType {
		case 0:
		case 1:
			return fmt.Errorf("%w: transactional id %q: transactions arrive in lesson 16", kerr.TransactionalIDAuthorizationFailed, key)
		default:
			return fmt.Errorf("%w: coordinator key type %d; 0 is a group", kerr.InvalidRequest, keyType)
		}
		if key == "" {
			return fmt.Errorf("%w: an empty group id", kerr.InvalidGroupID)
		}
		leader, err := b.coord.findCoordinator(ctx, key)
		if err != nil {
			return err
		}
		host, port, err := net.SplitHostPort(leader.Addr)
		if err != nil {
			return err
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return err
		}
		co.NodeID, co.Host, co.Port = leader.ID, host, int32(p)
		return nil
	}()
	co.ErrorCode, co.ErrorMessage = b.code(err), errorMessage(err)
	return co
}
