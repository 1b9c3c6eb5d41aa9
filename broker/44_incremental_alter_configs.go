package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// IncrementalAlterConfigs: change topic and broker configs at runtime, one
// config at a time (KIP-339), as kafka-configs --alter and the admin
// clients do.
//
// Behavior: each config of a resource is SET, DELETEd (back to the
// broker's default, then Kafka's), or, for list configs (cleanup.policy,
// *.replication.throttled.replicas), has values APPENDed or SUBTRACTed,
// from its dynamic value or else Kafka's default. A topic takes the topic
// configs klab implements; a broker, by id or "" for the cluster-wide
// default, takes the dynamic broker configs (dynamic_config.go), and a
// static one is refused: it changes with a restart. Each resource succeeds
// or fails alone, all its configs or none: UNKNOWN_TOPIC_OR_PARTITION,
// INVALID_CONFIG naming the config (unknown, a bad value, APPEND to a
// config that is not a list), INVALID_REQUEST (a resource or a config
// given twice, a resource type without configs). validate_only checks
// without changing anything.
//
// The active controller makes the change, in the metadata log; any other
// broker passes the request on to it (KIP-590), and answers once its own
// metadata has the change, so that a DescribeConfigs to it next sees it.
// Replicas read min.insync.replicas and unclean.leader.election.enable
// from the metadata each time; each broker hands the configs of the log
// itself (retention, segments, cleanup.policy, max.message.bytes) to its
// open replicas' logs as soon as its metadata has the change
// (log.SetConfig).
//
// Version notes: v1 is flexible.
func init() { register(kmsg.IncrementalAlterConfigs, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.IncrementalAlterConfigsRequest)
	edits := incrementalEdits(req.Resources)
	if b.ctrl.Active() {
		return b.incrementalAlterConfigsResponse(req, b.alterConfigs(edits, req.ValidateOnly)), nil
	}
	raw, err := b.forwardToController(ctx, r, func(code int16) kmsg.Response {
		return b.incrementalAlterConfigsResponse(req, sameError(len(edits), kerr.ErrorForCode(code)))
	})
	resp, ok := raw.(*kmsg.IncrementalAlterConfigsResponse)
	if err != nil || !ok || req.ValidateOnly || len(resp.Resources) != len(edits) {
		return raw, err
	}
	codes := make([]int16, len(resp.Resources))
	for i, sr := range resp.Resources {
		codes[i] = sr.ErrorCode
	}
	for i, err := range b.awaitConfigEdits(ctx, edits, codes) {
		if err != nil {
			resp.Resources[i].ErrorCode, resp.Resources[i].ErrorMessage = b.code(err), errorMessage(err)
		}
	}
	return resp, nil
}

// incrementalAlterConfigsResponse answers each resource with its error.
func (b *Broker) incrementalAlterConfigsResponse(req *kmsg.IncrementalAlterConfigsRequest, errs []error) *kmsg.IncrementalAlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for i, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = b.code(errs[i]), errorMessage(errs[i])
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// sameError is n times err.
func sameError(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// incrementalEdits checks each resource of the request.
func incrementalEdits(resources []kmsg.IncrementalAlterConfigsRequestResource) []configEdit {
	seen := map[resourceKey]int{}
	for _, rr := range resources {
		seen[resourceKey{rr.ResourceType, rr.ResourceName}]++
	}
	edits := make([]configEdit, len(resources))
	for i, rr := range resources {
		edits[i] = incrementalEdit(rr, seen[resourceKey{rr.ResourceType, rr.ResourceName}] > 1)
	}
	return edits
}

// incrementalEdit checks one resource's operations and makes its edit.
func incrementalEdit(rr kmsg.IncrementalAlterConfigsRequestResource, duplicate bool) configEdit {
	e := configEdit{name: rr.ResourceName}
	if duplicate {
		e.err = fmt.Errorf("%w: resource %v %q is in the request more than once", kerr.InvalidRequest, rr.ResourceType, rr.ResourceName)
		return e
	}
	if e.resource, e.err = configResource(rr.ResourceType, rr.ResourceName); e.err != nil {
		return e
	}
	defs := map[string]topicConfigDef{}
	for _, c := range rr.Configs {
		if _, twice := defs[c.Name]; twice {
			e.err = fmt.Errorf("%w: config %q is in the request more than once", kerr.InvalidRequest, c.Name)
			return e
		}
		if defs[c.Name], e.err = checkIncrementalOp(e.resource, c); e.err != nil {
			return e
		}
	}
	e.edit = func(configs map[string]string) (map[string]string, error) {
		if configs == nil {
			configs = map[string]string{}
		}
		for _, c := range rr.Configs {
			switch d := defs[c.Name]; c.Op {
			case kmsg.IncrementalAlterConfigOpSet:
				configs[c.Name] = *c.Value
			case kmsg.IncrementalAlterConfigOpDelete:
				delete(configs, c.Name)
			default: // APPEND or SUBTRACT, checked
				configs[c.Name] = editList(d, configs, *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
			}
		}
		for _, c := range rr.Configs {
			if c.Op != kmsg.IncrementalAlterConfigOpDelete {
				if err := checkSet(defs[c.Name], configs[c.Name]); err != nil {
					return nil, err
				}
			}
		}
		return configs, nil
	}
	return e
}

// checkIncrementalOp checks one config's operation, before its value can
// be: the config's name, the operation, and that it has a value if it
// needs one. It returns the config's definition.
func checkIncrementalOp(resource metadata.ConfigResource, c kmsg.IncrementalAlterConfigsRequestResourceConfig) (topicConfigDef, error) {
	d, err := configDef(resource, c.Name)
	if err != nil {
		return d, err
	}
	switch c.Op {
	case kmsg.IncrementalAlterConfigOpDelete:
		return d, nil
	case kmsg.IncrementalAlterConfigOpSet, kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
	default:
		return d, fmt.Errorf("%w: config %q: unknown operation %d", kerr.InvalidRequest, c.Name, c.Op)
	}
	if c.Value == nil {
		return d, fmt.Errorf("%w: config %q: %v needs a value", kerr.InvalidConfig, c.Name, c.Op)
	}
	if c.Op != kmsg.IncrementalAlterConfigOpSet && d.kind != kmsg.ConfigTypeList {
		return d, fmt.Errorf("%w: config %q is not a list: %v applies to lists only", kerr.InvalidConfig, c.Name, c.Op)
	}
	return d, nil
}
