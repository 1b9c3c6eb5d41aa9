package streams_test

// Tests of how an application behaves when things go wrong: a cluster out
// of reach, a Close while it starts, a thread that fails, and settings at
// their edges.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"klab.dev/klab/streams"
)

// TestConfigCommitIntervalZero: commit.interval.ms=0 is accepted, as Kafka
// accepts it (a commit after every round of the loop), and task.timeout.ms
// is Kafka's 5 minutes unless set.
func TestConfigCommitIntervalZero(t *testing.T) {
	cfg := streams.DefaultConfig()
	assert.Equal(t, 5*time.Minute, cfg.TaskTimeout)
	require.NoError(t, cfg.Set("application.id", "x"))
	require.NoError(t, cfg.Set("commit.interval.ms", "0"))
	require.NoError(t, cfg.Set("task.timeout.ms", "1000"))
	assert.Equal(t, time.Duration(0), cfg.CommitInterval)
	assert.Equal(t, time.Second, cfg.TaskTimeout)
	_, err := streams.New(wordCountTopology(), cfg)
	require.NoError(t, err)
	require.Error(t, cfg.Set("commit.interval.ms", "-1"))

	// It runs, and counts right.
	addr := startBroker(t, map[string]int32{"text": 1, "counts": 1})
	cfg, _ = appConfig(t, addr, t.TempDir(), "commit.interval.ms", "0")
	app := startApp(t, wordCountTopology(), cfg)
	batch := words(50)
	produceWords(t, addr, "text", batch...)
	waitForCounts(t, addr, "counts", countWords(batch))
	require.NoError(t, app.Close())
}
