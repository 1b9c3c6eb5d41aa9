package broker

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// A reassignment copies whole partitions to the brokers it adds, and that
// copying competes with producers and consumers for the disks and the
// network. Kafka's replication quotas (KIP-73) bound it: the replicas a
// topic's leader.replication.throttled.replicas and
// follower.replication.throttled.replicas name ("partition:broker,...", or
// "*" for all) replicate at most leader.replication.throttled.rate bytes a
// second out of each leader and follower.replication.throttled.rate into
// each follower (dynamic broker configs). kafka-reassign-partitions
// --throttle sets all four for the partitions it moves, and --verify
// clears them once the move is done.
//
// Here the follower leaves a throttled partition out of its fetches while
// its quota is spent, and the leader answers a throttled follower's fetch
// with no records while its own is: in both cases only a replica outside
// the ISR — one catching up — is held back, as in Kafka, so that a throttle
// never stalls acks=all.

// quota is a token bucket of bytes: it refills at a rate a second, holds at
// most a second's worth, and may go into debt by one large read. A
// replica may replicate while the bucket is not empty.
type quota struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// allow reports whether the bucket, refilled at rate bytes a second until
// now, has anything left. An unlimited rate (Kafka's default) always does.
func (q *quota) allow(rate int64, now time.Time) bool {
	if rate <= 0 || rate == 1<<63-1 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.last.IsZero() {
		q.tokens, q.last = float64(rate), now
	}
	q.tokens = min(float64(rate), q.tokens+now.Sub(q.last).Seconds()*float64(rate))
	q.last = now
	return q.tokens > 0
}

// spend takes n bytes replicated from the bucket.
func (q *quota) spend(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.tokens -= float64(n)
}

// throttledReplica reports whether a topic's list of throttled replicas
// (the value of leader/follower.replication.throttled.replicas) names
// broker's replica of partition.
func throttledReplica(list string, partition, broker int32) bool {
	list = strings.TrimSpace(list)
	if list == "*" {
		return true
	}
	want := strconv.Itoa(int(partition)) + ":" + strconv.Itoa(int(broker))
	for _, item := range strings.Split(list, ",") {
		if strings.TrimSpace(item) == want {
			return true
		}
	}
	return false
}

// followerFetchBytes is how many bytes of p this broker's next fetch may
// ask for, at most (replica.fetch.max.bytes, 1 MiB), and false when it
// must not ask now. A throttled partition — this broker out of p's ISR,
// catching up, and named by follower.replication.throttled.replicas — asks
// for no more than a second's worth of the follower quota, and nothing
// while the quota is spent: one fetch cannot take more than the rate.
func (b *Broker) followerFetchBytes(p *partition) (int32, bool) {
	const fetchMax = 1 << 20
	if p.inISR(b.cfg.NodeID) || !b.throttledHere(p, followerThrottledReplicas) {
		return fetchMax, true
	}
	rate := b.brokerConfigInt(followerThrottledRate)
	if !b.followerQuota.allow(rate, time.Now()) {
		return 0, false
	}
	return int32(min(fetchMax, max(rate, 1))), true
}

// leaderSendBytes is how many bytes of p this broker, leading it, may send
// in answer to follower's fetch that asked for maxBytes (0: nothing now),
// and whether the answer counts against the leader quota. A throttled
// follower — out of the ISR, catching up, and p named by this broker's
// leader.replication.throttled.replicas — gets no more than a second's
// worth of the quota, and nothing while it is spent.
func (b *Broker) leaderSendBytes(p *partition, follower int32, maxBytes int64) (send int64, throttled bool) {
	if p.inISR(follower) || !b.throttledHere(p, leaderThrottledReplicas) {
		return maxBytes, false
	}
	rate := b.brokerConfigInt(leaderThrottledRate)
	if !b.leaderQuota.allow(rate, time.Now()) {
		return 0, true
	}
	return min(maxBytes, max(rate, 1)), true
}

// throttledHere reports whether the topic config list (leader or follower
// throttled replicas) names this broker's replica of p. The leader's list
// names the replicas that may lead while the partition moves (Kafka's tool
// lists the current ones), so the leader checks its own id in it.
func (b *Broker) throttledHere(p *partition, list string) bool {
	t := b.ctrl.Image().Topic(p.topic.name)
	return t != nil && throttledReplica(t.Configs[list], p.index, b.cfg.NodeID)
}
