package streams_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// profiles reads topic "profiles" (key: user, value: city) as a table in
// store "profiles", and writes the table's stream of updates to "updates".
func profiles(m streams.Materialized[string, string]) (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	m.Name = "profiles"
	table := streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, m)
	table.ToStream().To("updates", streams.Produced[string, string]{})
	return b.Build()
}

func pipeProfiles(t *testing.T, d *streams.TestDriver, userCity ...string) {
	t.Helper()
	in := streams.InputTopic(d, "profiles", str, str)
	for i := 0; i < len(userCity); i += 2 {
		if userCity[i+1] == "-" {
			require.NoError(t, in.PipeTombstone(userCity[i], at(0)))
		} else {
			require.NoError(t, in.Pipe(userCity[i], userCity[i+1], at(0)))
		}
	}
}

// TestATableIsTheLatestValueOfEachKey: a stream of updates read as a table
// keeps, for each key, the value of its latest record; and every update
// is also a record of the table's stream of changes, in order: the same
// data seen two ways.
func TestATableIsTheLatestValueOfEachKey(t *testing.T) {
	topo, err := profiles(streams.Materialized[string, string]{})
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipeProfiles(t, d, "ann", "Oslo", "bob", "Lyon", "ann", "Rome")
	require.Equal(t, map[string]string{"ann": "Rome", "bob": "Lyon"}, contents(t, d, "profiles", str), "the table: the latest value of each key")
	require.Equal(t, []entry{{"ann", "Oslo", false}, {"bob", "Lyon", false}, {"ann", "Rome", false}}, records(t, d, "updates"),
		"the table's stream: every update, in order")
}

// TestATombstoneDeletesTheKeyAndGoesDownstream: a record without a value
// deletes its key from the table, and the delete is an update like any
// other: downstream gets the tombstone, so that what is built from the
// table loses the key too.
func TestATombstoneDeletesTheKeyAndGoesDownstream(t *testing.T) {
	for _, m := range []streams.Materialized[string, string]{{}, {InMemory: true}} {
		topo, err := profiles(m)
		d := start(t, topo, err, streams.TestDriverOptions{})
		pipeProfiles(t, d, "ann", "Oslo", "bob", "Lyon", "ann", "-")
		require.Equal(t, map[string]string{"bob": "Lyon"}, contents(t, d, "profiles", str), "in memory: %v", m.InMemory)
		require.Equal(t, []entry{{"ann", "Oslo", false}, {"bob", "Lyon", false}, {"ann", "", true}}, records(t, d, "updates"))
		s, err := d.Store("profiles")
		require.NoError(t, err)
		v, err := s.Get([]byte("ann"))
		require.NoError(t, err)
		require.Nil(t, v, "a deleted key has no value")
	}
}

// TestAnUpdateThatChangesNothingIsStillForwarded: Kafka 2.6 dropped
// updates that left a key's value as it was (KIP-557, emit on change), and
// took that back (KAFKA-12508): under at-least-once, a record processed
// again after a crash finds its value in the store already, and dropping
// its update would lose it downstream, where it had not arrived.
func TestAnUpdateThatChangesNothingIsStillForwarded(t *testing.T) {
	topo, err := profiles(streams.Materialized[string, string]{})
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipeProfiles(t, d, "ann", "Oslo", "ann", "Oslo")
	require.Equal(t, []entry{{"ann", "Oslo", false}, {"ann", "Oslo", false}}, records(t, d, "updates"))
}

// TestARecordWithoutAKeyHasNoPlaceInATable: a table is keyed; a record
// without a key is dropped, not stored and not forwarded.
func TestARecordWithoutAKeyHasNoPlaceInATable(t *testing.T) {
	topo, err := profiles(streams.Materialized[string, string]{})
	d := start(t, topo, err, streams.TestDriverOptions{})
	require.NoError(t, d.Pipe("profiles", nil, []byte("Paris"), at(0)))
	pipeProfiles(t, d, "ann", "Oslo")
	require.Equal(t, []entry{{"ann", "Oslo", false}}, records(t, d, "updates"))
	require.Equal(t, map[string]string{"ann": "Oslo"}, contents(t, d, "profiles", str))
}

// TestTheCompactedChangelogIsTheTable: every change of the store is
// written to its changelog, <application.id>-<store>-changelog: the key
// and the new value, or a tombstone. Compaction keeps the last record of
// each key: what is left of the changelog is the table itself.
func TestTheCompactedChangelogIsTheTable(t *testing.T) {
	topo, err := profiles(streams.Materialized[string, string]{})
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipeProfiles(t, d, "ann", "Oslo", "bob", "Lyon", "ann", "Rome", "cy", "Nice", "bob", "-")
	log := rawChangelog(t, d, "profiles")
	require.Len(t, log, 5, "one changelog record per change")
	require.True(t, log[4].Tombstone, "the delete of bob is a tombstone in the changelog")
	table := map[string]string{}
	for _, r := range compact(log) {
		table[string(r.Key)] = string(r.Value)
	}
	require.Equal(t, contents(t, d, "profiles", str), table)
	require.Equal(t, map[string]string{"ann": "Rome", "cy": "Nice"}, table)
}

// TestEmptyValuesAndDeletesOfMissingKeys: an empty value is a value, not
// a delete; and a delete of a key the table does not have is still an
// update downstream (after a crash it may be the second time the table
// sees it, and the first time downstream does).
func TestEmptyValuesAndDeletesOfMissingKeys(t *testing.T) {
	topo, err := profiles(streams.Materialized[string, string]{})
	d := start(t, topo, err, streams.TestDriverOptions{})
	pipeProfiles(t, d, "ann", "", "zed", "-")
	require.Equal(t, map[string]string{"ann": ""}, contents(t, d, "profiles", str))
	require.Equal(t, []entry{{"ann", "", false}, {"zed", "", true}}, records(t, d, "updates"))
}

// TestATablesUpdatesKeepTheirTimestampAndAreStoredFirst: an update goes
// downstream with its record's timestamp (event time, not the time it was
// processed), and only once the table holds it: a join of the table with
// itself sees the new value on both sides.
func TestATablesUpdatesKeepTheirTimestampAndAreStoredFirst(t *testing.T) {
	b := streams.NewStreamsBuilder()
	table := streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	table.ToStream().To("updates", streams.Produced[string, string]{})
	streams.TableJoin(table, table, func(a, b string) string { return a + "=" + b }).ToStream().To("self", streams.Produced[string, string]{Value: str})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	in := streams.InputTopic(d, "profiles", str, str)
	require.NoError(t, in.Pipe("ann", "Oslo", at(7*time.Second)))
	rs, err := streams.OutputTopic(d, "updates", str, str).ReadRecords()
	require.NoError(t, err)
	require.Len(t, rs, 1)
	require.Equal(t, at(7*time.Second), rs[0].Timestamp)
	require.Equal(t, []entry{{"ann", "Oslo=Oslo", false}, {"ann", "Oslo=Oslo", false}}, records(t, d, "self"),
		"the join looked the key up in the table's store, and found the value being forwarded")
}

// TestADownstreamErrorStopsTheTable: an error downstream of the table (a
// sink that cannot write the update) is the task's error.
func TestADownstreamErrorStopsTheTable(t *testing.T) {
	b := streams.NewStreamsBuilder()
	table := streams.Table(b, "profiles", streams.Consumed[string, string]{Key: str, Value: str}, streams.Materialized[string, string]{Name: "profiles"})
	table.ToStream().To("updates", streams.Produced[string, string]{Value: streams.Serde[string]{
		Serialize:   func(string, string) ([]byte, error) { return nil, errorf("the sink refuses") },
		Deserialize: func(_ string, b []byte) (string, error) { return string(b), nil },
	}})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	require.ErrorContains(t, streams.InputTopic(d, "profiles", str, str).Pipe("ann", "Oslo", at(0)), "the sink refuses")
}

// TestATableOfNumbers: a table's values are written with its value serde
// (here int64), not its key's.
func TestATableOfNumbers(t *testing.T) {
	b := streams.NewStreamsBuilder()
	streams.Table(b, "prices", streams.Consumed[string, int64]{Key: str, Value: i64}, streams.Materialized[string, int64]{Name: "prices"})
	topo, err := b.Build()
	d := start(t, topo, err, streams.TestDriverOptions{})
	require.NoError(t, streams.InputTopic(d, "prices", str, i64).Pipe("tea", 12, at(0)))
	require.Equal(t, map[string]int64{"tea": 12}, contents(t, d, "prices", i64))
}
