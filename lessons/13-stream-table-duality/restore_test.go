package streams_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

func countTopology() (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	purchases(b).Count(streams.Materialized[string, int64]{Name: "counts"}).ToStream().To("counts", streams.Produced[string, int64]{})
	return b.Build()
}

func inMemoryCountTopology() (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	purchases(b).Count(streams.Materialized[string, int64]{Name: "counts", InMemory: true}).ToStream().To("counts", streams.Produced[string, int64]{})
	return b.Build()
}

// TestANewInstanceRebuildsItsStoreFromTheChangelog: the task moved to
// another machine, with no state of its own: its store is rebuilt by
// replaying the changelog before the first record, and counting goes on
// from the restored counts, never from zero. Restoring writes nothing to
// the changelog: the records are in it already.
func TestANewInstanceRebuildsItsStoreFromTheChangelog(t *testing.T) {
	for name, build := range map[string]func() (*streams.Topology, error){"persistent": countTopology, "in memory": inMemoryCountTopology} {
		t.Run(name, func(t *testing.T) {
			topo, err := build()
			first := start(t, topo, err, streams.TestDriverOptions{})
			pipePurchases(t, first, "ann", 1, "bob", 1, "ann", 1)
			log := rawChangelog(t, first, "counts")
			require.NoError(t, first.Close())

			topo, err = build()
			second := start(t, topo, err, streams.TestDriverOptions{Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
				streams.ChangelogTopic("app", "counts"): log,
			}})
			require.Equal(t, map[string]int64{"ann": 2, "bob": 1}, contents(t, second, "counts", i64), "the store restored from the changelog")
			require.Empty(t, rawChangelog(t, second, "counts"), "restoring must not write the changelog again")
			pipePurchases(t, second, "ann", 1)
			require.Equal(t, []streams.KeyValue[string, int64]{kv("ann", 3)}, int64s(t, second, "counts"), "the count goes on from the restored one")
			after := rawChangelog(t, second, "counts")
			require.Len(t, after, 1)
			require.Equal(t, log[len(log)-1].Offset+1, after[0].Offset, "the changelog goes on after its last record")
		})
	}
}

// TestRestoreReplaysACompactedChangelogWithItsGapsAndTombstones: a
// compacted changelog has gaps where older values were cleaned, and may
// still hold tombstones (kept for delete.retention.ms): the restore applies
// what is there, in offset order — a tombstone deletes — and is done when
// it reaches the end offset, however few records it read on the way.
func TestRestoreReplaysACompactedChangelogWithItsGapsAndTombstones(t *testing.T) {
	b := streams.NewStreamsBuilder()
	streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	topo, err := b.Build()
	rec := func(offset int64, k, v string) streams.TestRecord[[]byte, []byte] {
		r := streams.TestRecord[[]byte, []byte]{Key: []byte(k), Offset: offset}
		if v == "" {
			r.Tombstone = true
		} else {
			r.Value = []byte(v)
		}
		return r
	}
	d := start(t, topo, err, streams.TestDriverOptions{Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "profiles"): {
			rec(3, "ann", "Oslo"), rec(7, "bob", "Lyon"), rec(8, "cy", "Nice"), rec(12, "cy", ""), rec(20, "ann", "Rome"),
		},
	}})
	require.Equal(t, map[string]string{"ann": "Rome", "bob": "Lyon"}, contents(t, d, "profiles", str))
	pipeProfiles(t, d, "dee", "Bonn")
	log := rawChangelog(t, d, "profiles")
	require.Len(t, log, 1)
	require.Equal(t, int64(21), log[0].Offset)
}

// TestACleanRestartRestoresOnlyWhatCameAfterTheCheckpoint: a persistent
// store survives a restart on the same machine. Its task wrote a
// checkpoint when it closed — the changelog offset its store had reached —
// and the restart replays the changelog from there only: nothing, after a
// clean shutdown, or what another instance wrote since. What the changelog
// holds before the checkpoint is not read again (here it was rewritten,
// and the store does not take it).
func TestACleanRestartRestoresOnlyWhatCameAfterTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	topo, err := countTopology()
	first := start(t, topo, err, streams.TestDriverOptions{StateDir: dir})
	pipePurchases(t, first, "ann", 1, "ann", 1, "bob", 1)
	log := rawChangelog(t, first, "counts")
	require.Len(t, log, 3)
	require.NoError(t, first.Close())

	// Before the checkpoint: the same keys with other counts, which a
	// restore from the start would take. After it: a record another
	// instance wrote after this one stopped.
	rewritten := []streams.TestRecord[[]byte, []byte]{
		{Key: []byte("ann"), Value: i64bytes(100), Offset: 0},
		{Key: []byte("bob"), Value: i64bytes(100), Offset: 2},
		{Key: []byte("cy"), Value: i64bytes(7), Offset: 3},
	}
	topo, err = countTopology()
	second := start(t, topo, err, streams.TestDriverOptions{StateDir: dir, Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "counts"): rewritten,
	}})
	require.Equal(t, map[string]int64{"ann": 2, "bob": 1, "cy": 7}, contents(t, second, "counts", i64),
		"the store kept its counts; only the record after the checkpoint (offset 3) was restored")
	require.NoError(t, second.Close())

	// Nothing after the checkpoint (it is at the changelog's end): the
	// store is used as it is, and nothing is restored.
	third := start(t, topo, err, streams.TestDriverOptions{StateDir: dir, Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "counts"): rewritten,
	}})
	require.Equal(t, map[string]int64{"ann": 2, "bob": 1, "cy": 7}, contents(t, third, "counts", i64),
		"a checkpoint at the changelog's end: the store is complete, nothing to restore")
}

// TestWithoutACheckpointTheStoreIsRebuiltFromTheStart: a persistent store
// whose checkpoint is missing (the instance crashed) holds data of no
// known offset: it is wiped and rebuilt from the whole changelog.
func TestWithoutACheckpointTheStoreIsRebuiltFromTheStart(t *testing.T) {
	dir := t.TempDir()
	topo, err := countTopology()
	first := start(t, topo, err, streams.TestDriverOptions{StateDir: dir})
	pipePurchases(t, first, "ann", 1, "ann", 1)
	require.NoError(t, first.Close())
	require.NoError(t, removeCheckpoints(dir))

	topo, err = countTopology()
	second := start(t, topo, err, streams.TestDriverOptions{StateDir: dir, Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "counts"): {{Key: []byte("bob"), Value: i64bytes(5), Offset: 0}},
	}})
	require.Equal(t, map[string]int64{"bob": 5}, contents(t, second, "counts", i64),
		"no checkpoint: the store is what the changelog says, nothing of what the disk held")
}

// TestACorruptCheckpointStopsTheTask: a checkpoint that cannot be read is
// not the same as none: the store may be fine, or not, and nobody can
// tell. The task does not start, and the error names the file, for an
// operator to look at (and delete, to rebuild the store from the
// changelog).
func TestACorruptCheckpointStopsTheTask(t *testing.T) {
	dir := t.TempDir()
	topo, err := countTopology()
	first := start(t, topo, err, streams.TestDriverOptions{StateDir: dir})
	pipePurchases(t, first, "ann", 1)
	require.NoError(t, first.Close())
	var checkpoint string
	require.NoError(t, filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && e.Name() == ".checkpoint" {
			checkpoint = path
		}
		return err
	}))
	require.NotEmpty(t, checkpoint, "a clean Close writes a checkpoint")
	require.NoError(t, os.WriteFile(checkpoint, []byte("0\n1\nnot a checkpoint line\n"), 0o644))

	topo, err = countTopology()
	require.NoError(t, err)
	_, err = streams.NewTestDriver(topo, streams.TestDriverOptions{ApplicationID: "app", StateDir: dir})
	require.ErrorContains(t, err, ".checkpoint")
}

// TestACheckpointPastTheChangelogsEndWipesTheStore: a checkpoint beyond
// the changelog's end means the changelog was deleted and made again (an
// application reset): the store is of another history, and is rebuilt
// from the new changelog alone.
func TestACheckpointPastTheChangelogsEndWipesTheStore(t *testing.T) {
	dir := t.TempDir()
	topo, err := countTopology()
	first := start(t, topo, err, streams.TestDriverOptions{StateDir: dir})
	pipePurchases(t, first, "ann", 1, "ann", 1, "ann", 1)
	require.NoError(t, first.Close()) // checkpoint: offset 3

	topo, err = countTopology()
	second := start(t, topo, err, streams.TestDriverOptions{StateDir: dir, Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "counts"): {{Key: []byte("bob"), Value: i64bytes(5), Offset: 0}},
	}})
	require.Equal(t, map[string]int64{"bob": 5}, contents(t, second, "counts", i64), "the old store (ann 3) belongs to a changelog that is gone")
}

// TestRestoreStopsAtTheEndOffsetItStartedWith: the restore reads up to the
// changelog's end offset as it was when the restore began. A record after
// it was written by an instance that still thinks it owns the task (a
// zombie) and is not the restore's; and offsets just before the end with
// no record (compacted away) do not keep the restore waiting for them.
func TestRestoreStopsAtTheEndOffsetItStartedWith(t *testing.T) {
	b := streams.NewStreamsBuilder()
	streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	topo, err := b.Build()
	topic := streams.ChangelogTopic("app", "profiles")
	d := start(t, topo, err, streams.TestDriverOptions{
		Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{topic: {
			{Key: []byte("ann"), Value: []byte("Oslo"), Offset: 0},
			{Key: []byte("bob"), Value: []byte("Lyon"), Offset: 1},
			// offsets 2 to 4: compacted away
			{Key: []byte("ann"), Value: []byte("Rome"), Offset: 5}, // after the end: a zombie's
		}},
		ChangelogEnds: map[string]int64{topic: 5},
	})
	require.Equal(t, map[string]string{"ann": "Oslo", "bob": "Lyon"}, contents(t, d, "profiles", str))
}

// TestAChangelogEndingInATombstoneIsRestoredToTheEnd: the last record
// before the end is a delete: applied like any other, and the restore is
// done.
func TestAChangelogEndingInATombstoneIsRestoredToTheEnd(t *testing.T) {
	b := streams.NewStreamsBuilder()
	streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{Changelogs: map[string][]streams.TestRecord[[]byte, []byte]{
		streams.ChangelogTopic("app", "profiles"): {
			{Key: []byte("ann"), Value: []byte(""), Offset: 0}, // an empty value is a value
			{Key: []byte("bob"), Value: []byte("Lyon"), Offset: 1},
			{Key: []byte("bob"), Tombstone: true, Offset: 2},
		},
	}})
	require.Equal(t, map[string]string{"ann": ""}, contents(t, d, "profiles", str), "ann's empty value is kept; bob is deleted")
}
