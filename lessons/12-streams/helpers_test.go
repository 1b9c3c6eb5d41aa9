// The tests of lesson 12, the processor API and the DSL. Every test runs a
// topology in the test driver (streams.TestDriver), as Kafka's
// TopologyTestDriver runs one: no cluster, records piped in one at a time,
// stream time moved by their timestamps and wall-clock time by hand.
// cluster_test.go runs the word count of the README on three brokers,
// with two instances sharing its tasks.
package streams_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// base is one minute after the epoch: punctuations aligned to multiples of
// their interval are easy to read (base+10s, base+20s, ...), and a
// punctuation that wrongly catches up on every interval since 1970 fails
// at once instead of looping for minutes.
var base = time.UnixMilli(60_000)

// at is base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

// driver starts topo in a test driver, closed when the test ends.
func driver(t *testing.T, topo *streams.Topology, err error) *streams.TestDriver {
	t.Helper()
	require.NoError(t, err)
	d, err := streams.NewTestDriver(topo, streams.TestDriverOptions{ApplicationID: "app", WallClock: base})
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// strings is the string serde, for both keys and values.
var str = streams.String

// read takes what the topology wrote to topic, as string keys and values.
func read(t *testing.T, d *streams.TestDriver, topic string) []streams.KeyValue[string, string] {
	t.Helper()
	kvs, err := streams.OutputTopic(d, topic, str, str).ReadKeyValues()
	require.NoError(t, err)
	return kvs
}

// counts takes what the topology wrote to topic, as string keys and int64
// values.
func counts(t *testing.T, d *streams.TestDriver, topic string) []streams.KeyValue[string, int64] {
	t.Helper()
	kvs, err := streams.OutputTopic(d, topic, str, streams.Int64).ReadKeyValues()
	require.NoError(t, err)
	return kvs
}

func kv[V any](k string, v V) streams.KeyValue[string, V] {
	return streams.KeyValue[string, V]{Key: k, Value: v}
}

var errBoom = errorString("boom")

type errorString string

func (e errorString) Error() string { return string(e) }
