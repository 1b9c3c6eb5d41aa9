package broker

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/group"
	"klab.dev/klab/broker/offsets"
)

// ListGroups: the groups this broker coordinates. An admin client asks
// every broker and merges the answers, as kafka-consumer-groups --list
// does.
//
// Behavior: every group with members or committed offsets, of the
// __consumer_offsets partitions this broker leads; COORDINATOR_LOAD_IN_PROGRESS,
// with the groups loaded so far, while one of them is still loading. A
// group known only by its offsets has an empty protocol type (klab does
// not write group metadata records; see coordinator.go).
//
// Version notes: v1 adds the throttle time, v3 is flexible, v4 filters by
// state (KIP-518; case-insensitive, as in Kafka).
func init() { register(kmsg.ListGroups, 0, 4, handleListGroups) }

func handleListGroups(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	listings, loading := b.coord.list()
	if loading {
		resp.ErrorCode = kerr.CoordinatorLoadInProgress.Code
	}
	for _, l := range listings {
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, l.State.String()) }) {
			continue
		}
		sg := kmsg.NewListGroupsResponseGroup()
		sg.Group, sg.ProtocolType, sg.GroupState = l.GroupID, l.ProtocolType, l.State.String()
		resp.Groups = append(resp.Groups, sg)
	}
	return resp, nil
}

// list returns the groups of the loaded partitions this broker leads,
// sorted, and whether a partition is still loading.
func (c *coordinator) list() (listings []group.Listing, loading bool) {
	c.mu.Lock()
	led := make([]*offsetsPartition, 0, len(c.led))
	for _, op := range c.led {
		led = append(led, op)
	}
	c.mu.Unlock()
	ledIndex := map[int32]bool{}
	for _, op := range led {
		ledIndex[op.p.index] = op.ready()
	}
	n := c.offsetsPartitions()
	seen := map[string]bool{}
	for _, l := range c.groups.List() {
		// A group made as this broker resigned its partition is not its to
		// list: the new coordinator lists it (expireOffsets lets it go).
		if l.State != group.Dead && n > 0 && ledIndex[offsets.PartitionFor(l.GroupID, n)] {
			listings = append(listings, l)
			seen[l.GroupID] = true
		}
	}
	for _, op := range led {
		if !op.ready() {
			loading = true
			continue
		}
		for _, id := range op.store.Groups() {
			if !seen[id] {
				listings = append(listings, group.Listing{GroupID: id, State: group.Empty})
			}
		}
	}
	sort.Slice(listings, func(i, j int) bool { return listings[i].GroupID < listings[j].GroupID })
	return listings, loading
}
