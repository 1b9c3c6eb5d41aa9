package broker

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fetch sessions (KIP-227). A consumer of hundreds of partitions, or a
// follower replicating them, sends a Fetch every few milliseconds; most
// partitions have not changed since the last one. With a session, the
// broker remembers the partitions and what it last told about each; the
// fetcher then sends only the partitions whose fetch position changed
// (and those to forget), and the broker answers only the partitions with
// news: records, or a changed high watermark, last stable offset, log
// start offset, preferred read replica, or an error.
//
// The session's epoch orders its requests: 0 opens one (a full fetch;
// the answer carries the new session id), then 1, 2, ... are incremental;
// -1 is a full fetch without a session (and closes the one named).
// A session id the broker does not know is FETCH_SESSION_ID_NOT_FOUND, a
// wrong epoch INVALID_FETCH_SESSION_EPOCH: the fetcher starts over with a
// full fetch.

// maxFetchSessions is max.incremental.fetch.session.cache.slots: past
// it, a session is opened only in place of one idle for
// fetchSessionIdle; otherwise the fetcher goes on with full fetches.
// maxSessionPartitions bounds one session: a hostile client could
// otherwise make the broker remember millions of partitions per session.
// A fetcher of more partitions goes on with full fetches.
const (
	maxFetchSessions     = 1000
	fetchSessionIdle     = 2 * time.Minute
	maxSessionPartitions = 10_000
)

// fetchSessions is the broker's session cache.
type fetchSessions struct {
	mu   sync.Mutex
	byID map[int32]*fetchSession
}

func newFetchSessions() *fetchSessions {
	return &fetchSessions{byID: map[int32]*fetchSession{}}
}

// fetchSession is one fetcher's partitions, in the order it first asked
// for them, and what the broker last answered for each.
type fetchSession struct {
	// mu is held by the request using the session, from update to news.
	mu       sync.Mutex
	id       int32
	epoch    int32 // the epoch the next request must carry
	byID     bool  // opened by a Fetch v13+, which names topics by id
	lastUsed time.Time
	parts    []*sessionPartition
	index    map[sessionKey]int
}

// sessionKey names a partition as the fetcher does: by topic name up to
// Fetch v12, by topic id from v13.
type sessionKey struct {
	topic     string
	id        [16]byte
	partition int32
}

// sessionPartition is a partition of a session: the fetch position last
// asked for, and the values last answered.
type sessionPartition struct {
	key                       sessionKey
	ask                       kmsg.FetchRequestTopicPartition
	sent                      bool // answered at least once
	hwm, lastStable, logStart int64
	preferred                 int32
}

// open creates a session for the partitions of a full fetch and what its
// answer told of them, or returns nil when the cache is full of sessions
// in use. A session id the request carried is closed first. The session
// is complete before it is in the cache: another request naming it
// cannot meet it half made.
func (fs *fetchSessions) open(closing int32, req *kmsg.FetchRequest, resp *kmsg.FetchResponse, records fetchedRecords, byID bool) *fetchSession {
	n := 0
	for _, rt := range req.Topics {
		n += len(rt.Partitions)
	}
	if n > maxSessionPartitions {
		fs.close(closing)
		return nil
	}
	s := &fetchSession{epoch: 1, byID: byID, index: map[sessionKey]int{}}
	s.update(req, byID) // within maxSessionPartitions: counted above
	s.news(resp, records, byID, false)

	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.byID, closing)
	now := time.Now()
	if len(fs.byID) >= maxFetchSessions {
		for id, old := range fs.byID {
			if now.Sub(old.lastUsed) > fetchSessionIdle {
				delete(fs.byID, id)
				break
			}
		}
		if len(fs.byID) >= maxFetchSessions {
			return nil
		}
	}
	// A random id, as Kafka's: one that follows the last would tell a
	// client the id of the next fetcher's session.
	for s.id == 0 || fs.byID[s.id] != nil {
		s.id = rand.Int32()
	}
	s.lastUsed = now
	fs.byID[s.id] = s
	return s
}

// close forgets a session.
func (fs *fetchSessions) close(id int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	delete(fs.byID, id)
}

// take finds the session an incremental fetch names and moves its epoch
// on, or returns the error to answer with.
func (fs *fetchSessions) take(id, epoch int32, byID bool) (*fetchSession, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	s := fs.byID[id]
	switch {
	case s == nil:
		return nil, fmt.Errorf("%w: fetch session %d", kerr.FetchSessionIDNotFound, id)
	case s.epoch != epoch:
		return nil, fmt.Errorf("%w: fetch session %d expects epoch %d, not %d", kerr.InvalidFetchSessionEpoch, id, s.epoch, epoch)
	case s.byID != byID:
		// Opened naming topics one way, continued the other: its keys
		// would not match (Kafka answers the same).
		delete(fs.byID, id)
		return nil, fmt.Errorf("%w: fetch session %d was opened at a Fetch version that names topics the other way", kerr.FetchSessionTopicIDError, id)
	}
	s.epoch++
	if s.epoch <= 0 {
		s.epoch = 1 // after 2^31 fetches, 1 again: 0 and -1 mean open and close
	}
	s.lastUsed = time.Now()
	return s, nil
}

func keyOf(topic string, id [16]byte, partition int32, byID bool) sessionKey {
	if byID {
		return sessionKey{id: id, partition: partition}
	}
	return sessionKey{topic: topic, partition: partition}
}

// update adds the request's partitions to the session or moves their
// fetch position, and drops its forgotten ones. It reports false when the
// session would grow past maxSessionPartitions: the caller closes it. The
// caller holds s.mu.
func (s *fetchSession) update(req *kmsg.FetchRequest, byID bool) bool {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			k := keyOf(rt.Topic, rt.TopicID, rp.Partition, byID)
			// Tags kmsg decodes are slices of the request's frame, which
			// goes back to bufpool once the request is handled: the
			// session keeps none of it.
			rp.UnknownTags = kmsg.Tags{}
			if i, ok := s.index[k]; ok {
				s.parts[i].ask = rp
				continue
			}
			if len(s.parts) >= maxSessionPartitions {
				return false
			}
			s.index[k] = len(s.parts)
			s.parts = append(s.parts, &sessionPartition{key: k, ask: rp})
		}
	}
	for _, ft := range req.ForgottenTopics {
		for _, partition := range ft.Partitions {
			k := keyOf(ft.Topic, ft.TopicID, partition, byID)
			i, ok := s.index[k]
			if !ok {
				continue
			}
			last := len(s.parts) - 1
			s.parts[i] = s.parts[last]
			s.index[s.parts[i].key] = i
			s.parts = s.parts[:last]
			delete(s.index, k)
		}
	}
	return true
}

// full is the request as a full fetch of every partition in the session,
// for the broker to read them all.
func (s *fetchSession) full(req *kmsg.FetchRequest, byID bool) *kmsg.FetchRequest {
	out := *req
	out.Topics, out.ForgottenTopics = nil, nil
	topics := map[sessionKey]int{}
	for _, sp := range s.parts {
		tk := sessionKey{topic: sp.key.topic, id: sp.key.id}
		i, ok := topics[tk]
		if !ok {
			i = len(out.Topics)
			topics[tk] = i
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic, rt.TopicID = sp.key.topic, sp.key.id
			out.Topics = append(out.Topics, rt)
		}
		out.Topics[i].Partitions = append(out.Topics[i].Partitions, sp.ask)
	}
	return &out
}

// news keeps, in an answer to an incremental fetch, only the partitions
// with news since the last answer, and remembers what it tells. With
// filter false, it keeps them all. The partitions that returned records
// go to the end of the session's order, as Kafka's do: the next fetch
// reads the others first, so that a few busy partitions cannot take all
// of max_bytes fetch after fetch.
func (s *fetchSession) news(resp *kmsg.FetchResponse, records fetchedRecords, byID, filter bool) {
	var back []int
	topics := resp.Topics[:0]
	for _, rt := range resp.Topics {
		parts := rt.Partitions[:0]
		for _, rp := range rt.Partitions {
			i, ok := s.index[keyOf(rt.Topic, rt.TopicID, rp.Partition, byID)]
			if !ok {
				continue
			}
			sp := s.parts[i]
			served := records.of(rt.Topic, rt.TopicID, rp.Partition).Len() > 0
			changed := !sp.sent || served || rp.ErrorCode != 0 ||
				rp.HighWatermark != sp.hwm || rp.LastStableOffset != sp.lastStable ||
				rp.LogStartOffset != sp.logStart || rp.PreferredReadReplica != sp.preferred
			sp.sent = true
			sp.hwm, sp.lastStable, sp.logStart, sp.preferred = rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset, rp.PreferredReadReplica
			if served {
				back = append(back, i)
			}
			if changed || !filter {
				parts = append(parts, rp)
			}
		}
		if len(parts) > 0 || !filter {
			rt.Partitions = parts
			topics = append(topics, rt)
		}
	}
	resp.Topics = topics
	s.toBack(back)
}

// toBack moves the session's partitions at the given indexes to the end
// of its order, keeping the order among the rest.
func (s *fetchSession) toBack(indexes []int) {
	if len(indexes) == 0 || len(indexes) == len(s.parts) {
		return
	}
	back := make(map[int]bool, len(indexes))
	for _, i := range indexes {
		back[i] = true
	}
	order := make([]*sessionPartition, 0, len(s.parts))
	for i, sp := range s.parts {
		if !back[i] {
			order = append(order, sp)
		}
	}
	for i, sp := range s.parts {
		if back[i] {
			order = append(order, sp)
		}
	}
	s.parts = order
	for i, sp := range s.parts {
		s.index[sp.key] = i
	}
}
