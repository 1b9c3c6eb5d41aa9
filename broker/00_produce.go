package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/offsets"
)

// Produce: the client sends record batches for partitions it believes this
// broker leads; the leader appends each partition's batches to its log,
// stamped with its leader epoch, and answers with the offset of the first
// record.
//
// Behavior: every partition gets its own error code, so one bad partition
// (unknown, led elsewhere, a batch over max.message.bytes, a CRC mismatch)
// fails alone. A broker that does not lead the partition answers
// NOT_LEADER_OR_FOLLOWER, and the client asks Metadata where it went.
// acks=0 gets no response at all; acks=1 is answered once the batches are
// in the leader's log; acks=-1 (all) once every in-sync replica has them
// (the high watermark has passed them), or REQUEST_TIMED_OUT after the
// request's timeout. acks=all fails with NOT_ENOUGH_REPLICAS, before
// appending, when the ISR is smaller than the topic's min.insync.replicas,
// and with NOT_ENOUGH_REPLICAS_AFTER_APPEND when it shrank below it while
// the records were being replicated. __consumer_offsets is the group
// coordinator's alone: INVALID_TOPIC_EXCEPTION, as Kafka answers a client
// writing to an internal topic.
//
// Version notes: v3 is the first to carry v2 record batches and the
// transactional id; v5 adds the log start offset to the response, v8 the
// error message, v9 is flexible, v10 the new leader's id, epoch and
// address with NOT_LEADER_OR_FOLLOWER (KIP-951, current_leader.go).
func init() { register(kmsg.Produce, 3, 10, handleProduce) }

func handleProduce(b *Broker, ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	// Every partition is appended first, and only then does acks=all wait,
	// once, for all of them, as Kafka's DelayedProduce does: the followers
	// fetch every partition of the request in the same round, so a request
	// for N partitions costs one replication round trip, not N.
	var waits []pendingProduce
	wait := newLeadershipWait() // one for the whole request: partitions do not each wait anew
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			var p *partition
			var err error
			switch {
			case req.TransactionID != nil:
				err = fmt.Errorf("%w: transactions arrive in lesson 16", kerr.TransactionalIDAuthorizationFailed)
			case rt.Topic == offsets.Topic:
				// Only the group coordinator writes there, in its formats:
				// a client's records would be read as commits.
				err = fmt.Errorf("%w: %s is internal: the group coordinator writes it", kerr.InvalidTopicException, rt.Topic)
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				err = fmt.Errorf("%w: acks=%d; acks is 0, 1 or -1 (all)", kerr.InvalidRequiredAcks, req.Acks)
			default:
				p, err = b.partitionOf(rt.Topic, rp.Partition)
				if err != nil && b.awaitLeadership(ctx, wait, rt.Topic, rp.Partition) {
					p, err = b.partitionOf(rt.Topic, rp.Partition)
				}
			}
			if err == nil {
				var epoch int32
				sp.BaseOffset, epoch, err = b.produceAppend(p, rp.Records, req.Acks)
				if errors.Is(err, kerr.NotLeaderForPartition) && b.awaitLeadership(ctx, wait, rt.Topic, rp.Partition) {
					sp.BaseOffset, epoch, err = b.produceAppend(p, rp.Records, req.Acks)
				}
				if err == nil && req.Acks == -1 {
					waits = append(waits, pendingProduce{p: p, next: log.NextOffset(rp.Records), epoch: epoch, topic: len(resp.Topics), partition: len(st.Partitions)})
				}
			}
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			if err == nil {
				sp.LogStartOffset = p.log.StartOffset()
			} else {
				sp.BaseOffset = -1 // as Kafka answers a failed partition
			}
			if errors.Is(err, kerr.NotLeaderForPartition) && r.version >= 10 {
				resp.Brokers = hintProduce(&sp, b.currentLeader(rt.Topic, rp.Partition), resp.Brokers)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil, nil // the client asked for no answer
	}
	// One deadline for all: each wait returns as soon as its partition's
	// high watermark passes its records, so the request waits for the
	// slowest partition, not for the sum of them.
	for _, w := range waits {
		if err := b.awaitAllInSync(ctx, w.p, w.next, w.epoch); err != nil {
			sp := &resp.Topics[w.topic].Partitions[w.partition]
			sp.ErrorCode, sp.ErrorMessage = b.code(err), errorMessage(err)
			sp.BaseOffset, sp.LogStartOffset = -1, -1 // as for any failed partition
		}
	}
	return resp, nil
}

// hintProduce puts the leader hint in a refused partition's answer and
// the leader's address in the response's brokers, once (KIP-951).
func hintProduce(sp *kmsg.ProduceResponseTopicPartition, h leaderHint, brokers []kmsg.ProduceResponseBroker) []kmsg.ProduceResponseBroker {
	if !h.known {
		return brokers
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = h.id, h.epoch
	for _, br := range brokers {
		if br.NodeID == h.id {
			return brokers
		}
	}
	br := kmsg.NewProduceResponseBroker()
	br.NodeID, br.Host, br.Port, br.Rack = h.id, h.host, h.port, h.rack
	return append(brokers, br)
}

// awaitLeadership waits, briefly, for this broker to lead a partition a
// Produce was sent to, and reports whether it does now. A client learns
// of a new topic, or of a new leader, from the Metadata of whichever
// broker applied the change first; its Produce may reach the leader a
// few milliseconds before the leader applied the same record. Refused,
// the client waits its retry backoff (franz-go's is 250 ms, and after a
// leader's death it asks for metadata again only after metadata.min.age,
// 5 s); a wait here of a few milliseconds saves that. It waits while this
// broker's metadata does not know the topic but has records on their way
// here (up to leadershipWait; with none on the way, the topic does not
// exist), or names itself leader before its replica took the role, or
// names a leader that is dead (up to metadataLeaderWait: the controller
// is about to replace it). A live
// leader elsewhere ends the wait at once: the client must go there
// (KIP-951's hint says where).
func (b *Broker) awaitLeadership(ctx context.Context, w leadershipDeadlines, topic string, partition int32) bool {
	for {
		imageChanged, membersChanged := b.ctrl.Changed(), b.members.Changed()
		b.reconcileMu.Lock()
		reconciled := b.reconcileWake
		b.reconcileMu.Unlock()
		deadline := w.short
		t := b.ctrl.Image().Topic(topic)
		switch {
		case t == nil && !b.ctrl.Behind():
			return false // no record of it on the way: it does not exist
		case t != nil && (partition < 0 || int(partition) >= len(t.Partitions)):
			return false // the topic has no such partition
		}
		if t != nil {
			leader := t.Partitions[partition].Leader
			_, alive := b.members.Alive()[leader]
			switch {
			case leader == b.cfg.NodeID:
				if p, err := b.partitionOf(topic, partition); err == nil {
					if leads, _ := p.isLeader(); leads {
						return true
					}
				}
			case leader >= 0 && alive:
				return false
			case leader >= 0:
				deadline = w.long
			}
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return false
		}
		timer := time.NewTimer(wait)
		select {
		case <-imageChanged:
		case <-membersChanged:
		case <-reconciled:
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return false
		}
		timer.Stop()
	}
}

// leadershipDeadlines are when awaitLeadership gives up, for one whole
// request: short for a topic on its way, long for a dead leader.
type leadershipDeadlines struct{ short, long time.Time }

func newLeadershipWait() leadershipDeadlines {
	now := time.Now()
	return leadershipDeadlines{short: now.Add(leadershipWait), long: now.Add(metadataLeaderWait)}
}

// leadershipWait bounds awaitLeadership's wait for a topic this broker's
// metadata does not know, or a partition without a leader: metadata
// reaches every broker within milliseconds, and a topic that does not
// exist should be refused without much delay.
const leadershipWait = 300 * time.Millisecond

// pendingProduce is one partition of an acks=all Produce, appended and
// waiting for the in-sync replicas: the offset after its records, the
// leader epoch it was written in, and where its answer is in the response.
type pendingProduce struct {
	p                *partition
	next             int64
	epoch            int32
	topic, partition int
}

// produceAppend appends to the partition as its leader and returns the
// offset of the first record and the leader epoch; an acks=all request
// then waits for the in-sync replicas (awaitAllInSync).
func (b *Broker) produceAppend(p *partition, records []byte, acks int16) (int64, int32, error) {
	base, epoch, err := b.producePartition(p, records, acks)
	if err != nil {
		return 0, 0, err
	}
	// Counted once in the log, as Kafka counts BytesIn: whatever acks=all
	// then answers, the records are there.
	b.metrics.produced(p.topic.name, records)
	b.leaderAppended(p)
	return base, epoch, nil
}

// awaitAllInSync is acks=all's wait, after the leader appended up to next
// in epoch: until every in-sync replica has the records, and then the ISR
// must still satisfy min.insync.replicas.
func (b *Broker) awaitAllInSync(ctx context.Context, p *partition, next int64, epoch int32) error {
	if err := p.awaitHighWatermark(ctx, next, epoch); err != nil {
		return err
	}
	minInSync := int(b.cfg.intConfig(p.topic.configs(), "min.insync.replicas"))
	if n := p.inSync(); n < minInSync {
		return fmt.Errorf("%w: %s: the records are written, but the ISR shrank to %d, under min.insync.replicas %d", kerr.NotEnoughReplicasAfterAppend, p, n, minInSync)
	}
	return nil
}

// producePartition appends a partition's record batches to its log, if
// this broker leads the partition, stamped with the leader epoch, and
// returns the offset the log gave the first record and the epoch.
func (b *Broker) producePartition(p *partition, records []byte, acks int16) (int64, int32, error) {
	// Hold the role from the check to the end of the append, so that the
	// records cannot land after this replica stopped leading.
	p.roleMu.RLock()
	defer p.roleMu.RUnlock()
	//klab:lesson 03 begin (*Broker).producePartition
	leader, epoch := p.isLeader()
	if !leader {
		return 0, 0, fmt.Errorf("%w: broker %d does not lead %s", kerr.NotLeaderForPartition, b.cfg.NodeID, p)
	}
	if acks == -1 {
		inSync, minInSync := p.inSync(), int(b.cfg.intConfig(p.topic.configs(), "min.insync.replicas"))
		if inSync < minInSync {
			return 0, 0, fmt.Errorf("%w: %s has %d in-sync replicas, min.insync.replicas is %d", kerr.NotEnoughReplicas, p, inSync, minInSync)
		}
	}
	base, err := p.log.AppendLeader(records, epoch)
	return base, epoch, err
	//klab:lesson 03 stub
	// return 0, 0, lessons.Todo("03", "(*Broker).producePartition")
	//klab:lesson 03 end
}

// leaderAppended tells those who wait that the leader's log grew:
// followers' long-polling fetches, and, with a single in-sync replica,
// the high watermark itself.
func (b *Broker) leaderAppended(p *partition) {
	p.mu.Lock()
	p.advanceHighWatermark()
	p.mu.Unlock()
	b.notifyAppend()
}
