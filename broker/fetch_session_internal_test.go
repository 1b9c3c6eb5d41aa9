package broker

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"klab.dev/klab/broker/log"
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
	if s := fs.open(0, fetchOf(0, maxSessionPartitions+1), kmsg.NewPtrFetchResponse(), nil, false); s != nil {
		t.Fatal("a session was opened for more partitions than the bound")
	}
	s := fs.open(0, fetchOf(0, maxSessionPartitions), kmsg.NewPtrFetchResponse(), nil, false)
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
		if fs.open(0, fetchOf(0, 1), kmsg.NewPtrFetchResponse(), nil, false) == nil {
			t.Fatal("a session was refused below the cap")
		}
	}
	if fs.open(0, fetchOf(0, 1), kmsg.NewPtrFetchResponse(), nil, false) != nil {
		t.Fatal("a session opened past the cap, none idle")
	}
}

// TestPartitionsThatReturnedRecordsGoLast: a session reads its
// partitions in turn, those that just returned records last, so that busy
// partitions first in line cannot take max_bytes fetch after fetch (as
// Kafka's incremental fetch context does).
func TestPartitionsThatReturnedRecordsGoLast(t *testing.T) {
	fs := newFetchSessions()
	s := fs.open(0, fetchOf(0, 4), kmsg.NewPtrFetchResponse(), nil, false)
	l, err := log.Open(t.TempDir(), log.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(log.EncodeBatch(log.Record{Value: []byte("v")})); err != nil {
		t.Fatal(err)
	}
	resp := kmsg.NewPtrFetchResponse()
	records := fetchedRecords{}
	defer records.close()
	rt := kmsg.NewFetchResponseTopic()
	rt.Topic = "t"
	for p := range int32(4) {
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.Partition = p
		if p == 0 || p == 2 {
			recs, err := l.Slice(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			records.add(topicPartition{topic: "t", partition: p}, recs)
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	resp.Topics = append(resp.Topics, rt)
	s.news(resp, records, false, true)
	full := s.full(kmsg.NewPtrFetchRequest(), false)
	var order []int32
	for _, rp := range full.Topics[0].Partitions {
		order = append(order, rp.Partition)
	}
	if want := []int32{1, 3, 0, 2}; !slices.Equal(order, want) {
		t.Fatalf("the next fetch reads %v, want %v", order, want)
	}
}

// TestASessionKeepsNoneOfTheRequestsBytes: the tags kmsg decodes are
// slices of the request's frame, which bufpool hands to the next request:
// a session that kept them would pin, and later alias, that frame.
func TestASessionKeepsNoneOfTheRequestsBytes(t *testing.T) {
	req := fetchOf(0, 1)
	req.Topics[0].Partitions[0].UnknownTags.Set(7, []byte("frame bytes"))
	s := newFetchSessions().open(0, req, kmsg.NewPtrFetchResponse(), nil, false)
	if s.parts[0].ask.UnknownTags.Len() != 0 {
		t.Fatal("the session keeps the request's tags")
	}
}
