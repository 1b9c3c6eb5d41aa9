package streams

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/admin"
	"klab.dev/klab/broker"
	"klab.dev/klab/broker/clustertest"
	"klab.dev/klab/consumer"
	"klab.dev/klab/producer"
)

// TestAppRestoreTaskTimeout: a changelog whose only replica's broker is
// down is waited for up to task.timeout.ms, by the end-offset lookup and
// by the replay, and then the error says task.timeout.ms passed.
func TestAppRestoreTaskTimeout(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Brokers: 3, Configure: func(cfg *broker.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := admin.New(admin.Options{Bootstrap: c.Addrs()})
	defer adm.Close()
	_, err := adm.CreateTopics(ctx, admin.NewTopic{Name: "changelog", Assignment: [][]int32{{2}}})
	require.NoError(t, err)
	c.WaitLeader("changelog", 0, 60*time.Second, nil)
	pc := producer.DefaultConfig()
	pc.BootstrapServers = c.Addrs()
	p, err := producer.New(pc)
	require.NoError(t, err)
	for _, k := range []string{"a", "b"} {
		_, err := p.Send(ctx, &producer.Record{Topic: "changelog", Key: []byte(k), Value: []byte(k)})
		require.NoError(t, err)
	}
	p.Close()

	cfg := DefaultConfig()
	cfg.BootstrapServers = []string{c.Addr(1), c.Addr(3)} // not the broker killed
	cfg.TaskTimeout = 2 * time.Second
	r := &restorer{cfg: cfg, clientID: "test"}
	defer r.close()
	tp := consumer.TopicPartition{Topic: "changelog", Partition: 0}
	end, err := r.endOffset(ctx, tp)
	require.NoError(t, err)
	assert.Equal(t, int64(2), end)

	c.Kill(2)
	began := time.Now()
	_, err = r.endOffset(ctx, tp)
	require.ErrorContains(t, err, "task.timeout.ms")
	assert.Less(t, time.Since(began), 20*time.Second)

	began = time.Now()
	_, err = r.replayChangelog(ctx, NewMemoryStore("s"), tp, 0, end, func(int64, int64) {})
	require.ErrorContains(t, err, "task.timeout.ms")
	assert.GreaterOrEqual(t, time.Since(began), cfg.TaskTimeout)
	assert.Less(t, time.Since(began), 20*time.Second)
}
