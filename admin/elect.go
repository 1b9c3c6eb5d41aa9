package admin

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ElectionType is which leader ElectLeaders asks for.
type ElectionType int8

const (
	// Preferred gives each partition back to its preferred leader, the
	// first replica in its list, if that replica is alive and in sync. The
	// controller does it by itself when auto.leader.rebalance.enable is on.
	Preferred ElectionType = 0
	// Unclean gives each partition without a leader any live replica, in
	// sync or not: records the old leader had and that replica lacks are
	// lost. It is the last resort when every in-sync replica is gone.
	Unclean ElectionType = 1
)

// String is the type as kafka-leader-election.sh prints it.
func (t ElectionType) String() string {
	if t == Unclean {
		return "UNCLEAN"
	}
	return "PREFERRED"
}

// ElectLeaders asks the controller to elect leaders for the partitions, or
// for every partition when none is given. Each partition's answer is in
// the map: nil when it got a new leader, ELECTION_NOT_NEEDED when the
// leader asked for already leads, PREFERRED_LEADER_NOT_AVAILABLE when the
// preferred replica is down or out of sync, ELIGIBLE_LEADERS_NOT_AVAILABLE
// when no replica can lead. The error returned joins the failures;
// ELECTION_NOT_NEEDED is not one.
func (c *Client) ElectLeaders(ctx context.Context, typ ElectionType, partitions ...TopicPartition) (map[TopicPartition]error, error) {
	if len(partitions) == 0 {
		partitions = nil // every partition
	}
	pending := newPendingPartitions(partitions)
	err := toController(ctx, c, func() kmsg.Request {
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType = int8(typ)
		req.TimeoutMillis = timeoutMillis(ctx)
		tps, all := pending.open()
		if !all {
			req.Topics = []kmsg.ElectLeadersRequestTopic{}
		}
		for topic, ps := range byTopic(tps) {
			rt := kmsg.NewElectLeadersRequestTopic()
			rt.Topic, rt.Partitions = topic, ps
			req.Topics = append(req.Topics, rt)
		}
		return req
	}, func(resp *kmsg.ElectLeadersResponse) error {
		if err := kafkaError(resp.ErrorCode, nil); err != nil {
			return err // nothing was done: the partitions' codes repeat it
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				pending.settle(TopicPartition{t.Topic, p.Partition}, kafkaError(p.ErrorCode, p.ErrorMessage))
			}
		}
		return pending.again()
	})
	return pending.result(err, func(err error) bool { return errors.Is(err, kerr.ElectionNotNeeded) })
}
