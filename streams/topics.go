package streams

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/admin"
)

// MissingSourceTopicError says that topics the topology reads do not
// exist, as Kafka's MissingSourceTopicException: an application does not
// wait for its inputs to appear, it stops and says which are missing.
type MissingSourceTopicError struct {
	Topics []string
}

func (e *MissingSourceTopicError) Error() string {
	return fmt.Sprintf("streams: source topics %s do not exist: create them before starting the application", strings.Join(e.Topics, ", "))
}

// sourceTopicWait is how long Start looks for source topics before it
// calls them missing: enough for a topic created just before to reach
// every broker's metadata, short enough to be an answer and not a hang.
const sourceTopicWait = 3 * time.Second

// internalTopicWait bounds the wait for created internal topics to have
// leaders.
const internalTopicWait = 30 * time.Second

// internalTopic is a topic the application owns and creates.
type internalTopic struct {
	name       string
	partitions int32
	configs    map[string]string
}

// prepareTopics checks the source topics, creates the internal topics
// that are missing (changelogs, repartition topics), and waits until they
// are in the metadata. It returns the partition count of every source
// topic, internal ones included.
func prepareTopics(ctx context.Context, adm *admin.Client, topo *Topology, cfg Config) (map[string]int32, error) {
	var external []string
	for _, topic := range topo.SourceTopics(cfg.ApplicationID) {
		if !isRepartitionTopic(topo, cfg.ApplicationID, topic) {
			external = append(external, topic)
		}
	}
	counts, err := sourceCounts(ctx, adm, external)
	if err != nil {
		return nil, err
	}
	wanted := internalTopics(topo, cfg.ApplicationID, counts)
	if len(wanted) == 0 {
		return counts, nil
	}
	var names []string
	for _, t := range wanted {
		names = append(names, t.name)
	}
	have, _ := adm.DescribeTopics(ctx, names...) // missing topics have errors: created next
	exists := map[string]int32{}
	for _, d := range have {
		if d.Err == nil {
			exists[d.Name] = int32(len(d.Partitions))
		}
	}
	var create []admin.NewTopic
	for _, t := range wanted {
		n, ok := exists[t.name]
		switch {
		case !ok:
			create = append(create, admin.NewTopic{Name: t.name, Partitions: t.partitions, ReplicationFactor: cfg.ReplicationFactor, Configs: t.configs})
			cfg.Logger("streams %s: creating internal topic %s with %d partitions", cfg.ApplicationID, t.name, t.partitions)
		case n != t.partitions:
			// As Kafka does: a changelog of another width would put a
			// task's state in another task's partition.
			return nil, errorf("internal topic %s has %d partitions, and the topology needs %d: delete it (and reset the application) to change the inputs' partition counts", t.name, n, t.partitions)
		}
	}
	if len(create) > 0 {
		results, err := adm.CreateTopics(ctx, create...)
		for _, r := range results {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				return nil, errorf("creating internal topic %s: %w", r.Name, r.Err)
			}
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return nil, errorf("creating internal topics: %w", err)
		}
	}
	if err := waitForTopics(ctx, adm, names); err != nil {
		return nil, err
	}
	for _, t := range wanted {
		if isRepartitionTopic(topo, cfg.ApplicationID, t.name) {
			counts[t.name] = t.partitions
		}
	}
	return counts, nil
}

// sourceCounts returns the partition count of each topic, waiting up to
// sourceTopicWait for missing ones before it gives up with a
// MissingSourceTopicError. A cluster that does not answer at all is an
// error of its own, the connection's, within the same wait: a source topic
// is only missing if a broker said so.
func sourceCounts(ctx context.Context, adm *admin.Client, topics []string) (map[string]int32, error) {
	deadline := time.Now().Add(sourceTopicWait)
	answered := false // some broker answered, if only that the topics are missing
	for {
		counts := map[string]int32{}
		var missing []string
		// Each ask ends by the deadline: the admin client would otherwise
		// retry a refused connection for a minute.
		dctx, cancel := context.WithDeadline(ctx, deadline)
		descs, err := adm.DescribeTopics(dctx, topics...)
		cancel()
		if err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if descs != nil {
			answered = true
		}
		if !answered && !time.Now().Before(deadline) {
			// Not one answer: no broker reached.
			return nil, errorf("cannot reach the cluster: %w", err)
		}
		for _, d := range descs {
			if d.Err == nil && len(d.Partitions) > 0 {
				counts[d.Name] = int32(len(d.Partitions))
			}
		}
		for _, t := range topics {
			if _, ok := counts[t]; !ok {
				missing = append(missing, t)
			}
		}
		if len(missing) == 0 {
			return counts, nil
		}
		if time.Now().After(deadline) {
			slices.Sort(missing)
			return nil, &MissingSourceTopicError{Topics: missing}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// repartitionConfigs are the configs Kafka gives a repartition topic: its
// records are deleted once the application has committed them (the
// purger's DeleteRecords), never by age, so none is lost to retention
// while the application is down; small segments let the purge free disk
// space soon.
var repartitionConfigs = map[string]string{
	"cleanup.policy": "delete",
	"retention.ms":   "-1", // forever
	"segment.bytes":  "52428800",
}

// changelogConfigs are the configs of a changelog: compacted, so it keeps
// the latest value of each key, what a restore needs.
var changelogConfigs = map[string]string{"cleanup.policy": "compact"}

// internalTopics lists the topics the application creates, given the
// partition counts of its external source topics. A repartition topic gets
// as many partitions as the widest input of the sub-topology that writes
// it (that sub-topology's task count), unless a join reads it: then it
// must be co-partitioned with the join's other inputs, and gets as many
// partitions as the external topics of the join (or, if the join reads
// only repartition topics, as the widest of them), as Kafka's
// CopartitionedTopicsEnforcer does. The counts are worked out in the
// sub-topologies' order and again until nothing changes, since a
// repartition topic may feed a sub-topology that writes another. A
// changelog gets one partition per task of the sub-topology that owns its
// store.
func internalTopics(topo *Topology, appID string, counts map[string]int32) []internalTopic {
	counts = maps.Clone(counts)
	subs := topo.subtopologies()
	width := func(s *subtopology) int32 {
		var most int32
		for _, t := range s.topics {
			most = max(most, counts[topo.resolve(appID, t)])
		}
		return most
	}
	var repartition []string
	for changed := true; changed; {
		changed = false
		// What each repartition topic's writer asks for.
		wanted := map[string]int32{}
		for _, s := range subs {
			for _, n := range s.nodes {
				if n.kind != sinkNode || !topo.internal[n.sink.Topic] {
					continue
				}
				name := topo.resolve(appID, n.sink.Topic)
				if !slices.Contains(repartition, name) {
					repartition = append(repartition, name)
				}
				wanted[name] = max(wanted[name], width(s))
			}
		}
		// What a join that reads it asks for, which comes first.
		for _, group := range topo.copartitioned {
			var external, widest int32
			var internal []string
			for _, t := range group {
				name := topo.resolve(appID, t)
				if topo.internal[t] {
					internal = append(internal, name)
					widest = max(widest, wanted[name])
				} else {
					external = max(external, counts[name])
				}
			}
			if external == 0 {
				external = widest
			}
			for _, name := range internal {
				wanted[name] = external
			}
		}
		for _, name := range repartition {
			if counts[name] != wanted[name] {
				counts[name], changed = wanted[name], true
			}
		}
	}
	var out []internalTopic
	for _, name := range repartition {
		out = append(out, internalTopic{name: name, partitions: counts[name], configs: maps.Clone(repartitionConfigs)})
	}
	for _, s := range subs {
		for _, store := range s.stores {
			if topo.store(store).LoggingDisabled {
				continue
			}
			out = append(out, internalTopic{name: ChangelogTopic(appID, store), partitions: width(s), configs: maps.Clone(changelogConfigs)})
		}
	}
	return out
}

// waitForTopics waits until every topic is in the metadata with a leader
// for each partition.
func waitForTopics(ctx context.Context, adm *admin.Client, names []string) error {
	ctx, cancel := context.WithTimeout(ctx, internalTopicWait)
	defer cancel()
	for {
		descs, _ := adm.DescribeTopics(ctx, names...)
		ready := 0
		for _, d := range descs {
			ok := d.Err == nil && len(d.Partitions) > 0
			for _, p := range d.Partitions {
				ok = ok && p.Err == nil && p.Leader >= 0
			}
			if ok {
				ready++
			}
		}
		if ready == len(names) {
			return nil
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return errorf("waiting for internal topics %s: %w", strings.Join(names, ", "), err)
		}
	}
}

// isRepartitionTopic reports whether topic (resolved for appID) is one of
// the application's repartition topics.
func isRepartitionTopic(topo *Topology, appID, topic string) bool {
	for name := range topo.internal {
		if topo.resolve(appID, name) == topic {
			return true
		}
	}
	return false
}

// sleepCtx waits d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
