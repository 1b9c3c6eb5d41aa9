package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: replace a topic's or a broker's dynamic configs with the
// ones given, the older, non-incremental way (kafka-configs before KIP-339,
// kadm's AlterTopicConfigsState): a config the request leaves out goes
// back to its default.
//
// Behavior: as IncrementalAlterConfigs, with every config given SET and
// every other dynamic config of the resource deleted: the same configs,
// the same errors (a null value is INVALID_CONFIG), the same forwarding to
// the active controller.
//
// Version notes: v1 is v0, v2 is flexible.
func init() { register(kmsg.AlterConfigs, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.AlterConfigsRequest)
	edits := replacingEdits(req.Resources)
	if b.ctrl.Active() {
		return b.alterConfigsResponse(req, b.alterConfigs(edits, req.ValidateOnly)), nil
	}
	raw, err := b.forwardToController(ctx, r, func(code int16) kmsg.Response {
		return b.alterConfigsResponse(req, sameError(len(edits), kerr.ErrorForCode(code)))
	})
	resp, ok := raw.(*kmsg.AlterConfigsResponse)
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

// alterConfigsResponse answers each resource with its error.
func (b *Broker) alterConfigsResponse(req *kmsg.AlterConfigsRequest, errs []error) *kmsg.AlterConfigsResponse {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for i, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = b.code(errs[i]), errorMessage(errs[i])
		resp.Resources = append(resp.Resources, sr)
	}
	return resp
}

// replacingEdits checks each resource of the request.
func replacingEdits(resources []kmsg.AlterConfigsRequestResource) []configEdit {
	seen := map[resourceKey]int{}
	for _, rr := range resources {
		seen[resourceKey{rr.ResourceType, rr.ResourceName}]++
	}
	edits := make([]configEdit, len(resources))
	for i, rr := range resources {
		edits[i] = replacingEdit(rr, seen[resourceKey{rr.ResourceType, rr.ResourceName}] > 1)
	}
	return edits
}

// replacingEdit checks one resource's configs and makes the edit that
// replaces its dynamic configs with them.
func replacingEdit(rr kmsg.AlterConfigsRequestResource, duplicate bool) configEdit {
	e := configEdit{name: rr.ResourceName}
	if duplicate {
		e.err = fmt.Errorf("%w: resource %v %q is in the request more than once", kerr.InvalidRequest, rr.ResourceType, rr.ResourceName)
		return e
	}
	if e.resource, e.err = configResource(rr.ResourceType, rr.ResourceName); e.err != nil {
		return e
	}
	want := make(map[string]string, len(rr.Configs))
	for _, c := range rr.Configs {
		if _, twice := want[c.Name]; twice {
			e.err = fmt.Errorf("%w: config %q is in the request more than once", kerr.InvalidRequest, c.Name)
			return e
		}
		d, err := configDef(e.resource, c.Name)
		if err == nil && c.Value == nil {
			err = fmt.Errorf("%w: config %q has no value", kerr.InvalidConfig, c.Name)
		}
		if err == nil {
			err = checkSet(d, *c.Value)
		}
		if e.err = err; err != nil {
			return e
		}
		want[c.Name] = *c.Value
	}
	e.edit = func(map[string]string) (map[string]string, error) { return want, nil }
	return e
}
