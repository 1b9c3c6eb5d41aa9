package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
)

// Fetch: a consumer, or a follower replicating, asks for records from an
// offset in each of several partitions.
//
// Behavior: whole batches are returned, starting with the one holding the
// fetch offset, up to partition_max_bytes per partition and max_bytes in
// all, except that the first partition with data always returns at least
// one batch (KIP-74). If fewer than min_bytes are ready, the broker waits
// for more, up to max_wait_ms (fetch.min.bytes and fetch.max.wait.ms on the
// consumer): this long poll is what keeps an idle consumer, and an idle
// follower, from spinning. An offset outside the log is
// OFFSET_OUT_OF_RANGE for that partition; the consumer then applies its
// auto.offset.reset.
//
// A follower (replica_id >= 0) fetches from the leader up to its log end;
// its fetch offset tells the leader how far it has come. A consumer
// (replica_id -1) reads only below the high watermark. It may read from a
// follower (KIP-392, v11+); a leader that knows a replica in the
// consumer's rack answers with that preferred read replica instead of
// records. A current leader epoch older than the replica's is
// FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH (KIP-320).
//
// Version notes: v4 adds the isolation level and last stable offset, v5 the
// log start offset, v7 fetch sessions (KIP-227, fetch_session.go), v9 the
// current leader epoch (KIP-320), v11 the rack and the preferred read replica (KIP-392), v12 is
// flexible, v13 names topics by id (KIP-516; an unknown id is
// UNKNOWN_TOPIC_ID), v14 only adds an error of tiered storage, v15 moves
// the replica id into replica_state (KIP-903), v16 gives the new leader's
// id, epoch and address with NOT_LEADER_OR_FOLLOWER and
// FENCED_LEADER_EPOCH (KIP-951, current_leader.go).
func init() { register(kmsg.Fetch, 4, 16, handleFetch) }

func handleFetch(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.FetchRequest)
	if r.version >= 15 {
		req.ReplicaID = req.ReplicaState.ID
	}
	byID := r.version >= 13
	if byID {
		b.topicNamesByID(req)
	}
	var resp *kmsg.FetchResponse
	var records fetchedRecords
	switch {
	case req.SessionEpoch < 0: // a full fetch, without a session
		if req.SessionID != 0 {
			b.sessions.close(req.SessionID)
		}
		resp, records = b.fetchWait(ctx, req, r.version)
	case req.SessionEpoch == 0: // a full fetch that opens a session
		resp, records = b.fetchWait(ctx, req, r.version)
		if s := b.sessions.open(req.SessionID, req, resp, records, byID); s != nil {
			resp.SessionID = s.id
		}
	default: // incremental: the session's partitions, answered with news only
		s, err := b.sessions.take(req.SessionID, req.SessionEpoch, byID)
		if err != nil {
			resp = req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = b.code(err)
			return resp, nil
		}
		s.mu.Lock() // a client sends one request per session at a time; a hostile one must not race it
		if !s.update(req, byID) {
			s.mu.Unlock()
			b.sessions.close(s.id)
			resp = req.ResponseKind().(*kmsg.FetchResponse)
			resp.ErrorCode = kerr.FetchSessionIDNotFound.Code // too big: the fetcher starts over, with full fetches
			return resp, nil
		}
		full := s.full(req, byID)
		if byID {
			b.topicNamesByID(full)
		}
		resp, records = b.fetchWait(ctx, full, r.version)
		s.news(resp, records, byID, true)
		s.mu.Unlock()
		resp.SessionID = s.id
	}
	b.metrics.fetched(req.ReplicaID, resp, records)
	r.records = records // for encodeFetch, and the writer to send
	return resp, nil
}

// topicNamesByID fills in the name of each topic a Fetch v13+ asks for by
// id; a topic this broker does not know by that id keeps an empty name,
// and fetchOnce answers its partitions UNKNOWN_TOPIC_ID.
func (b *Broker) topicNamesByID(req *kmsg.FetchRequest) {
	im := b.ctrl.Image()
	for i := range req.Topics {
		req.Topics[i].Topic = ""
		if t := im.TopicByID(req.Topics[i].TopicID); t != nil {
			req.Topics[i].Topic = t.Name
		}
	}
}

// fetchWait answers a Fetch once it has min_bytes of records, or at
// max_wait_ms, or at once if a partition cannot wait (fetchOnce).
func (b *Broker) fetchWait(ctx context.Context, req *kmsg.FetchRequest, version int16) (*kmsg.FetchResponse, fetchedRecords) {
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		// Take the channel before reading, so that an append between the
		// read and the wait still wakes us.
		wake := b.appendedChan()
		resp, records, bytes, failed := b.fetchOnce(req, version)
		// min_bytes above max_bytes could never be met: every append
		// would wake the fetch to read again, and throw it away.
		if bytes >= int(min(req.MinBytes, req.MaxBytes)) || failed || !time.Now().Before(deadline) {
			return resp, records
		}
		select {
		case <-wake:
			records.close()
		case <-timer.C:
			records.close()
			resp, records, _, _ = b.fetchOnce(req, version)
			return resp, records
		case <-ctx.Done():
			return resp, records
		}
	}
}

// fetchOnce reads what every partition of the request has now. It returns
// the response, its records, how many bytes of records those are, and
// whether any partition failed, was redirected, or has a follower whose
// log start is behind (those answer at once, without waiting).
func (b *Broker) fetchOnce(req *kmsg.FetchRequest, version int16) (*kmsg.FetchResponse, fetchedRecords, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	records := fetchedRecords{}
	named := map[topicPartition]bool{}
	total, failed := 0, false
	budget := int(req.MaxBytes)
	reader := fetchReader{replica: req.ReplicaID, rack: req.Rack, followerReads: version >= 11}
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		for i := range rt.Partitions {
			k := topicPartition{rt.Topic, rt.TopicID, rt.Partitions[i].Partition}
			if named[k] {
				// Named twice in one request: Kafka reads the request's
				// partitions into a map, so it answers each once.
				continue
			}
			named[k] = true
			limit := min(int(rt.Partitions[i].PartitionMaxBytes), budget-total)
			if limit <= 0 && total == 0 {
				limit = 1 // the first partition with data still returns one whole batch
			}
			sp, recs, err := b.fetchPartition(rt.Topic, &rt.Partitions[i], int64(max(limit, 0)), reader)
			if total > 0 && recs.Len() > budget-total {
				// Past the first partition with data, a batch larger than
				// what is left of max_bytes waits for the next fetch.
				recs.Close()
				recs = log.Slice{}
			}
			if err != nil {
				recs.Close()
				recs = log.Slice{}
				sp.ErrorCode, failed = b.code(err), true
				switch {
				case version >= 13 && rt.Topic == "":
					sp.ErrorCode = kerr.UnknownTopicID.Code
				case version >= 16 && (errors.Is(err, kerr.NotLeaderForPartition) || errors.Is(err, kerr.FencedLeaderEpoch)):
					resp.Brokers = b.hintFetch(&sp, rt.Topic, resp.Brokers)
				}
			}
			if sp.PreferredReadReplica >= 0 {
				failed = true // answer now: the consumer goes elsewhere
			}
			if followerStartBehind(req.ReplicaID, &rt.Partitions[i], &sp) {
				failed = true // answer now: the follower moves its start, and a DeleteRecords waits for it
			}
			// The records are in records; here the set is empty, not
			// null: librdkafka refuses a null record set.
			sp.RecordBatches = []byte{}
			total += recs.Len()
			records.add(k, recs)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, records, total, failed
}

// hintFetch puts the leader hint in a refused partition's answer and the
// leader's address in the response's brokers, once (KIP-951).
func (b *Broker) hintFetch(sp *kmsg.FetchResponseTopicPartition, topic string, brokers []kmsg.FetchResponseBroker) []kmsg.FetchResponseBroker {
	h := b.currentLeader(topic, sp.Partition)
	if !h.known {
		return brokers
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.id, h.epoch
	for _, br := range brokers {
		if br.NodeID == h.id {
			return brokers
		}
	}
	br := kmsg.NewFetchResponseBroker()
	br.NodeID, br.Host, br.Port, br.Rack = h.id, h.host, h.port, h.rack
	return append(brokers, br)
}

// followerStartBehind reports whether a follower's log start offset, as
// its fetch said, is behind the leader's, as the answer says: its fetch is
// answered at once, without waiting for records, so that the follower
// moves its start now (fetcher.followLogStart) rather than after
// replica.fetch.wait.max.ms. A follower always moves all the way (its
// fetch offset, its log end, is at or past the leader's start, or the
// answer is OFFSET_OUT_OF_RANGE), so the next fetch waits again.
func followerStartBehind(replica int32, rp *kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition) bool {
	return replica >= 0 && sp.ErrorCode == 0 && rp.LogStartOffset >= 0 && rp.LogStartOffset < sp.LogStartOffset
}

// fetchReader is who is fetching: a follower (replica >= 0) or a consumer,
// with its rack, and whether its Fetch version lets it read from followers.
type fetchReader struct {
	replica       int32
	rack          string
	followerReads bool
}

// fetchPartition answers one partition of a Fetch: whole batches from the
// fetch offset, up to maxBytes (at least one batch, none if maxBytes is 0),
// with the partition's high watermark, last stable offset and log start
// offset. An error becomes the partition's error code. The batches are
// returned as a range of the log's segment file: the response is written
// from the file.
func (b *Broker) fetchPartition(topic string, rp *kmsg.FetchRequestTopicPartition, maxBytes int64, who fetchReader) (kmsg.FetchResponseTopicPartition, log.Slice, error) {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	p, err := b.partitionOf(topic, rp.Partition)
	if err != nil {
		return sp, log.Slice{}, err
	}
	leader, epoch := p.isLeader()
	if err := checkLeaderEpoch(p, rp.CurrentLeaderEpoch, epoch); err != nil {
		return sp, log.Slice{}, err
	}
	switch {
	case who.replica >= 0 && !leader:
		return sp, log.Slice{}, fmt.Errorf("%w: follower %d fetched %s from broker %d, which does not lead it", kerr.NotLeaderForPartition, who.replica, p, b.cfg.NodeID)
	case who.replica < 0 && !leader && !who.followerReads:
		return sp, log.Slice{}, fmt.Errorf("%w: broker %d follows %s; this Fetch version reads from leaders only", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
	case who.replica < 0 && leader && who.rack != "":
		id, err := b.preferredReadReplica(p, who.rack)
		if err != nil {
			return sp, log.Slice{}, err
		}
		if id != -1 { // -1 is "none": read here
			sp.PreferredReadReplica = id
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = p.highWatermark(), p.highWatermark(), p.log.StartOffset()
			return sp, log.Slice{}, nil
		}
	}
	if who.replica >= 0 {
		return b.followerFetch(p, rp, maxBytes, who.replica)
	}
	//klab:lesson 03 begin (*Broker).fetchPartition
	// A consumer reads below the high watermark only: what is above it is
	// not yet on every in-sync replica, and could vanish if the leader
	// died. Without transactions the last stable offset is the high
	// watermark.
	var records log.Slice
	if maxBytes > 0 {
		records, err = p.log.SliceBelow(rp.FetchOffset, maxBytes, p.highWatermark()) // OFFSET_OUT_OF_RANGE comes from the log
	}
	// Read the high watermark after the records, so that it is never below them.
	hwm := p.highWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, hwm, p.log.StartOffset()
	return sp, records, err
	//klab:lesson 03 stub
	// return sp, log.Slice{}, lessons.Todo("03", "(*Broker).fetchPartition")
	//klab:lesson 03 end
}

// followerFetch answers a follower: records up to the log end, from its
// fetch offset, which is how the leader learns how far the follower has
// come (and may let it join the ISR).
func (b *Broker) followerFetch(p *partition, rp *kmsg.FetchRequestTopicPartition, maxBytes int64, follower int32) (kmsg.FetchResponseTopicPartition, log.Slice, error) {
	sp := kmsg.NewFetchResponseTopicPartition()
	sp.Partition = rp.Partition
	var records log.Slice
	var err error
	if send, throttled := b.leaderSendBytes(p, follower, maxBytes); send > 0 {
		records, err = p.log.Slice(rp.FetchOffset, send)
		if throttled {
			b.leaderQuota.spend(records.Len())
		}
	}
	if err == nil {
		var join, moved bool
		join, moved, err = p.followerFetched(follower, rp.FetchOffset, time.Now())
		p.followerLogStart(follower, rp.LogStartOffset)
		if moved {
			b.notifyAppend() // consumers waiting for records to be committed
		}
		if join {
			b.maybeAlterISR(p)
		}
	}
	hwm := p.highWatermark()
	sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = hwm, hwm, p.log.StartOffset()
	return sp, records, err
}

// checkLeaderEpoch fences a request that carries a leader epoch (KIP-320):
// an older one than the replica's means the sender missed a leader change
// (FENCED_LEADER_EPOCH: refresh metadata); a newer one means this replica
// has not learned of it yet (UNKNOWN_LEADER_EPOCH: retry). -1 skips the
// check, for clients that do not track epochs.
func checkLeaderEpoch(p *partition, theirs, ours int32) error {
	switch {
	case theirs < 0 || theirs == ours:
		return nil
	case theirs < ours:
		return fmt.Errorf("%w: %s is at leader epoch %d, the request says %d", kerr.FencedLeaderEpoch, p, ours, theirs)
	default:
		return fmt.Errorf("%w: %s is at leader epoch %d here, the request says %d", kerr.UnknownLeaderEpoch, p, ours, theirs)
	}
}
