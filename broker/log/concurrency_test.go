package log_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"klab.dev/klab/broker/log"
)

// TestReadsAppendsAndCleaningRunTogether runs appends, sequential readers and
// the background cleaner (compaction and retention) on one log at once. Run
// it with -race. Readers must never see an error other than the log start
// offset moving past them, nor a batch that does not decode.
func TestReadsAppendsAndCleaningRunTogether(t *testing.T) {
	l, err := log.Open(t.TempDir(), log.Config{
		CleanupPolicy:  "compact,delete",
		SegmentBytes:   4 << 10,
		RetentionBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := log.NewCleaner(time.Millisecond)
	c.Add(l)
	c.Start()
	defer c.Stop()

	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			offset := int64(0)
			for !done.Load() {
				offset = max(offset, l.StartOffset())
				raw, err := l.Read(offset, 8<<10)
				if err != nil {
					if offset < l.StartOffset() {
						continue // retention deleted it meanwhile
					}
					errs <- fmt.Errorf("Read(%d): %w", offset, err)
					return
				}
				recs, err := log.DecodeRecords(raw)
				if err != nil {
					errs <- fmt.Errorf("decoding at %d: %w", offset, err)
					return
				}
				if len(recs) > 0 {
					offset = recs[len(recs)-1].Offset + 1
				}
			}
		}()
	}
	for i := range 3000 {
		b := log.EncodeBatch(log.Record{Timestamp: time.Now(), Key: []byte(fmt.Sprint(i % 50)), Value: make([]byte, 200)})
		if _, err := l.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
