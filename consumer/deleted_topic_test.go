package consumer_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"klab.dev/klab/consumer"
)

// admin returns a kadm client of the broker at addr, closed with the test.
func admin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.CreateTopics(ctx, partitions, 1, nil, topic)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

func deleteTopic(t *testing.T, adm *kadm.Client, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := adm.DeleteTopics(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

// pollUntil polls c until it has n records or Poll fails otherwise than
// by its own short deadline, for at most 15 seconds.
func pollUntil(t *testing.T, c *consumer.Consumer, n int) ([]consumer.Record, error) {
	t.Helper()
	var got []consumer.Record
	deadline := time.Now().Add(15 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		recs, err := c.Poll(ctx)
		cancel()
		got = append(got, recs...)
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return got, err
		}
	}
	return got, nil
}

// A consumer that assigned itself the partitions of a topic that is then
// deleted does not retry it for ever: once Metadata says the topic is
// gone, Poll says so, naming it, and the consumer goes on with the
// partitions it is assigned next.
func TestPollReportsAnAssignedTopicThatWasDeleted(t *testing.T) {
	addr := startCluster(t, "doomed", 2)
	adm := admin(t, addr)
	createTopic(t, adm, "kept", 1)
	produceValues(t, addr, "doomed", 0, 10)

	cfg := consumer.DefaultConfig()
	cfg.BootstrapServers = []string{addr}
	require.NoError(t, cfg.Set("auto.offset.reset", "earliest"))
	require.NoError(t, cfg.Set("fetch.max.wait.ms", "100"))
	c, err := consumer.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	c.Assign(consumer.TopicPartition{Topic: "doomed", Partition: 0}, consumer.TopicPartition{Topic: "doomed", Partition: 1})
	recs, err := pollUntil(t, c, 10)
	require.NoError(t, err)
	require.Len(t, recs, 10)

	deleteTopic(t, adm, "doomed")
	start := time.Now()
	_, err = pollUntil(t, c, 1)
	require.Error(t, err, "Poll must report the deleted topic, not wait on it")
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.ErrorIs(t, err, consumer.ErrTopicDeleted)
	assert.ErrorIs(t, err, kerr.UnknownTopicOrPartition)
	assert.Contains(t, err.Error(), "doomed")
	_, err = c.Poll(context.Background())
	assert.ErrorIs(t, err, consumer.ErrTopicDeleted, "and again, until the application assigns something else")

	produceValues(t, addr, "kept", 0, 3)
	c.Assign(consumer.TopicPartition{Topic: "kept", Partition: 0})
	recs, err = pollUntil(t, c, 3)
	require.NoError(t, err)
	assert.Len(t, recs, 3)
}

// A member of a group whose subscription has a topic that is deleted gets
// no error: it rejoins, and the group's next assignment leaves the topic
// out, as Kafka's consumer drops a deleted topic from a subscription.
func TestASubscriptionDropsADeletedTopic(t *testing.T) {
	addr := startCluster(t, "doomed", 2)
	adm := admin(t, addr)
	createTopic(t, adm, "kept", 1)
	m := newMember(t, addr, "g", "doomed")
	require.NoError(t, m.c.Subscribe("doomed", "kept"))
	m.start(t)
	produceValues(t, addr, "doomed", 0, 4)
	produceValues(t, addr, "kept", 4, 6)
	waitFor(t, 20*time.Second, "all 6 read", func() bool { return len(m.got()) == 6 })

	deleteTopic(t, adm, "doomed")
	waitFor(t, 20*time.Second, "assigned kept-0 alone", func() bool {
		return slices.Equal(m.c.Assignment(), []consumer.TopicPartition{{Topic: "kept", Partition: 0}})
	})
	produceValues(t, addr, "kept", 6, 8)
	waitFor(t, 20*time.Second, "all 8 read", func() bool { return len(m.got()) == 8 })
	assert.Equal(t, values(6, 8), m.got()[6:])
	m.mu.Lock()
	defer m.mu.Unlock()
	assert.Empty(t, m.errs)
}
