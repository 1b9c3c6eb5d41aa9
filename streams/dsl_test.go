package streams_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func wordCount(input, output string) *streams.StreamsBuilder {
	b := streams.NewStreamsBuilder()
	lines := streams.Stream(b, input, streams.Consumed[string, string]{Key: streams.String, Value: streams.String})
	words := streams.FlatMapValues(lines, func(_ string, line string) []string { return strings.Fields(strings.ToLower(line)) })
	counts := streams.GroupBy(words, func(_, w string) string { return w }, streams.Grouped[string, string]{Key: streams.String, Value: streams.String}).
		Count(streams.Materialized[string, int64]{Name: "counts"})
	counts.ToStream().To(output, streams.Produced[string, int64]{})
	return b
}

func TestDSLWordCount(t *testing.T) {
	topo, err := wordCount("text", "counts").Build()
	require.NoError(t, err)
	t.Log(topo.Describe())
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{ApplicationID: "wc"})
	require.NoError(t, err)
	defer d.Close()
	in := streams.InputTopic(d, "text", streams.String, streams.String)
	out := streams.OutputTopic(d, "counts", streams.String, streams.Int64)
	require.NoError(t, in.Pipe("", "Hello Kafka", t0))
	require.NoError(t, in.Pipe("", "hello streams", t0))
	kvs, err := out.ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"hello", 1}, {"kafka", 1}, {"hello", 2}, {"streams", 1}}, kvs)
	rep, err := streams.OutputTopic(d, "wc-counts-repartition", streams.String, streams.String).ReadKeyValues()
	require.NoError(t, err)
	require.Len(t, rep, 4)
}

func TestDSLSplitAndJoin(t *testing.T) {
	b := streams.NewStreamsBuilder()
	users := streams.Table(b, "users", streams.Consumed[string, string]{Key: streams.String, Value: streams.String}, streams.Materialized[string, string]{Name: "users"})
	clicks := streams.Stream(b, "clicks", streams.Consumed[string, int64]{Key: streams.String, Value: streams.Int64})
	branches := clicks.Split("c-").Branch("big", func(_ string, n int64) bool { return n > 10 }).DefaultBranch("small")
	enriched := streams.Join(branches["c-big"], users, func(n int64, region string) string { return region }, streams.Joined[string, int64]{})
	enriched.To("big-clicks-by-region", streams.Produced[string, string]{Value: streams.String})
	branches["c-small"].To("small", streams.Produced[string, int64]{})
	topo, err := b.Build()
	require.NoError(t, err)
	t.Log(topo.Describe())
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{})
	require.NoError(t, err)
	defer d.Close()
	u := streams.InputTopic(d, "users", streams.String, streams.String)
	c := streams.InputTopic(d, "clicks", streams.String, streams.Int64)
	require.NoError(t, u.Pipe("alice", "eu", t0))
	require.NoError(t, c.Pipe("alice", 20, t0))
	require.NoError(t, c.Pipe("bob", 30, t0))
	require.NoError(t, c.Pipe("alice", 3, t0))
	big, err := streams.OutputTopic(d, "big-clicks-by-region", streams.String, streams.String).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, string]{{"alice", "eu"}}, big)
	small, err := streams.OutputTopic(d, "small", streams.String, streams.Int64).ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"alice", 3}}, small)
}
