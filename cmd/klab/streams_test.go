package main

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// keyCounter counts the records of each key in its store "per-key".
type keyCounter struct {
	counts streams.TypedStore[[]byte, int64]
}

func (k *keyCounter) Init(ctx *streams.ProcessorContext) error {
	s, err := ctx.Store("per-key")
	k.counts = streams.Typed(s, streams.Bytes, streams.Int64)
	return err
}

func (k *keyCounter) Process(r streams.Record) error {
	key, _ := r.Key.([]byte)
	n, _, err := k.counts.Get(key)
	if err != nil {
		return err
	}
	return k.counts.Put(key, n+1)
}

func (k *keyCounter) Close() error { return nil }

// TestStreamsDescribe runs a streams application over groupsTopic and
// describes it: its group, its member's tasks and partitions, each input
// partition's lag, and its stores from the status file in its state
// directory.
func TestStreamsDescribe(t *testing.T) {
	addr := startGroupsCluster(t)
	produceTo(t, addr, map[int32]int{0: 5, 1: 3})
	stateDir := t.TempDir()
	topo := streams.NewTopology().
		AddSource(streams.Source{Name: "orders", Topics: []string{groupsTopic}}).
		AddProcessor("count", func() streams.Processor { return &keyCounter{} }, "orders").
		AddStateStore(streams.StoreSpec{Name: "per-key"}, "count")
	cfg := streams.DefaultConfig()
	for _, s := range [][2]string{
		{"application.id", "shop"},
		{"bootstrap.servers", addr},
		{"state.dir", stateDir},
		{"client.id", "shop-1"},
		{"commit.interval.ms", "100"},
		{"consumer.heartbeat.interval.ms", "200"},
		{"consumer.fetch.max.wait.ms", "100"},
	} {
		require.NoError(t, cfg.Set(s[0], s[1]))
	}
	cfg.Logger = t.Logf
	app, err := streams.New(topo, cfg)
	require.NoError(t, err)
	defer app.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, app.Start(ctx))

	describe := func(args ...string) (string, string, error) {
		return captureAll(t, func() error {
			return runStreams(append([]string{"describe", "--bootstrap-server=" + addr}, args...))
		})
	}
	lagZero := regexp.MustCompile(`orders\s+0\s+5\s+5\s+0\s+0_0\s+shop-1-StreamThread-1-consumer`)
	var out string
	eventually(t, "the application to run and commit", func() bool {
		out, _, err = describe("--application-id", "shop", "--state-dir", stateDir)
		return err == nil && app.State() == streams.Running && lagZero.MatchString(out)
	})
	t.Log("\n" + out)
	assert.Regexp(t, `shop\s+Stable\s+stream\s+1`, out)
	assert.Regexp(t, `shop-1-StreamThread-1-consumer\s+/?127.0.0.1\s+3\s+0_0,0_1,0_2\s+orders\(0,1,2\)`, out)
	assert.Regexp(t, `orders\s+1\s+3\s+3\s+0\s+0_1`, out)
	assert.Regexp(t, `orders\s+2\s+-\s+0\s+-\s+0_2`, out, "nothing committed on an empty partition")
	assert.Regexp(t, `Local instance shop-1 \(pid \d+\): RUNNING`, out)
	assert.Regexp(t, `shop-1-StreamThread-1\s+0_1\s+orders-1\s+per-key\s+running\s+0 of 0`, out)

	require.NoError(t, app.Close())
	out, stderr, err := describe("--application-id", "shop", "--state-dir", t.TempDir())
	require.NoError(t, err)
	assert.Contains(t, stderr, "has no active members")
	assert.Contains(t, stderr, "no store states to show")
	assert.Regexp(t, `orders\s+0\s+5\s+5\s+0`, out, "the committed offsets stay")

	_, _, err = describe("--application-id", "nobody")
	require.ErrorContains(t, err, "no streams application nobody")
}
