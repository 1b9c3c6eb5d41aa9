package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"

	"klab.dev/klab/producer"
)

// With auto.create.topics.enable off (klab's default), a client that sends
// to a topic that does not exist must hear so, and soon: the broker answers
// Metadata for it with UNKNOWN_TOPIC_OR_PARTITION at once, and the client
// gives up after its own bounded wait.
func TestProducingToAMissingTopicFailsWithinSeconds(t *testing.T) {
	b := start(t, t.TempDir())

	t.Run("the course's producer", func(t *testing.T) {
		cfg := producer.DefaultConfig()
		cfg.BootstrapServers = []string{b.Addr()}
		cfg.MaxBlock = 2 * time.Second // max.block.ms: the Java client's default is a minute
		p, err := producer.New(cfg)
		require.NoError(t, err)
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		began := time.Now()
		_, err = p.Send(ctx, &producer.Record{Topic: "missing", Value: []byte("x")})
		took := time.Since(began)
		require.Error(t, err)
		assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
		assert.ErrorContains(t, err, "UNKNOWN_TOPIC_OR_PARTITION")
		assert.Less(t, took, 10*time.Second, "the send waits max.block.ms, not until killed")
	})

	t.Run("kcat", func(t *testing.T) {
		// librdkafka fails the messages of a topic the metadata does not
		// know after topic.metadata.propagation.max.ms (30 s by default).
		began := time.Now()
		out, err := runKcat(t, "one\ntwo\n", "-b", b.Addr(), "-P", "-t", "missing",
			"-X", "topic.metadata.propagation.max.ms=2000")
		took := time.Since(began)
		assert.Error(t, err, "kcat exits non-zero when a message is not delivered")
		assert.Contains(t, out, "Unknown topic or partition")
		assert.Less(t, took, 15*time.Second)
	})
}
