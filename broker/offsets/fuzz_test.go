package offsets_test

import (
	"testing"
	"time"

	"klab.dev/klab/broker/log"
	"klab.dev/klab/broker/offsets"
)

// FuzzStoreApply feeds the store records of any bytes, as a damaged or
// foreign __consumer_offsets partition could hold: an error or a skip,
// never a panic.
func FuzzStoreApply(f *testing.F) {
	c := offsets.CommitRecord("g", offsets.TopicPartition{Topic: "t", Partition: 1}, offsets.Commit{Offset: 5, LeaderEpoch: 2, Metadata: "m", Time: time.UnixMilli(1)})
	f.Add(c.Key, c.Value)
	f.Add(c.Key, []byte(nil))
	g := offsets.GroupTombstone("g", time.UnixMilli(1))
	f.Add(g.Key, []byte{0, 3, 0, 0})
	f.Add([]byte{0, 0}, []byte{0, 0})
	f.Fuzz(func(t *testing.T, key, value []byte) {
		s := offsets.NewStore()
		_ = s.Apply(log.Record{Key: key, Value: value})
		s.Compact()
		for _, id := range s.Groups() {
			_ = s.Committed(id)
		}
	})
}
