// The tests of lesson 13, stream-table duality. A table is the latest
// value of each key of a stream of updates; its store is backed by a
// changelog topic that, compacted, holds that table; and a new instance
// rebuilds the store by replaying it. Every test runs in the test driver
// (streams.TestDriver): no cluster, one partition per topic.
package streams_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

var (
	base = time.UnixMilli(1_700_000_040_000)
	str  = streams.String
	i64  = streams.Int64
)

func at(d time.Duration) time.Time { return base.Add(d) }

// start runs topo in a test driver with opts (application.id "app"),
// closed when the test ends unless the test closes it first.
func start(t *testing.T, topo *streams.Topology, err error, opts streams.TestDriverOptions) *streams.TestDriver {
	t.Helper()
	require.NoError(t, err)
	opts.ApplicationID = "app"
	d, err := streams.NewTestDriver(topo, opts)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d
}

// entry is a key and its value as text, "" for a tombstone.
type entry struct {
	Key, Value string
	Tombstone  bool
}

// records reads what the topology wrote to topic, strings both.
func records(t *testing.T, d *streams.TestDriver, topic string) []entry {
	t.Helper()
	rs, err := streams.OutputTopic(d, topic, str, str).ReadRecords()
	require.NoError(t, err)
	var out []entry
	for _, r := range rs {
		out = append(out, entry{r.Key, r.Value, r.Tombstone})
	}
	return out
}

// rawChangelog reads what the topology wrote to the changelog of store.
func rawChangelog(t *testing.T, d *streams.TestDriver, store string) []streams.TestRecord[[]byte, []byte] {
	t.Helper()
	rs, err := streams.OutputTopic(d, streams.ChangelogTopic("app", store), streams.Bytes, streams.Bytes).ReadRecords()
	require.NoError(t, err)
	return rs
}

// contents is everything a store holds, as strings.
func contents[V any](t *testing.T, d *streams.TestDriver, store string, value streams.Serde[V]) map[string]V {
	t.Helper()
	s, err := d.Store(store)
	require.NoError(t, err)
	out := map[string]V{}
	require.NoError(t, streams.Typed(s, str, value).All(func(k string, v V) error {
		out[k] = v
		return nil
	}))
	return out
}

// compact is what log compaction leaves of a changelog, as the cleaner
// leaves it once tombstones have expired: the last record of each key,
// none for a key whose last record is a tombstone, in offset order.
func compact(rs []streams.TestRecord[[]byte, []byte]) []streams.TestRecord[[]byte, []byte] {
	last := map[string]streams.TestRecord[[]byte, []byte]{}
	for _, r := range rs {
		last[string(r.Key)] = r
	}
	var out []streams.TestRecord[[]byte, []byte]
	for _, r := range last {
		if !r.Tombstone {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Offset < out[j].Offset })
	return out
}

// removeCheckpoints deletes every checkpoint file under dir, as a crash
// before the first commit leaves none.
func removeCheckpoints(dir string) error {
	return filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == ".checkpoint" {
			return os.Remove(path)
		}
		return err
	})
}
