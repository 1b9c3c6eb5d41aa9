package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/metadata"
)

// DeleteTopics: delete topics and all their data.
//
// Behavior: each topic succeeds or fails alone; a topic that does not exist
// is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id). The
// partitions' folders are removed at once; Kafka renames them and deletes
// them in the background.
//
// On a broker that is not the active controller, the request is passed on
// to it (KIP-590), and answered once this broker's metadata lost the topics.
//
// Version notes: v4 is flexible, v5 adds error messages, v6 lets a topic be
// named by its id.
func init() { register(kmsg.DeleteTopics, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	if !b.ctrl.Active() {
		return b.forwardDeleteTopics(ctx, r)
	}
	targets := req.Topics
	if r.version < 6 {
		targets = nil
		for _, name := range req.TopicNames {
			name := name
			targets = append(targets, kmsg.DeleteTopicsRequestTopic{Topic: &name})
		}
	}
	for _, rt := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var err error
		if t := lookupTopic(b.ctrl.Image(), rt.Topic, rt.TopicID); t == nil && rt.Topic == nil {
			err = fmt.Errorf("%w: no topic with id %x", kerr.UnknownTopicID, rt.TopicID)
		} else if t == nil {
			err = fmt.Errorf("%w: no topic %q", kerr.UnknownTopicOrPartition, *rt.Topic)
		} else {
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			if err = b.ctrl.DeleteTopic(t.Name); err == nil {
				err = b.caughtUp()
			}
		}
		st.ErrorCode, st.ErrorMessage = b.code(err), errorMessage(err)
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// forwardDeleteTopics passes DeleteTopics on to the active controller and,
// before answering, waits for the topics it deleted to leave this broker.
func (b *Broker) forwardDeleteTopics(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteTopicsRequest)
	raw, err := b.forwardToController(ctx, r, func(code int16) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, name := range req.TopicNames {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.ErrorCode = &name, code
			resp.Topics = append(resp.Topics, st)
		}
		for _, rt := range req.Topics {
			st := kmsg.NewDeleteTopicsResponseTopic()
			st.Topic, st.TopicID, st.ErrorCode = rt.Topic, rt.TopicID, code
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	})
	resp, ok := raw.(*kmsg.DeleteTopicsResponse)
	if err != nil || !ok {
		return raw, err
	}
	for i, st := range resp.Topics {
		if st.ErrorCode != 0 || st.Topic == nil {
			continue
		}
		// By id when the answer has one (v6): a topic created again under
		// the name at once is not the one deleted.
		gone := func(im *metadata.Image) bool {
			t := im.Topic(*st.Topic)
			return t == nil || st.TopicID != [16]byte{} && t.ID != st.TopicID
		}
		if err := b.awaitImage(ctx, gone); err != nil {
			resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage = b.code(err), errorMessage(err)
		}
	}
	return resp, nil
}
