package streams_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// wordCounter is a processor that counts words in a store and forwards
// each word's new count.
type wordCounter struct {
	ctx    *streams.ProcessorContext
	counts streams.TypedStore[string, int64]
}

func (w *wordCounter) Init(ctx *streams.ProcessorContext) error {
	s, err := ctx.Store("counts")
	w.ctx, w.counts = ctx, streams.Typed(s, streams.String, streams.Int64)
	return err
}

func (w *wordCounter) Process(r streams.Record) error {
	for _, word := range strings.Fields(r.Value.(string)) {
		n, _, err := w.counts.Get(word)
		if err != nil {
			return err
		}
		if err := w.counts.Put(word, n+1); err != nil {
			return err
		}
		if err := w.ctx.Forward(streams.Record{Key: word, Value: n + 1, Timestamp: r.Timestamp}); err != nil {
			return err
		}
	}
	return nil
}

func (w *wordCounter) Close() error { return nil }

func wordCountTopology() *streams.Topology {
	return streams.NewTopology().
		AddSource(streams.Source{Name: "lines", Topics: []string{"text"}, Key: streams.String, Value: streams.String}).
		AddProcessor("count", func() streams.Processor { return &wordCounter{} }, "lines").
		AddStateStore(streams.StoreSpec{Name: "counts"}, "count").
		AddSink(streams.Sink{Name: "out", Topic: "counts", Key: streams.String, Value: streams.Int64, Parents: []string{"count"}})
}

func TestProcessorAPIWordCount(t *testing.T) {
	d, err := streams.NewTestDriver(wordCountTopology(), streams.TestDriverOptions{ApplicationID: "wc"})
	require.NoError(t, err)
	defer d.Close()
	in := streams.InputTopic(d, "text", streams.String, streams.String)
	out := streams.OutputTopic(d, "counts", streams.String, streams.Int64)
	t0 := time.UnixMilli(1_000_000)
	require.NoError(t, in.Pipe("", "a b a", t0))
	require.NoError(t, in.Pipe("", "b", t0.Add(time.Second)))
	kvs, err := out.ReadKeyValues()
	require.NoError(t, err)
	require.Equal(t, []streams.KeyValue[string, int64]{{"a", 1}, {"b", 1}, {"a", 2}, {"b", 2}}, kvs)
	changelog := streams.OutputTopic(d, streams.ChangelogTopic("wc", "counts"), streams.String, streams.Int64)
	cl, err := changelog.ReadKeyValues()
	require.NoError(t, err)
	require.Len(t, cl, 4)
	s, err := d.Store("counts")
	require.NoError(t, err)
	n, ok, err := streams.Typed(s, streams.String, streams.Int64).Get("a")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(2), n)
	t.Log(wordCountTopology().Describe())
}
