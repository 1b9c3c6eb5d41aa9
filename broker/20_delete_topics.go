package broker

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics: delete topics and all their data.
//
// Behavior: each topic succeeds or fails alone; a topic that does not exist
// is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when asked by id). The
// partitions' folders are removed at once; Kafka renames them and deletes
// them in the background.
//
// Version notes: v4 is flexible, v5 adds error messages, v6 lets a topic be
// named by its id.
func init() { register(kmsg.DeleteTopics, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, _ context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
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
