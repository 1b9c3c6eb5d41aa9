package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fetchOf is a Fetch of partitions [from, to) of topic t.
func fetchOf(from, to int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "t"
	for p := from; p < to; p++ {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// TestASessionIsBounded: the broker remembers at most
// maxSessionPartitions partitions per session, so that a client cannot
// make it hold millions: a bigger full fetch opens no session, and a
// session that would grow past the bound is refused.
func TestASessionIsBounded(t *testing.T) {
	fs := newFetchSessions()
	if s := fs.open(0, fetchOf(0, maxSessionPartitions+1), false); s != nil {
		t.Fatal("a session was opened for more partitions than the bound")
	}
	s := fs.open(0, fetchOf(0, maxSessionPartitions), false)
	if s == nil {
		t.Fatal("no session at the bound")
	}
	if !s.update(fetchOf(0, 10), false) {
		t.Fatal("moving known partitions is refused")
	}
	if s.update(fetchOf(maxSessionPartitions, maxSessionPartitions+1), false) {
		t.Fatal("the session grew past the bound")
	}
}

// TestSessionsAreCapped: past maxFetchSessions sessions in use, no new
// one opens; the fetcher goes on with full fetches.
func TestSessionsAreCapped(t *testing.T) {
	fs := newFetchSessions()
	for range maxFetchSessions {
		if fs.open(0, fetchOf(0, 1), false) == nil {
			t.Fatal("a session was refused below the cap")
		}
	}
	if fs.open(0, fetchOf(0, 1), false) != nil {
		t.Fatal("a session opened past the cap, none idle")
	}
}
