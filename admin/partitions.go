package admin

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// pendingPartitions tracks a request's partitions across retries, as
// pendingTopics does topics: each partition's last error, and which must
// be sent again because that error is retriable. A request for every
// partition (asked is nil) learns its partitions from the first answer.
type pendingPartitions struct {
	asked []TopicPartition // nil: every partition
	errs  map[TopicPartition]error
}

func newPendingPartitions(asked []TopicPartition) *pendingPartitions {
	return &pendingPartitions{asked: asked, errs: map[TopicPartition]error{}}
}

// open returns the partitions to send: every partition (all is true) until
// an answer for every partition came, then those not answered or whose
// error is retriable.
func (p *pendingPartitions) open() (tps []TopicPartition, all bool) {
	if p.asked == nil && len(p.errs) == 0 {
		return nil, true
	}
	want := p.asked
	if want == nil {
		want = slices.SortedFunc(maps.Keys(p.errs), compareTP)
	}
	for _, tp := range want {
		if err, ok := p.errs[tp]; !ok || retriable(err) {
			tps = append(tps, tp)
		}
	}
	return tps, false
}

// settle records a partition's answer.
func (p *pendingPartitions) settle(tp TopicPartition, err error) { p.errs[tp] = err }

// again is the first retriable error of the answers so far, for the retry
// loop: nil when every partition is settled.
func (p *pendingPartitions) again() error {
	tps, all := p.open()
	if all {
		return nil
	}
	for _, tp := range tps {
		if err := p.errs[tp]; err != nil {
			return err
		}
	}
	if len(tps) > 0 {
		return fmt.Errorf("%w: no answer for %s", kerr.RequestTimedOut, tps[0])
	}
	return nil
}

// result returns each partition's error, and the errors joined (those
// skip says to leave out, such as ELECTION_NOT_NEEDED, are not failures).
// A partition never answered gets err, the reason the retries stopped.
func (p *pendingPartitions) result(err error, skip func(error) bool) (map[TopicPartition]error, error) {
	out := maps.Clone(p.errs)
	for _, tp := range p.asked {
		if _, ok := out[tp]; !ok && err != nil {
			out[tp] = err
		}
	}
	var errs []error
	for _, tp := range slices.SortedFunc(maps.Keys(out), compareTP) {
		if e := out[tp]; e != nil && (skip == nil || !skip(e)) {
			errs = append(errs, fmt.Errorf("%s: %w", tp, e))
		}
	}
	if len(errs) == 0 {
		return out, err // nil, or a failure no partition's answer shows
	}
	return out, errors.Join(errs...)
}

// byTopic groups partitions by topic, each topic's in order.
func byTopic(tps []TopicPartition) map[string][]int32 {
	out := map[string][]int32{}
	for _, tp := range tps {
		out[tp.Topic] = append(out[tp.Topic], tp.Partition)
	}
	for _, ps := range out {
		slices.Sort(ps)
	}
	return out
}
