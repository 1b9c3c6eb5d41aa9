package streams_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// splitTopology splits "orders" (key: customer, value: amount as text)
// into large ("l"), medium ("m") and the rest, each to a topic of its own.
// An amount over 100 meets both the large and the medium predicate.
func splitTopology(withDefault bool) (*streams.Topology, error) {
	b := streams.NewStreamsBuilder()
	orders := streams.Stream(b, "orders", streams.Consumed[string, int64]{Key: str, Value: streams.Int64})
	split := orders.Split("orders-").
		Branch("large", func(_ string, amount int64) bool { return amount > 100 }).
		Branch("medium", func(_ string, amount int64) bool { return amount > 10 })
	var branches map[string]streams.KStream[string, int64]
	if withDefault {
		branches = split.DefaultBranch("small")
		branches["orders-small"].To("small", streams.Produced[string, int64]{})
	} else {
		branches = split.NoDefaultBranch()
	}
	branches["orders-large"].To("large", streams.Produced[string, int64]{})
	branches["orders-medium"].To("medium", streams.Produced[string, int64]{})
	return b.Build()
}

func pipeOrders(t *testing.T, d *streams.TestDriver, amounts ...int64) {
	t.Helper()
	in := streams.InputTopic(d, "orders", str, streams.Int64)
	for i, a := range amounts {
		require.NoError(t, in.Pipe(string(rune('a'+i)), a, at(0)))
	}
}

// TestSplitSendsARecordToTheFirstBranchThatKeepsItOnly: the branches are
// tried in the order they were added; the first whose predicate keeps the
// record gets it, and no other does, even if its predicate would keep it
// too: 500 is large, and not also medium.
func TestSplitSendsARecordToTheFirstBranchThatKeepsItOnly(t *testing.T) {
	topo, err := splitTopology(true)
	d := driver(t, topo, err)
	pipeOrders(t, d, 500, 50, 5, 101, 11)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("a", int64(500)), kv("d", int64(101))}, counts(t, d, "large"))
	require.Equal(t, []streams.KeyValue[string, int64]{kv("b", int64(50)), kv("e", int64(11))}, counts(t, d, "medium"),
		"a large order is not medium too: a record goes to one branch")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("c", int64(5))}, counts(t, d, "small"))
}

// TestRecordsNoBranchKeepsGoToTheDefaultBranchOrNowhere: the default
// branch gets what no predicate kept; without one, those records are
// dropped, and the others still go to their branch.
func TestRecordsNoBranchKeepsGoToTheDefaultBranchOrNowhere(t *testing.T) {
	topo, err := splitTopology(true)
	d := driver(t, topo, err)
	pipeOrders(t, d, 1, 2)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("a", int64(1)), kv("b", int64(2))}, counts(t, d, "small"))
	require.Empty(t, counts(t, d, "large"))
	require.Empty(t, counts(t, d, "medium"))

	topo, err = splitTopology(false)
	d = driver(t, topo, err)
	pipeOrders(t, d, 1, 200, 20)
	require.Equal(t, []streams.KeyValue[string, int64]{kv("b", int64(200))}, counts(t, d, "large"))
	require.Equal(t, []streams.KeyValue[string, int64]{kv("c", int64(20))}, counts(t, d, "medium"),
		"a record no branch keeps is dropped; the split goes on with the next")
}

// TestSplitIsAProcessorWithABranchChildEach: the DSL is the processor API
// underneath. Describe shows the split as one processor, named by its
// prefix, whose children are the branches, named prefix+name.
func TestSplitIsAProcessorWithABranchChildEach(t *testing.T) {
	topo, err := splitTopology(true)
	d := driver(t, topo, err)
	pipeOrders(t, d, 3)
	require.Contains(t, topo.Describe(), "    Processor: orders- (stores: [])\n      --> orders-large, orders-medium, orders-small\n")
	require.Equal(t, []streams.KeyValue[string, int64]{kv("a", int64(3))}, counts(t, d, "small"))
}
