package broker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// This file is what AlterConfigs and IncrementalAlterConfigs share: each
// resource of the request becomes a configEdit, checked on whichever
// broker the request reached; the active controller applies the edits
// (controller.AlterConfigs), and a broker that forwarded the request waits
// for the changes to reach its own image before it answers.

// configEdit is one resource of an alter-configs request: what to change
// in its dynamic configs, or why the request is wrong for it.
type configEdit struct {
	resource metadata.ConfigResource
	name     string
	// edit makes the resource's new dynamic configs from its current ones,
	// which it may modify; it checks the values it sets.
	edit func(configs map[string]string) (map[string]string, error)
	// err is why the resource cannot be altered, whatever its configs.
	err error
}

// resourceKey names a resource of a request, to find one given twice.
type resourceKey struct {
	kind kmsg.ConfigResourceType
	name string
}

// configResource checks a request's resource type and name. A broker is
// named by its id, or "" for the cluster-wide default.
func configResource(kind kmsg.ConfigResourceType, name string) (metadata.ConfigResource, error) {
	switch kind {
	case kmsg.ConfigResourceTypeTopic:
		return metadata.ResourceTopic, nil
	case kmsg.ConfigResourceTypeBroker:
		if name != metadata.ClusterDefault && !isDecimal(name) {
			return "", fmt.Errorf("%w: broker %q: name a broker by its id, or leave the name empty for the cluster-wide default", kerr.InvalidRequest, name)
		}
		return metadata.ResourceBroker, nil
	}
	return "", fmt.Errorf("%w: resource type %v has no configs to alter here", kerr.InvalidRequest, kind)
}

// configDef is the definition of a config a resource may have set
// dynamically, or INVALID_CONFIG naming it.
func configDef(resource metadata.ConfigResource, name string) (topicConfigDef, error) {
	if resource == metadata.ResourceBroker {
		return dynamicBrokerConfig(name)
	}
	d, ok := findTopicConfig(name)
	if !ok {
		return d, fmt.Errorf("%w: unknown topic config %q", kerr.InvalidConfig, name)
	}
	return d, nil
}

// checkSet checks the value a request gives config d: INVALID_CONFIG,
// naming the config, for a bad one. CreateTopics checks values the same way.
func checkSet(d topicConfigDef, value string) error {
	if err := validateConfig(d, value); err != nil {
		return fmt.Errorf("%w: %v", kerr.InvalidConfig, err)
	}
	return nil
}

// editList appends values to, or subtracts them from, a list config, as
// Kafka does: starting from the config's dynamic value, or from Kafka's
// default when it has none. Values already there are not appended twice.
func editList(d topicConfigDef, configs map[string]string, values string, appending bool) string {
	current, ok := configs[d.name]
	if !ok {
		current = d.def
	}
	list := splitList(current)
	for _, v := range splitList(values) {
		switch has := slices.Contains(list, v); {
		case appending && !has:
			list = append(list, v)
		case !appending && has:
			list = slices.DeleteFunc(list, func(x string) bool { return x == v })
		}
	}
	return strings.Join(list, ",")
}

// splitList splits a list config's value at its commas, without blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// alterConfigs applies edits on the active controller, each alone, and
// returns what happened to each.
func (b *Broker) alterConfigs(edits []configEdit, validateOnly bool) []error {
	errs := make([]error, len(edits))
	for i, e := range edits {
		if errs[i] = e.err; e.err == nil {
			errs[i] = b.ctrl.AlterConfigs(e.resource, e.name, e.edit, validateOnly)
		}
	}
	if !validateOnly {
		// The change is in this broker's image; its replicas take it on
		// their next reconcile. Answer after that, so that a client that
		// writes next, through this broker, meets the new values (say a
		// lower min.insync.replicas).
		b.caughtUp()
	}
	return errs
}

// awaitConfigEdit waits, a few seconds at most, until this broker's image
// has an edit the controller made: until making it again would change
// nothing. A topic this image lacks is one it has yet to learn of: the
// controller found it.
func (b *Broker) awaitConfigEdit(ctx context.Context, e configEdit) error {
	if e.err != nil {
		return nil
	}
	made := func(im *metadata.Image) bool {
		current, err := im.DynamicConfigs(e.resource, e.name)
		if err != nil {
			return false
		}
		want, err := e.edit(maps.Clone(current))
		return err != nil || maps.Equal(current, want)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		changed := b.ctrl.Changed()
		if made(b.ctrl.Image()) {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: the change is made, but has not reached broker %d yet", kerr.RequestTimedOut, b.cfg.NodeID)
		}
	}
}

// awaitConfigEdits waits for each edit the controller made (its code is
// 0) to reach this broker's image, and returns, for each, the error that
// replaces the controller's success (the change is made, but not here
// yet), or nil.
func (b *Broker) awaitConfigEdits(ctx context.Context, edits []configEdit, codes []int16) []error {
	errs := make([]error, len(edits))
	for i, e := range edits {
		if i < len(codes) && codes[i] == 0 {
			errs[i] = b.awaitConfigEdit(ctx, e)
		}
	}
	b.caughtUp() // and its replicas have taken it (see alterConfigs)
	return errs
}
