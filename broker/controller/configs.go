package controller

import (
	"maps"
	"slices"

	"klab.dev/klab/broker/metadata"
)

// AlterConfigs changes the dynamic configs of one topic or broker (Kafka's
// IncrementalAlterConfigs and AlterConfigs). edit gets the resource's
// dynamic configs as they are (a map it may modify) and returns what they
// should be, or why not: the caller knows which names and values are
// valid, the controller only records the difference, as one ConfigChange.
// validateOnly calls edit and records nothing.
//
// Changes are made one at a time, and only once this broker has applied
// its predecessors' records (see AllocateProducerIDs): an APPEND computed
// from configs another change has since replaced would undo that change.
func (c *Controller) AlterConfigs(resource metadata.ConfigResource, name string, edit func(configs map[string]string) (map[string]string, error), validateOnly bool) error {
	c.configsMu.Lock()
	defer c.configsMu.Unlock()
	if !c.caughtUp() {
		return ErrNotController
	}
	current, err := c.fsm.Image().DynamicConfigs(resource, name)
	if err != nil {
		return err
	}
	want, err := edit(maps.Clone(current))
	if err != nil || validateOnly {
		return err
	}
	change := configDiff(current, want)
	if len(change.Set) == 0 && len(change.Delete) == 0 {
		return nil // nothing to record
	}
	change.Resource, change.Name = resource, name
	return c.propose(metadata.Record{AlterConfigs: &change})
}

// configDiff is the change that turns configs from into to.
func configDiff(from, to map[string]string) metadata.ConfigChange {
	var change metadata.ConfigChange
	for k, v := range to {
		if old, ok := from[k]; !ok || old != v {
			if change.Set == nil {
				change.Set = map[string]string{}
			}
			change.Set[k] = v
		}
	}
	for k := range from {
		if _, ok := to[k]; !ok {
			change.Delete = append(change.Delete, k)
		}
	}
	slices.Sort(change.Delete) // the same record for the same change
	return change
}
