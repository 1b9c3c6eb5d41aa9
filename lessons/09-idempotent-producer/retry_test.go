package idempotence_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A batch that fails while Flush waits is sent again once retry.backoff.ms
// has passed, not once linger.ms has: Flush makes every batch ready, and a
// retried one is ready when its backoff ends. With or without idempotence.
func TestARetryDuringFlushWaitsOutItsBackoffNotLinger(t *testing.T) {
	for _, idempotence := range []string{"true", "false"} {
		t.Run("enable.idempotence="+idempotence, func(t *testing.T) {
			f := newFake(t)
			f.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				return answer(req, kerr.NotLeaderForPartition.Code), nil, true // the first only
			})
			p := newProducer(t, f.addrs(), "enable.idempotence", idempotence, "linger.ms", "600000", "retry.backoff.ms", "10")
			futures := send(p, "t", 0, 3)
			flush, cancel := context.WithTimeout(ctx(t), 20*time.Second)
			defer cancel()
			require.NoError(t, p.Flush(flush), "linger.ms is ten minutes; the retry waits 10 ms")
			assert.Equal(t, []int64{0, 1, 2}, offsets(t, futures))
		})
	}
}
