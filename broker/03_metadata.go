package broker

import (
	"context"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/membership"
	"klab.dev/klab/broker/metadata"
	"klab.dev/klab/broker/offsets"
)

// Metadata: which brokers there are, where they listen, and for each topic
// asked about its partitions with their leader, leader epoch, replicas and
// in-sync replicas. Clients ask it first and again whenever a leader may
// have moved.
//
// Behavior: every broker answers from the metadata log as it has applied
// it, so two brokers may briefly disagree; the leader epoch tells a client
// which answer is newer. Only live brokers are listed; a replica on a dead
// one is in offline_replicas, and a partition with no leader has
// LEADER_NOT_AVAILABLE. A null topic list (an empty one in v0) asks for
// every topic. A topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION,
// unless auto.create.topics.enable is on and the request allows it (v4+),
// when it is created with num.partitions partitions.
//
// A broker that knows a partition's leader is gone (its listener refuses
// connections, or gossip declared it dead) before the controller has
// moved the leadership does not answer with that dead leader: it waits
// for the controller's decision, up to metadataLeaderWait, while a
// majority of the brokers is alive to make it. Before naming a leader it
// dials it, in case the client has just seen it crash and this broker has
// not yet (membership.Recheck). A client asks for metadata
// the moment its connection to the leader breaks, and franz-go, for one,
// then waits metadata.min.age (5 s) before asking again: an answer
// naming the dead leader, or none, costs it those seconds; the new
// leader, a few milliseconds later, costs nothing. Kafka answers with
// what its metadata cache holds; its controller only learns of the death
// after broker.session.timeout.ms (9 s). Likewise, a topic this broker
// does not know, while metadata records are on their way to it, is looked
// for again, up to leadershipWait, before the answer says it does not
// exist: it may have just been created.
//
// Version notes: v1 adds the controller and null for all topics, v2 the
// cluster id, v4 allow_auto_topic_creation, v7 leader epochs, v9 is
// flexible, v10 adds topic ids, v12 lets a topic be asked for by id alone.
func init() { register(kmsg.Metadata, 0, 12, handleMetadata) }

// metadataLeaderWait bounds how long a Metadata answer waits for the
// controller to replace a dead leader: a death it noticed at once takes
// milliseconds, a dead active controller a raft election, about a second.
const metadataLeaderWait = 2 * time.Second

func handleMetadata(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	start := time.Now()
	for {
		// Taken before the answer is made, so that a change between the
		// two still wakes the wait.
		imageChanged, membersChanged := b.ctrl.Changed(), b.members.Changed()
		resp, alive, registered := b.metadataResponse(r)
		if b.members.Recheck(ctx, aliveLeaders(resp, alive)) {
			continue // a leader named is gone after all: answer again
		}
		var deadline time.Time
		switch {
		case deadLeaders(resp, alive, registered):
			deadline = start.Add(metadataLeaderWait)
		case unknownTopics(resp) && b.ctrl.Behind():
			// A topic just created may be in another broker's metadata
			// and only on its way into this one's: a client that asks
			// here right after CreateTopics would be told it does not
			// exist, and franz-go waits 250 ms before asking again. A
			// topic this broker has no record of on the way does not
			// exist: that is answered at once.
			deadline = start.Add(leadershipWait)
		}
		if !time.Now().Before(deadline) {
			return resp, nil
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-imageChanged:
		case <-membersChanged:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return resp, nil
		}
		timer.Stop()
	}
}

// deadLeaders reports whether the answer names a leader that is not
// alive while a majority of the registered brokers is, to elect a
// controller if need be and replace the leader (handleMetadata waits for
// that).
func deadLeaders(resp *kmsg.MetadataResponse, alive map[int32]membership.Member, registered int) bool {
	if 2*len(alive) <= registered {
		return false
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if _, ok := alive[p.Leader]; p.Leader >= 0 && !ok {
				return true
			}
		}
	}
	return false
}

// aliveLeaders are the leaders the answer names that were alive when it
// was made, each once.
func aliveLeaders(resp *kmsg.MetadataResponse, alive map[int32]membership.Member) []int32 {
	var ids []int32
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if _, ok := alive[p.Leader]; ok && !slices.Contains(ids, p.Leader) {
				ids = append(ids, p.Leader)
			}
		}
	}
	return ids
}

// unknownTopics reports whether the answer says a topic asked for does
// not exist.
func unknownTopics(resp *kmsg.MetadataResponse) bool {
	for _, t := range resp.Topics {
		if t.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			return true
		}
	}
	return false
}

// metadataResponse answers a Metadata request from the image as this
// broker has applied it, and returns who it took to be alive and how many
// brokers that image registers.
func (b *Broker) metadataResponse(r *request) (*kmsg.MetadataResponse, map[int32]membership.Member, int) {
	req := r.body.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	im := b.ctrl.Image()
	alive := b.members.Alive()
	resp.Brokers = liveBrokers(im, alive)
	resp.ClusterID = &im.ClusterID
	resp.ControllerID = b.ctrl.ActiveID()

	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range im.SortedTopics() {
			resp.Topics = append(resp.Topics, topicMetadata(t, alive))
		}
		return resp, alive, len(im.Brokers)
	}
	for _, rt := range req.Topics {
		t := lookupTopic(im, rt.Topic, rt.TopicID)
		if t == nil && rt.Topic != nil && b.cfg.AutoCreateTopics && (r.version < 4 || req.AllowAutoTopicCreation) {
			// Another request may have created it meanwhile: that is no error.
			if _, err := b.createTopic(*rt.Topic, -1, -1, nil, nil, false); err != nil && errorCode(err) != kerr.TopicAlreadyExists.Code {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic, mt.ErrorCode = rt.Topic, errorCode(err)
				resp.Topics = append(resp.Topics, mt)
				continue
			}
			t = lookupTopic(b.ctrl.Image(), rt.Topic, rt.TopicID)
		}
		if t == nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic, mt.TopicID, mt.ErrorCode = rt.Topic, rt.TopicID, kerr.UnknownTopicOrPartition.Code
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		resp.Topics = append(resp.Topics, topicMetadata(t, alive))
	}
	return resp, alive, len(im.Brokers)
}

// lookupTopic finds a topic by name, or by id when the name is null.
func lookupTopic(im *metadata.Image, name *string, id [16]byte) *metadata.Topic {
	if name != nil {
		return im.Topic(*name)
	}
	return im.TopicByID(id)
}

// liveBrokers describes the registered brokers that are alive.
func liveBrokers(im *metadata.Image, alive map[int32]membership.Member) []kmsg.MetadataResponseBroker {
	out := []kmsg.MetadataResponseBroker{}
	for _, br := range im.SortedBrokers() {
		if _, ok := alive[br.ID]; !ok {
			continue
		}
		host, port, _ := net.SplitHostPort(br.Addr)
		p, _ := strconv.Atoi(port)
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, host, int32(p)
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		out = append(out, mb)
	}
	return out
}

func topicMetadata(t *metadata.Topic, alive map[int32]membership.Member) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic, mt.TopicID = &name, t.ID
	// Kafka's tools hide internal topics unless asked, and consumers
	// subscribed by pattern skip them.
	mt.IsInternal = name == offsets.Topic
	for i, st := range t.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition = int32(i)
		mp.Leader = st.Leader
		mp.LeaderEpoch = st.LeaderEpoch
		mp.Replicas = slices.Clone(st.Replicas)
		mp.ISR = slices.Clone(st.ISR)
		mp.OfflineReplicas = []int32{}
		for _, id := range st.Replicas {
			if _, ok := alive[id]; !ok {
				mp.OfflineReplicas = append(mp.OfflineReplicas, id)
			}
		}
		if st.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		mt.Partitions = append(mt.Partitions, mp)
	}
	return mt
}
