package broker_test

import (
	"context"
	"sort"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"klab.dev/klab/broker"
)

// saramaHandler collects the values of the records a sarama group member
// is given, marks each consumed, and says when it has n.
type saramaHandler struct {
	n    int
	mu   sync.Mutex
	got  []string
	done chan struct{}
}

func (h *saramaHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *saramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *saramaHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		s.MarkMessage(m, "")
		h.mu.Lock()
		h.got = append(h.got, string(m.Value))
		if len(h.got) == h.n {
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

// consumeWithSarama reads n records as a member of group with sarama's
// consumer group, default settings but for starting at the oldest offset,
// and closes it, which commits what it marked.
func consumeWithSarama(t *testing.T, b *broker.Broker, group, topic string, n int) []string {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cg, err := sarama.NewConsumerGroup([]string{b.Addr()}, group, cfg)
	require.NoError(t, err)
	h := &saramaHandler{n: n, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(ctxT(t))
	consumed := make(chan error, 1)
	go func() {
		var err error
		for ctx.Err() == nil && err == nil {
			err = cg.Consume(ctx, []string{topic}, h) // returns at each rebalance
		}
		consumed <- err
	}()
	select {
	case <-h.done:
	case <-ctx.Done():
	case err := <-cg.Errors():
		t.Errorf("sarama: %v", err)
	}
	cancel()
	require.NoError(t, <-consumed)
	require.NoError(t, cg.Close())
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Len(t, h.got, n, "records read before the deadline")
	sort.Strings(h.got)
	return h.got
}

// sarama's consumer group (IBM/sarama, the Go client many applications
// use) reads a topic in a group, commits, and a second run resumes.
func TestSaramaConsumerGroupCommitsAndResumes(t *testing.T) {
	b := start(t, t.TempDir(), groupSettings...)
	_, err := kadm.NewClient(client(t, b)).CreateTopics(ctxT(t), 2, 1, nil, "events")
	require.NoError(t, err)
	produceValues(t, b, "events", 8)
	assert.Equal(t, []string{"0", "1", "2", "3", "4", "5", "6", "7"}, consumeWithSarama(t, b, "sarama-group", "events", 8))
	produceValues(t, b, "events", 2)
	assert.Equal(t, []string{"0", "1"}, consumeWithSarama(t, b, "sarama-group", "events", 2), "resumed from the commits")
}
