package log_test

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/broker/log"
)

// TestOpeningAnEmptyLogAllocatesLittle: creating a topic opens a new,
// empty log for each of its replicas, and opening one rebuilds the
// producer state by scanning the log's batches. A scan's read buffer is a
// megabyte; for a log with nothing to read, allocating and clearing it is
// all the work there is, done once per replica as the topic is created.
func TestOpeningAnEmptyLogAllocatesLittle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "orders-0")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	l, err := log.Open(dir, log.Config{})
	require.NoError(t, err)
	runtime.ReadMemStats(&after)
	require.NoError(t, l.Close())
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated to open an empty log")
}
